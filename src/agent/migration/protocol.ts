/**
 * What the migration controller asks of the two agents of a live
 * migration, and what they answer: the target prepares a QEMU waiting for
 * the guest (disks exported over NBD), the source mirrors its disks into
 * them and streams the guest's memory, then each side finishes or gives
 * up. One discriminated union, parsed at the wire (the agent endpoint's
 * `migration` operation) before it becomes typed.
 */
import { asRecord, booleanAt, numberAt, stringAt } from '../../api/kinds/read.js';
import type { ConvergenceSettings, MigrationMode } from './convergence.js';

/** Where the target QEMU waits: the migration stream's and the NBD server's ports on the target node's address, and the disks exported. */
export interface MigrationTarget {
  address: string;
  migrationPort: number;
  nbdPort: number;
  /** The exported nodes (each exported under its node name): the target's writable disks. */
  exports: string[];
  /** The claims' volumes made afresh on the target node for the copy (none: the VMI has no claims). */
  volumes?: MovedVolume[];
}

/** A claim's local volume copied to the target node: its PersistentVolume, and its `spec.local.path` there. */
export interface MovedVolume {
  claimUid: string;
  persistentVolume: string;
  path: string;
}

/**
 * One QEMU's TLS credentials for a migration, issued by the cluster CA for
 * this migration only: the target's serving certificate (naming its node
 * address) or the source's client certificate, each with the CA the other
 * side's is verified against. Sent only in commands, never stored.
 */
export interface MigrationTls {
  caCert: string;
  cert: string;
  key: string;
}

/** A step of one migration (`migrationUid`, the VirtualMachineInstanceMigration's uid) on one agent. */
export type MigrationCommand =
  /** Target: start a QEMU for VMI `vmiUid` with `-incoming`, listening on `address` (ready for post-copy when `allowPostCopy`). */
  | { step: 'prepare-target'; migrationUid: string; vmiUid: string; address: string; allowPostCopy?: boolean; tls?: MigrationTls }
  /** Source: mirror the disks into `target`'s exports, then migrate (in the background; `source-status` follows it), enforcing `convergence`. */
  | { step: 'start-source'; migrationUid: string; target: MigrationTarget; bandwidthBytesPerSecond?: number; convergence?: ConvergenceSettings; tls?: MigrationTls }
  | { step: 'source-status'; migrationUid: string }
  /** Target: the migration switched to post-copy: the guest runs here from now on (its memory still arriving). */
  | { step: 'resume-target'; migrationUid: string }
  /** Target: the guest arrived: resume it and take the VMI over. */
  | { step: 'finish-target'; migrationUid: string }
  /** Source: the guest left: quit its QEMU and remove its files. */
  | { step: 'finish-source'; migrationUid: string }
  /** Source: stop mirroring and migrating; the guest runs on here. */
  | { step: 'cancel-source'; migrationUid: string }
  /** Target: kill the waiting QEMU and remove what was made for it. */
  | { step: 'abort-target'; migrationUid: string };

export type MigrationStep = MigrationCommand['step'];

/** Where a source is with its migration. */
export type SourceState = 'mirroring' | 'migrating' | 'completed' | 'failed' | 'cancelled' | 'unknown';

/** The source's progress: `downtimeMs` and `totalTimeMs` as QEMU measured them, once completed. */
export interface SourceProgress {
  state: SourceState;
  message?: string;
  downtimeMs?: number;
  totalTimeMs?: number;
  /** True when local disks were copied (KubeVirt's BlockMigration). */
  disksCopied?: boolean;
  /** KubeVirt's migration mode: PreCopy, PostCopy once switched, Paused when the guest was paused to converge. */
  mode?: MigrationMode;
  /** In post-copy, the guest has left the source: the target must run it now. */
  switchedOver?: boolean;
  /** The source aborted the migration itself (a timeout, `message` saying which): KubeVirt's abortStatus Succeeded. */
  aborted?: boolean;
}

/** An agent's answer: the target it prepared, or the source's progress, or neither. */
export interface MigrationAnswer {
  target?: MigrationTarget;
  source?: SourceProgress;
}

const steps: ReadonlySet<string> = new Set<MigrationStep>(['prepare-target', 'start-source', 'source-status', 'resume-target', 'finish-target', 'finish-source', 'cancel-source', 'abort-target']);
const modes: ReadonlySet<string> = new Set<MigrationMode>(['PreCopy', 'PostCopy', 'Paused']);
const sourceStates: ReadonlySet<string> = new Set<SourceState>(['mirroring', 'migrating', 'completed', 'failed', 'cancelled', 'unknown']);

function isStep(value: string): value is MigrationStep {
  return steps.has(value);
}

function isMode(value: string): value is MigrationMode {
  return modes.has(value);
}

function isSourceState(value: string): value is SourceState {
  return sourceStates.has(value);
}

function requiredString(value: unknown, field: string): string {
  const s = stringAt(value, field);
  if (s === undefined || s === '') throw new Error(`${field} is missing: a migration command names it`);
  return s;
}

