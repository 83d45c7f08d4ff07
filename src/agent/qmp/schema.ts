/**
 * The part of QEMU's QMP schema (QAPI) Vireo speaks: the greeting, replies,
 * the commands the agent sends with their argument and return types, and
 * the events it acts on. Return types are derived from their decoders, so
 * the check and the type cannot drift apart. Checked against QEMU 7.2's
 * `query-qmp-schema`; members added by later versions are dropped.
 */
import { DecodeError, anyValue, array, boolean, empty, integer, number, object, oneOf, record, string } from './decode.js';
import type { Decoded, Decoder } from './decode.js';

const versionTriple = object({ major: integer, minor: integer, micro: integer });

/** `{"QMP": {...}}`, the first message on a QMP socket. */
export const greeting = object({ QMP: object({ version: object({ qemu: versionTriple, package: string }), capabilities: array(string) }) });
export type QmpGreeting = Decoded<typeof greeting>;

/** A reply's `error` member. */
export const errorBody = object({ class: string, desc: string });

/** QAPI `RunState`. */
export const runState = oneOf(
  'debug', 'inmigrate', 'internal-error', 'io-error', 'paused', 'postmigrate', 'prelaunch', 'finish-migrate',
  'restore-vm', 'running', 'save-vm', 'shutdown', 'suspended', 'watchdog', 'guest-panicked', 'colo',
);
export type RunState = Decoded<typeof runState>;

/** QAPI `ShutdownCause`: why QEMU shut down or reset. */
export const shutdownCause = oneOf(
  'none', 'host-error', 'host-qmp-quit', 'host-qmp-system-reset', 'host-signal', 'host-ui',
  'guest-shutdown', 'guest-reset', 'guest-panic', 'subsystem-reset', 'snapshot-load',
);
export type ShutdownCause = Decoded<typeof shutdownCause>;

const statusInfo = object({ running: boolean, status: runState }, { singlestep: boolean });

const cpuInfoFast = object(
  { 'cpu-index': integer, 'qom-path': string, 'thread-id': integer, target: string },
  { props: object({}, { 'node-id': integer, 'socket-id': integer, 'die-id': integer, 'cluster-id': integer, 'core-id': integer, 'thread-id': integer }) },
);

const imageInfo = object(
  { filename: string, format: string, 'virtual-size': integer },
  { 'actual-size': integer, 'cluster-size': integer, 'dirty-flag': boolean, 'backing-filename': string, 'full-backing-filename': string, 'backing-filename-format': string },
);

const blockDeviceInfo = object(
  {
    file: string,
    ro: boolean,
    drv: string,
    backing_file_depth: integer,
    encrypted: boolean,
    detect_zeroes: oneOf('off', 'on', 'unmap'),
    image: imageInfo,
    cache: object({ writeback: boolean, direct: boolean, 'no-flush': boolean }),
    write_threshold: integer,
  },
  { 'node-name': string, backing_file: string },
);

const blockInfo = object(
  { device: string, type: string, removable: boolean, locked: boolean },
  { qdev: string, inserted: blockDeviceInfo, tray_open: boolean, 'io-status': oneOf('ok', 'failed', 'nospace') },
);

/** QAPI `MigrationStatus`. */
export const migrationStatus = oneOf(
  'none', 'setup', 'cancelling', 'cancelled', 'active', 'postcopy-active', 'postcopy-paused', 'postcopy-recover',
  'completed', 'failed', 'colo', 'pre-switchover', 'device', 'wait-unplug',
);
export type MigrationStatus = Decoded<typeof migrationStatus>;

const migrationStats = object(
  { transferred: integer, remaining: integer, total: integer, duplicate: integer, normal: integer },
  { 'dirty-pages-rate': integer, 'dirty-sync-count': integer, mbps: number },
);

/** `query-migrate`: where a migration is, on either side; `downtime` and `total-time` (ms) once completed. */
const migrationInfo = object(
  {},
  {
    status: migrationStatus,
    ram: migrationStats,
    'total-time': integer,
    'expected-downtime': integer,
    downtime: integer,
    'setup-time': integer,
    'cpu-throttle-percentage': integer,
    'error-desc': string,
  },
);

/** `query-block-jobs`: one block job (a mirror into the target's NBD export). */
const blockJobInfo = object(
  { type: string, device: string, len: integer, offset: integer, busy: boolean, paused: boolean, speed: integer, ready: boolean, status: string },
  { error: string },
);

/** `query-blockstats`: one device's I/O counters (times in ns); `qdev` names the guest device (`ua-<disk>`). */
const blockStats = object(
  { stats: object({ rd_bytes: integer, wr_bytes: integer, rd_operations: integer, wr_operations: integer, flush_operations: integer, rd_total_time_ns: integer, wr_total_time_ns: integer, flush_total_time_ns: integer }) },
  { device: string, qdev: string, 'node-name': string },
);

/**
 * One virtio-balloon guest statistic (bytes, or a count of page faults), or
 * undefined when the guest does not report it: QEMU holds -1 there, which
 * QEMU 7.2 prints as 2^64 - 1 (beyond what a double holds exactly).
 */
const guestStat = (value: unknown, path: string): number | undefined => {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new DecodeError(path, 'a number', value);
  return value >= 0 && Number.isSafeInteger(value) ? value : undefined;
};

/**
 * `qom-get` of a virtio-balloon's `guest-stats` property: what the guest's
 * driver last reported (QEMU asks it every `guest-stats-polling-interval`
 * seconds), and `last-update`, when it arrived (host seconds since the
 * epoch; 0 while nothing has).
 */
export const balloonGuestStats = object({
  stats: object({}, {
    'stat-swap-in': guestStat,
    'stat-swap-out': guestStat,
    'stat-major-faults': guestStat,
    'stat-minor-faults': guestStat,
    'stat-free-memory': guestStat,
    'stat-total-memory': guestStat,
    'stat-available-memory': guestStat,
    'stat-disk-caches': guestStat,
    'stat-htlb-pgalloc': guestStat,
    'stat-htlb-pgfail': guestStat,
  }),
  'last-update': integer,
});
export type BalloonGuestStats = Decoded<typeof balloonGuestStats>;

/** What each command returns, as a decoder. */
const returns = {
  qmp_capabilities: empty,
  'query-status': statusInfo,
  'query-version': object({ qemu: versionTriple, package: string }),
  'query-kvm': object({ enabled: boolean, present: boolean }),
  'query-name': object({}, { name: string }),
  'query-uuid': object({ UUID: string }),
  'query-cpus-fast': array(cpuInfoFast),
  'query-block': array(blockInfo),
  'query-balloon': object({ actual: integer }),
  'query-blockstats': array(blockStats),
  stop: empty,
  cont: empty,
  system_powerdown: empty,
  system_reset: empty,
  system_wakeup: empty,
  balloon: empty,
  quit: empty,
  block_resize: empty,
  'blockdev-add': empty,
  'blockdev-del': empty,
  'blockdev-reopen': empty,
  'blockdev-snapshot': empty,
  device_add: empty,
  device_del: empty,
  'object-add': empty,
  'object-del': empty,
  'human-monitor-command': string,
  'query-migrate': migrationInfo,
  'query-block-jobs': array(blockJobInfo),
  'migrate-set-capabilities': empty,
  'migrate-set-parameters': empty,
  migrate: empty,
  'migrate-incoming': empty,
  migrate_cancel: empty,
  'migrate-continue': empty,
  'migrate-start-postcopy': empty,
  'query-memory-size-summary': object({ 'base-memory': integer }, { 'plugged-memory': integer }),
  'nbd-server-start': empty,
  'nbd-server-stop': empty,
  'block-export-add': empty,
  'blockdev-mirror': empty,
  'block-job-cancel': empty,
  'announce-self': empty,
  /** A QOM property's value: its type depends on the property, so the caller decodes it (e.g. {@link balloonGuestStats}). */
  'qom-get': anyValue,
} satisfies Record<string, Decoder<unknown>>;

type Returns = { [C in keyof typeof returns]: Decoded<(typeof returns)[C]> };
// Re-typed as a mapped type so that indexing with a generic command name keeps its return type.
const returnDecoders: { [C in keyof Returns]: Decoder<Returns[C]> } = returns;

/** The commands the client knows. */
export type QmpCommandName = keyof Returns;