function port(value: unknown, field: string): number {
  const n = numberAt(value, field);
  if (n === undefined || !Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${field} must be a TCP port (1-65535)`);
  return n;
}

/** Checks a target description from the wire. */
export function parseMigrationTarget(value: unknown): MigrationTarget {
  const record = asRecord(value);
  if (record === undefined) throw new Error('target must be an object');
  const exports = record.exports;
  if (!Array.isArray(exports) || !exports.every((e): e is string => typeof e === 'string' && /^[A-Za-z][\w-]{0,63}$/.test(e))) throw new Error('target.exports must be a list of block node names');
  const target: MigrationTarget = { address: requiredString(record, 'address'), migrationPort: port(record, 'migrationPort'), nbdPort: port(record, 'nbdPort'), exports };
  if (record.volumes !== undefined) {
    if (!Array.isArray(record.volumes)) throw new Error('target.volumes must be a list');
    target.volumes = record.volumes.map((v: unknown) => parseMovedVolume(v));
  }
  return target;
}

function parseMovedVolume(value: unknown): MovedVolume {
  const path = requiredString(value, 'path');
  if (!path.startsWith('/')) throw new Error(`target.volumes[].path must be an absolute path, not ${JSON.stringify(path)}`);
  return { claimUid: requiredString(value, 'claimUid'), persistentVolume: requiredString(value, 'persistentVolume'), path };
}

/** Checks the convergence settings of a start-source command. */
export function parseConvergenceSettings(value: unknown): ConvergenceSettings {
  const record = asRecord(value);
  if (record === undefined) throw new Error('convergence must be an object');
  const flag = (field: string): boolean => {
    const b = booleanAt(record, field);
    if (b === undefined) throw new Error(`convergence.${field} must be true or false`);
    return b;
  };
  const seconds = (field: string): number => {
    const n = numberAt(record, field);
    if (n === undefined || !Number.isSafeInteger(n) || n < 0) throw new Error(`convergence.${field} must be a whole number of seconds, 0 or more`);
    return n;
  };
  return {
    allowAutoConverge: flag('allowAutoConverge'),
    allowPostCopy: flag('allowPostCopy'),
    allowWorkloadDisruption: flag('allowWorkloadDisruption'),
    completionTimeoutPerGiB: seconds('completionTimeoutPerGiB'),
    progressTimeoutSeconds: seconds('progressTimeoutSeconds'),
  };
}

function pem(value: unknown, field: string, label: RegExp): string {
  const text = stringAt(value, field);
  if (text === undefined || !label.test(text)) throw new Error(`tls.${field} must be a PEM ${field === 'key' ? 'private key' : 'certificate'}`);
  return text;
}

/** Checks the TLS credentials of a prepare-target or start-source command. */
export function parseMigrationTls(value: unknown): MigrationTls {
  const record = asRecord(value);
  if (record === undefined) throw new Error('tls must be an object with caCert, cert and key');
  const certificate = /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\s*$/;
  return { caCert: pem(record, 'caCert', certificate), cert: pem(record, 'cert', certificate), key: pem(record, 'key', /^-----BEGIN (EC |RSA )?PRIVATE KEY-----\n[\s\S]+-----END (EC |RSA )?PRIVATE KEY-----\s*$/) };
}

/** Checks a command from the wire; throws saying what is wrong. */
export function parseMigrationCommand(value: unknown): MigrationCommand {
  const record = asRecord(value);
  if (record === undefined) throw new Error('a migration command must be a JSON object');
  const step = stringAt(record, 'step') ?? '';
  if (!isStep(step)) throw new Error(`unknown migration step ${JSON.stringify(step)}: use one of ${[...steps].join(', ')}`);
  const migrationUid = requiredString(record, 'migrationUid');
  switch (step) {
    case 'prepare-target': {
      const allowPostCopy = booleanAt(record, 'allowPostCopy');
      const tls = record.tls === undefined ? undefined : parseMigrationTls(record.tls);
      return { step, migrationUid, vmiUid: requiredString(record, 'vmiUid'), address: requiredString(record, 'address'), ...(allowPostCopy === undefined ? {} : { allowPostCopy }), ...(tls === undefined ? {} : { tls }) };
    }
    case 'start-source': {
      const bandwidth = numberAt(record, 'bandwidthBytesPerSecond');
      if (bandwidth !== undefined && (!Number.isSafeInteger(bandwidth) || bandwidth < 0)) throw new Error('bandwidthBytesPerSecond must be a whole number of bytes per second');
      const convergence = record.convergence === undefined ? undefined : parseConvergenceSettings(record.convergence);
      const tls = record.tls === undefined ? undefined : parseMigrationTls(record.tls);
      return { step, migrationUid, target: parseMigrationTarget(record.target), ...(bandwidth === undefined ? {} : { bandwidthBytesPerSecond: bandwidth }), ...(convergence === undefined ? {} : { convergence }), ...(tls === undefined ? {} : { tls }) };
    }
    default:
      return { step, migrationUid };
  }
}

/** Checks an agent's answer from the wire. */
export function parseMigrationAnswer(value: unknown): MigrationAnswer {
  const record = asRecord(value);
  if (record === undefined) throw new Error('a migration answer must be a JSON object');
  const answer: MigrationAnswer = {};
  if (record.target !== undefined) answer.target = parseMigrationTarget(record.target);
  const source = asRecord(record.source);
  if (source !== undefined) {
    const state = stringAt(source, 'state') ?? '';
    if (!isSourceState(state)) throw new Error(`unknown source state ${JSON.stringify(state)}`);
    const progress: SourceProgress = { state };
    const message = stringAt(source, 'message');
    if (message !== undefined) progress.message = message;
    const downtime = numberAt(source, 'downtimeMs');
    if (downtime !== undefined) progress.downtimeMs = downtime;
    const total = numberAt(source, 'totalTimeMs');
    if (total !== undefined) progress.totalTimeMs = total;
    if (typeof source.disksCopied === 'boolean') progress.disksCopied = source.disksCopied;
    const mode = stringAt(source, 'mode');
    if (mode !== undefined && isMode(mode)) progress.mode = mode;
    if (typeof source.switchedOver === 'boolean') progress.switchedOver = source.switchedOver;
    if (typeof source.aborted === 'boolean') progress.aborted = source.aborted;
    answer.source = progress;
  }
  return answer;
}