/** The arguments of the commands that take any. */
interface CommandArguments {
  qmp_capabilities: { enable?: 'oob'[] } | undefined;
  'human-monitor-command': { 'command-line': string; 'cpu-index'?: number };
  balloon: { value: number };
  /** Grows a disk under a running guest; `node-name` is the format node (`disk<index>`). */
  block_resize: { 'node-name': string; size: number };
  /**
   * Opens a qcow2 overlay as a new node, its backing left for `blockdev-snapshot` to attach;
   * or a hotplugged disk's file and format nodes (`BlockdevNodeArgs`).
   */
  'blockdev-add':
    | {
      driver: 'qcow2';
      'node-name': string;
      /** The file node, added first. */
      file: string;
      backing: null;
      cache?: { direct: boolean; 'no-flush': boolean };
      discard?: 'ignore' | 'unmap';
    }
    | BlockdevNodeArgs;
  'blockdev-del': { 'node-name': string };
  /** Opens qcow2 nodes again with these options (all of them: `file` and `backing` by node name). */
  'blockdev-reopen': {
    options: { driver: 'qcow2'; 'node-name': string; file: string; backing: string | null; 'read-only'?: boolean; cache?: { direct: boolean; 'no-flush': boolean }; discard?: 'ignore' | 'unmap' }[];
  };
  /** Puts node `overlay` on top of `node`, which becomes its backing: a live external snapshot. */
  'blockdev-snapshot': { node: string; overlay: string };
  /** Plugs a guest device; its properties are QEMU's typed (JSON) properties. */
  device_add: { driver: string; id: string } & Record<string, string | number | boolean>;
  /** Asks the guest to release a device; `DEVICE_DELETED` says when it is gone. */
  device_del: { id: string };
  /** A `secret` object (a disk's encryption key, itself encrypted with the VMI's master key). */
  'object-add':
    | { 'qom-type': 'secret'; id: string; data: string; format: 'base64'; keyid: string; iv: string }
    /** x509 credentials from `dir` (ca-cert.pem, and server-/client-cert.pem and -key.pem), read when the object is made: a migration's TLS. */
    | { 'qom-type': 'tls-creds-x509'; id: string; dir: string; endpoint: 'server' | 'client'; 'verify-peer': boolean };
  'object-del': { id: string };
  'migrate-set-capabilities': { capabilities: { capability: 'auto-converge' | 'pause-before-switchover' | 'late-block-activate' | 'events' | 'postcopy-ram'; state: boolean }[] };
  /** `max-bandwidth` in bytes per second; `downtime-limit` in ms; `tls-creds`: the id of a `tls-creds-x509` object for the stream (`''`: plain TCP); `tls-hostname`: the name the target's certificate must carry. */
  'migrate-set-parameters': { 'max-bandwidth'?: number; 'downtime-limit'?: number; 'tls-creds'?: string; 'tls-hostname'?: string };
  /** Starts an outgoing migration, e.g. to `tcp:HOST:PORT`. */
  migrate: { uri: string };
  /** A QEMU started with `-incoming defer` listens from now on, e.g. on `tcp:HOST:PORT`. */
  'migrate-incoming': { uri: string };
  /** Lets a migration paused in `pre-switchover` go on to switch over. */
  'migrate-continue': { state: 'pre-switchover' };
  /** `tls-creds`: only TLS clients that the credentials verify may connect. */
  'nbd-server-start': { addr: { type: 'inet'; data: { host: string; port: string } } | { type: 'unix'; data: { path: string } }; 'tls-creds'?: string };
  /** Exports a node (its disk's format node) over the NBD server. */
  'block-export-add': { type: 'nbd'; id: string; 'node-name': string; name: string; writable: boolean };
  /** Copies `device` into `target` and keeps it in step with the guest's writes until cancelled. */
  'blockdev-mirror': { 'job-id': string; device: string; target: string; sync: 'full' | 'top'; speed?: number };
  /** Ends a block job; a mirror that is ready ends with its target in step (no pivot). */
  'block-job-cancel': { device: string; force?: boolean };
  /** Sends RARP announcements of the guest's NICs (and asks a virtio guest for its gratuitous ARPs): `initial` ms, then `step` ms more each round, at most `max`. */
  'announce-self': { initial: number; max: number; rounds: number; step: number };
  /** Reads property `property` of the QOM object at `path` (e.g. `/machine/peripheral/balloon0`). */
  'qom-get': { path: string; property: string };
}

/** A file or format node of a disk, as `-blockdev` takes it but in QMP's typed form. */
export type BlockdevNodeArgs = { driver: string; 'node-name': string } & Record<string, string | number | boolean | Record<string, string | boolean>>;

/** The arguments of command `C` (`undefined` for commands without any). */
export type QmpArgs<C extends QmpCommandName> = C extends keyof CommandArguments ? CommandArguments[C] : undefined;

/** The typed, checked return value of command `C`. */
export type QmpReturn<C extends QmpCommandName> = Returns[C];

export type QmpStatusInfo = QmpReturn<'query-status'>;
export type QmpCpuInfo = QmpReturn<'query-cpus-fast'>[number];
export type QmpBlockInfo = QmpReturn<'query-block'>[number];

/** The decoder of command `C`'s return value. */
export function returnDecoder<C extends QmpCommandName>(command: C): Decoder<QmpReturn<C>> {
  return returnDecoders[command];
}

/** True for names of commands the client knows (used to check input from outside TypeScript). */
export function isQmpCommandName(name: string): name is QmpCommandName {
  return Object.hasOwn(returns, name);
}

const resetData = object({ guest: boolean, reason: shutdownCause });

/** The data of each event the agent acts on. */
const events = {
  SHUTDOWN: resetData,
  RESET: resetData,
  STOP: empty,
  RESUME: empty,
  POWERDOWN: empty,
  SUSPEND: empty,
  WAKEUP: empty,
  GUEST_PANICKED: object({ action: oneOf('pause', 'poweroff', 'run') }, { info: record }),
  BLOCK_IO_ERROR: object(
    { device: string, operation: oneOf('read', 'write'), action: oneOf('ignore', 'report', 'stop'), reason: string },
    { 'node-name': string, nospace: boolean },
  ),
  WATCHDOG: object({ action: oneOf('reset', 'shutdown', 'poweroff', 'pause', 'debug', 'none', 'inject-nmi') }),
  DEVICE_DELETED: object({ path: string }, { device: string }),
  BALLOON_CHANGE: object({ actual: integer }),
  MIGRATION: object({ status: migrationStatus }),
  BLOCK_JOB_READY: object({ type: string, device: string, len: integer, offset: integer, speed: integer }),
  BLOCK_JOB_COMPLETED: object({ type: string, device: string, len: integer, offset: integer, speed: integer }, { error: string }),
  BLOCK_JOB_CANCELLED: object({ type: string, device: string, len: integer, offset: integer, speed: integer }),
} satisfies Record<string, Decoder<unknown>>;

type EventData = { [E in keyof typeof events]: Decoded<(typeof events)[E]> };
const eventDecoders: { [E in keyof EventData]: Decoder<EventData[E]> } = events;

export type QmpEventName = keyof EventData;

/**
 * An event, by name. Events the client has no schema for arrive as
 * `{ event: 'unknown', name }` with their data unchecked, so nothing is lost
 * and nothing unchecked looks typed.
 */
export type QmpEvent =
  | { [E in QmpEventName]: { event: E; data: EventData[E]; timestamp: Date } }[QmpEventName]
  | { event: 'unknown'; name: string; data: Record<string, unknown>; timestamp: Date };

const eventEnvelope = object({ event: string, timestamp: object({ seconds: integer, microseconds: integer }) }, { data: record });

function isEventName(name: string): name is QmpEventName {
  return Object.hasOwn(events, name);
}

/** Checks one event message (already known to have an `event` member). */
export function decodeEvent(message: unknown): QmpEvent {
  const envelope = eventEnvelope(message, 'event');
  const timestamp = new Date(envelope.timestamp.seconds * 1000 + Math.floor(envelope.timestamp.microseconds / 1000));
  const raw = envelope.data ?? {};
  const name = envelope.event;
  if (!isEventName(name)) return { event: 'unknown', name, data: raw, timestamp };
  return decodeKnown(name, raw, timestamp);
}

function decodeKnown(name: QmpEventName, raw: Record<string, unknown>, timestamp: Date): QmpEvent {
  const data = eventDecoders[name](raw, `${name}.data`);
  // TypeScript cannot correlate `name` with `data` across the union of events; both come from the same key.
  return { event: name, data, timestamp } as QmpEvent;
}
