/**
 * The source side of live migrations on one node. Block migration as
 * libvirt drives it: each writable local disk is mirrored (`blockdev-mirror`,
 * sync full) into the target's NBD export until the mirror is ready, then
 * the memory is migrated (pre-copy; auto-converge and post-copy when
 * allowed) with QEMU pausing before the switch-over, where the mirrors are
 * completed with the guest paused, then the switch-over. The run is
 * followed by polling, each sample going through the migration's
 * {@link ConvergenceMonitor} (timeouts, post-copy); a cancel before the
 * switch-over stops both and leaves the guest running here; a post-copy
 * migration cannot be cancelled.
 */
import { join } from 'node:path';
import type { Logger } from '../../log/logger.js';
import type { Machine } from '../machine.js';
import { QmpError } from '../qmp/index.js';
import type { MigrationHost } from './host.js';
import { hostPort, migrationDataBytes, writableNodes } from './host.js';
import { ConvergenceAbort, ConvergenceMonitor } from './convergence.js';
import type { ConvergenceSettings, MigrationMode } from './convergence.js';
import type { MigrationTarget, MovedVolume, SourceProgress } from './protocol.js';
import { SocketRelay, closeRelays } from './socket-relay.js';
import { StallWatch, probeTarget, severConnections, stallLimitMs } from './stall.js';
import { loadCredentials, unloadCredentials } from './tls-creds.js';
import type { MigrationTls } from './protocol.js';

/** How often QEMU is asked how far the mirrors and the migration are: each step waits a poll on average, and the guest stays paused through the pre-switchover ones (a query is ~1 ms). */
const pollMs = 20;

/** `max-bandwidth` without a policy: QEMU's default (32 MiB/s) would slow every migration, KubeVirt's default is unlimited. */
const unlimitedBytesPerSecond = 10 * 1024 ** 3;

/** Without settings from the controller: auto-converge, no timeouts (how this agent migrated before it enforced settings). */
const unmanagedSettings: ConvergenceSettings = { allowAutoConverge: true, allowPostCopy: false, allowWorkloadDisruption: false, completionTimeoutPerGiB: 0, progressTimeoutSeconds: 0 };

interface Outgoing {
  migrationUid: string;
  machine: Machine;
  /** A sandboxed QEMU's relays from its unix sockets to the target. */
  relays: SocketRelay[];
  progress: SourceProgress;
  mode: MigrationMode;
  /** Post-copy was asked for while the disks were still mirroring: switch once the memory migration starts. */
  postCopyPending: boolean;
  /** In post-copy, the guest left: this QEMU must not run it again. */
  switchedOver: boolean;
  /** Aborted by a cancel. */
  abort: AbortController;
  run: Promise<void>;
  /** The claims' volumes copied to the target. */
  volumes: MovedVolume[];
  /** Set once a QMP command hung on the silent target and its sockets were closed: the cause of what QEMU reports next. */
  severed?: string;
}

/** What a migration run needs besides the machine. */
export interface OutgoingOptions {
  target: MigrationTarget;
  bandwidthBytesPerSecond?: number;
  convergence?: ConvergenceSettings;
  /** The source's client certificate for this migration: the NBD connections and the stream go over TLS, the target's certificate verified. */
  tls?: MigrationTls;
}

class Cancelled extends Error {
  constructor() {
    super('the migration was cancelled');
  }
}

/** The node's outgoing migrations, by migration uid. */
export class MigrationSources {
  private readonly outgoing = new Map<string, Outgoing>();

  constructor(private readonly host: MigrationHost, private readonly logger: Logger) {}

  /** Starts migrating `machine` (once per migration: a repeated call is a no-op). */
  start(migrationUid: string, machine: Machine, options: OutgoingOptions): void {
    if (this.outgoing.has(migrationUid)) return;
    const abort = new AbortController();
    const entry: Outgoing = { migrationUid, machine, relays: [], progress: { state: 'mirroring', mode: 'PreCopy' }, mode: 'PreCopy', postCopyPending: false, switchedOver: false, abort, run: Promise.resolve(), volumes: options.target.volumes ?? [] };
    this.host.holdForMigration(machine.key, machine.record.uid);
    entry.run = this.run(entry, options, abort.signal).then(
      (progress) => { entry.progress = progress; },
      async (err: unknown) => {
        const cancelled = err instanceof Cancelled;
        const aborted = err instanceof ConvergenceAbort;
        const reason = err instanceof Error ? err.message : String(err);
        // QEMU's own error after the sockets to a silent target were closed (a broken TLS handshake, a failed read) names the effect; the cause is the silence.
        const why = entry.severed !== undefined && !reason.startsWith(entry.severed) ? `${entry.severed} (QEMU: ${reason})` : reason;
        entry.progress = { state: cancelled ? 'cancelled' : 'failed', message: cancelled || aborted ? err.message : `migration failed: ${why}`, mode: entry.mode, ...(aborted ? { aborted } : {}) };
        // After a post-copy switch-over this QEMU's memory is stale: it must not run the guest again.
        if (entry.switchedOver) entry.progress.message = `${entry.progress.message ?? ''} (after the post-copy switch-over: the guest cannot run on at the source)`;
        else await this.rollBack(entry);
        this.host.migrationEnded(machine.record.uid);
        this.logger.info(entry.switchedOver ? 'migration failed after the post-copy switch-over' : 'migration ended on the source; the guest runs on here', { migrationUid, uid: machine.record.uid, state: entry.progress.state, message: entry.progress.message });
      },
    );
    this.outgoing.set(migrationUid, entry);
  }

  /** The claims' volumes the target made for migration `migrationUid`: their copies here go once it finished. */
  movedVolumes(migrationUid: string): MovedVolume[] {
    return this.outgoing.get(migrationUid)?.volumes ?? [];
  }

  /** Where migration `migrationUid` is; `unknown` when this agent knows nothing of it (restarted). */
  status(migrationUid: string): SourceProgress {
    return this.outgoing.get(migrationUid)?.progress ?? { state: 'unknown', message: 'the source agent knows nothing of this migration (it restarted?)' };
  }

  /** Whether this agent knows migration `migrationUid` (it started it, or took it over after a restart). */
  knows(migrationUid: string): boolean {
    return this.outgoing.has(migrationUid);
  }

  /**
   * Takes over migration `migrationUid` of `machine` after this agent
   * restarted mid-way (the QEMU ran on, the run that drove it did not). No
   * run can be resumed, so QEMU's own state decides: a migration QEMU
   * completed (the switch-over was done) stays completed for the
   * controller to finish; anything else is rolled back and the guest runs
   * on here. Never both: the target only resumes after a completed one.
   */
  async adopt(migrationUid: string, machine: Machine): Promise<SourceProgress> {
    const known = this.outgoing.get(migrationUid);
    if (known !== undefined) return known.progress;
    const info = await machine.execute('query-migrate');
    // The claims' copies are not known here after a restart: the source's copies of moved claims stay (a known limit).
    const entry: Outgoing = { migrationUid, machine, relays: [], progress: { state: 'unknown' }, mode: 'PreCopy', postCopyPending: false, switchedOver: false, abort: new AbortController(), run: Promise.resolve(), volumes: [] };
    this.outgoing.set(migrationUid, entry);
    this.host.holdForMigration(machine.key, machine.record.uid);
    if (info.status === 'completed') {
      entry.progress = { state: 'completed', ...(info.downtime === undefined ? {} : { downtimeMs: info.downtime }), ...(info['total-time'] === undefined ? {} : { totalTimeMs: info['total-time'] }) };
      this.logger.info('took over a completed migration after a restart', { migrationUid, uid: machine.record.uid });
      return entry.progress;
    }
    if (info.status === 'postcopy-active' || info.status === 'postcopy-paused' || info.status === 'postcopy-recover') {
      // Past a post-copy switch-over this QEMU's memory is stale: never rolled back, followed until QEMU ends it.
      entry.switchedOver = true;
      entry.mode = 'PostCopy';
      entry.progress = { state: 'migrating', mode: 'PostCopy', switchedOver: true };
      entry.run = this.followAdopted(entry);
      return entry.progress;
    }
    entry.progress = { state: 'failed', message: `migration failed: the source node's agent restarted during the migration (QEMU's migration was ${info.status ?? 'not started'}); it was rolled back and the guest runs on at the source` };
    entry.run = this.rollBack(entry).finally(() => {
      this.host.migrationEnded(machine.record.uid);
      this.logger.info('rolled back a migration interrupted by an agent restart; the guest runs on here', { migrationUid, uid: machine.record.uid });
    });
    await entry.run;
    return entry.progress;
  }

  /** Polls an adopted post-copy migration until QEMU completes or fails it. */
  private async followAdopted(entry: Outgoing): Promise<void> {
    await this.until(entry.abort.signal, async () => {
      const info = await entry.machine.execute('query-migrate');
      if (info.status === 'completed') entry.progress = { state: 'completed', mode: 'PostCopy', ...(info.downtime === undefined ? {} : { downtimeMs: info.downtime }), ...(info['total-time'] === undefined ? {} : { totalTimeMs: info['total-time'] }) };
      else if (info.status === 'failed') entry.progress = { state: 'failed', mode: 'PostCopy', message: `migration failed after the post-copy switch-over: ${info['error-desc'] ?? 'QEMU reports the migration failed'} (the guest cannot run on at the source)` };
      return info.status === 'completed' || info.status === 'failed';
    }).catch((err: unknown) => { this.logger.warn('cannot follow an adopted post-copy migration', { err }); });
  }

  /** Stops a migration that has not switched over; resolves once the guest runs on here alone. */
  async cancel(migrationUid: string): Promise<SourceProgress> {
    const entry = this.outgoing.get(migrationUid);
    if (entry === undefined) return this.status(migrationUid);
    if (entry.progress.state === 'completed') throw new Error('the migration has already switched over: the guest runs on the target');
    if (entry.mode === 'PostCopy' && entry.progress.state === 'migrating') throw new Error('the migration is in post-copy mode: the guest runs on the target, with part of its memory still here; it cannot be cancelled and completes by itself');
    entry.abort.abort(new Cancelled());
    await entry.run;
    return entry.progress;
  }

  /** The guest runs on the target: quit QEMU here and remove its files. */
  async finish(migrationUid: string): Promise<void> {
    const entry = this.outgoing.get(migrationUid);
    if (entry === undefined) return;
    if (entry.progress.state !== 'completed') throw new Error(`the migration has not completed (${entry.progress.state})`);
    const { machine } = entry;
    this.host.handOver(machine.record.uid);
    await machine.execute('quit').catch(() => undefined);
    machine.detach();
    await machine.kill();
    await closeRelays(entry.relays);
    await this.host.networkDeparted(machine.record.uid, AbortSignal.timeout(30_000));
    await this.host.removeGuestFiles(machine.record.uid);
    this.outgoing.delete(migrationUid);
    this.logger.info('migrated guest left this node', { migrationUid, uid: machine.record.uid });
  }

  private async run(entry: Outgoing, options: OutgoingOptions, signal: AbortSignal): Promise<SourceProgress> {
    const { machine } = entry;
    const { target } = options;
    const settings = options.convergence ?? unmanagedSettings;
    const monitor = new ConvergenceMonitor(settings, await migrationDataBytes(machine), Date.now());
    const nodes = await writableNodes(machine);
    for (const node of nodes) {
      if (!target.exports.includes(node)) throw new Error(`the target exports no disk for ${node} (it exports ${target.exports.join(', ') || 'none'})`);
    }
    if (nodes.length > 0) await probeTarget(target);
    const paths = await targetPaths(machine, target, this.host.sandboxed(machine.record.uid), entry.relays);
    // The target's certificate names its node address: checked for unix (relayed) connections too, where QEMU has no host to check against.
    const tls = options.tls === undefined ? {} : { 'tls-creds': await loadCredentials(machine, entry.migrationUid, 'client', options.tls), 'tls-hostname': target.address };
    for (const node of nodes) {
      // An NBD node an interrupted migration left (its agent restarted before the roll-back) would clash with the new one.
      await machine.execute('blockdev-del', { 'node-name': mirrorNode(node) }).catch(() => undefined);
      await unblockedBy(target, () => machine.execute('blockdev-add', { driver: 'nbd', 'node-name': mirrorNode(node), server: paths.nbdServer, export: node, ...tls }), this.logger, entry);
      await machine.execute('blockdev-mirror', { 'job-id': mirrorNode(node), device: node, target: mirrorNode(node), sync: 'full' });
    }
    const mirrorWatch = new StallWatch();
    await this.until(signal, async () => {
      // A QEMU blocked on a link to the target that went silent answers no poll: its sockets to the target go, and it answers again.
      const jobs = await unblockedBy(target, () => machine.execute('query-block-jobs'), this.logger, entry);
      await this.failIfStalled(mirrorWatch, jobs.reduce((sum, j) => sum + j.offset, 0), target);
      for (const node of nodes) {
        const job = jobs.find((j) => j.device === mirrorNode(node));
        if (job === undefined) throw new Error(`the mirror of ${node} into the target ended before it was in step`);
        if (job.error !== undefined) throw new Error(`the mirror of ${node} failed: ${job.error}`);
      }
      await this.converge(entry, monitor, jobs.filter((j) => j.device.startsWith('migration-')).reduce((sum, j) => sum + Math.max(0, j.len - j.offset), 0));
      return nodes.every((node) => jobs.find((j) => j.device === mirrorNode(node))?.ready === true);
    });
    entry.progress = { state: 'migrating', disksCopied: nodes.length > 0, mode: entry.mode };
    await machine.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'auto-converge', state: settings.allowAutoConverge },
        { capability: 'pause-before-switchover', state: true },
        // Set either way: a QEMU keeps capabilities from an earlier migration that was given up.
        { capability: 'postcopy-ram', state: settings.allowPostCopy },
      ],
    });
    // Set either way: a QEMU keeps the TLS parameters of an earlier migration.
    await machine.execute('migrate-set-parameters', { 'max-bandwidth': options.bandwidthBytesPerSecond ?? unlimitedBytesPerSecond, 'tls-creds': tls['tls-creds'] ?? '', 'tls-hostname': tls['tls-hostname'] ?? '' });
    await machine.execute('migrate', { uri: paths.migrationUri });
    // QEMU makes the stream's TLS handshake in its main loop: a target that went silent then holds the monitor, and these commands with it.
    await unblockedBy(target, () => this.logSettings(machine), this.logger, entry);
    if (entry.postCopyPending) await this.startPostCopy(entry);
    let completed: SourceProgress | undefined;
    let streamWatch = new StallWatch();
    // QEMU leaves `pre-switchover` asynchronously after `migrate-continue`: a poll may see it again, and the mirrors are gone by then.
    let continued = false;
    await this.until(signal, async () => {
      const info = await unblockedBy(target, () => machine.execute('query-migrate'), this.logger, entry);
      if (info.status === 'active' || info.status === 'setup') await this.failIfStalled(streamWatch, info.ram?.transferred ?? 0, target);
      switch (info.status) {
        case 'active':
          await this.converge(entry, monitor, info.ram?.remaining);
          return false;
        case 'postcopy-active':
          // The guest left: the target runs it (the controller resumes it there) while the rest of its memory follows.
          entry.switchedOver = true;
          entry.progress = { state: 'migrating', disksCopied: nodes.length > 0, mode: entry.mode, switchedOver: true };
          return false;
        case 'postcopy-paused':
          throw new Error('the post-copy stream broke (QEMU paused it): neither node holds all of the guest\'s memory');
        case 'pre-switchover':
          if (continued) return false;
          // The guest is paused: the mirrors catch up with its last writes and end, then the switch-over.
          await this.completeMirrors(machine, nodes);
          await machine.execute('migrate-continue', { state: 'pre-switchover' });
          continued = true;
          streamWatch = new StallWatch();
          return false;
        case 'completed':
          completed = { state: 'completed', disksCopied: nodes.length > 0, mode: entry.mode, ...(info.downtime === undefined ? {} : { downtimeMs: info.downtime }), ...(info['total-time'] === undefined ? {} : { totalTimeMs: info['total-time'] }) };
          return true;
        case 'failed':
          throw new Error(info['error-desc'] ?? 'QEMU reports the migration failed');
        case 'cancelled':
          throw new Cancelled();
        default:
          return false;
      }
    });
    if (completed === undefined) throw new Error('the migration ended without completing');
    this.logger.info('migration completed on the source', { uid: machine.record.uid, downtimeMs: completed.downtimeMs, totalTimeMs: completed.totalTimeMs });
    return completed;
  }

  /** Logs the capabilities and parameters QEMU migrates with, as QEMU reports them (the benchmark's baseline is checked against them); inside the first poll's wait. */
  private async logSettings(machine: Machine): Promise<void> {
    const text = async (command: string): Promise<string> => (await machine.execute('human-monitor-command', { 'command-line': command })).trim().split(/\r?\n/).join('; ');
    try {
      this.logger.info('memory migration started', { uid: machine.record.uid, capabilities: await text('info migrate_capabilities'), parameters: await text('info migrate_parameters') });
    } catch (err) {
      this.logger.warn('cannot read the migration settings back from QEMU', { uid: machine.record.uid, err });
    }
  }

  /** Fails the run once nothing moved to the target for too long; the sockets to it go first, so that the roll-back does not hang on them. */
  private async failIfStalled(watch: StallWatch, bytes: number, target: MigrationTarget): Promise<void> {
    const stalled = watch.observe(bytes);
    if (stalled === undefined) return;
    await severConnections(target).catch((err: unknown) => { this.logger.warn('cannot close the connections to a silent migration target', { err }); });
    throw new Error(stalled);
  }

  /** Carries out what the convergence monitor says about a sample of `remainingBytes`. */
  private async converge(entry: Outgoing, monitor: ConvergenceMonitor, remainingBytes: number | undefined): Promise<void> {
    const action = monitor.observe(Date.now(), remainingBytes, entry.mode);
    switch (action.kind) {
      case 'wait':
        return;
      case 'abort':
        this.logger.warn('aborting the migration', { uid: entry.machine.record.uid, reason: action.reason });
        throw new ConvergenceAbort(action.reason);
      case 'pause':
        this.logger.info('completion timeout reached: pausing the guest so that the migration completes', { uid: entry.machine.record.uid });
        await entry.machine.execute('stop');
        this.setMode(entry, 'Paused');
        return;
      case 'post-copy':
        if (entry.progress.state === 'mirroring') entry.postCopyPending = true;
        else await this.startPostCopy(entry);
        return;
      default:
        assertNever(action);
    }
  }

  private async startPostCopy(entry: Outgoing): Promise<void> {
    this.logger.info('completion timeout reached: switching the migration to post-copy', { uid: entry.machine.record.uid });
    await entry.machine.execute('migrate-start-postcopy');
    this.setMode(entry, 'PostCopy');
  }

  private setMode(entry: Outgoing, mode: MigrationMode): void {
    entry.mode = mode;
    entry.progress = { ...entry.progress, mode };
  }

  /** Cancels each mirror (ready ones complete without a pivot: the target holds all the guest wrote) and waits until they are gone. */
  private async completeMirrors(machine: Machine, nodes: readonly string[]): Promise<void> {
    for (const node of nodes) await machine.execute('block-job-cancel', { device: mirrorNode(node) });
    const deadline = Date.now() + 60_000;
    while ((await machine.execute('query-block-jobs')).some((j) => nodes.some((n) => j.device === mirrorNode(n)))) {
      if (Date.now() > deadline) throw new Error('the disk mirrors did not finish within 60 s of the guest pausing');
      await sleep(pollMs);
    }
  }

  /** Undoes a migration that did not complete: the stream and the mirrors stop, the NBD connections close, the guest runs. */
  private async rollBack(entry: Outgoing): Promise<void> {
    const { machine } = entry;
    if (machine.exit !== undefined) {
      await closeRelays(entry.relays);
      return;
    }
    const quietly = async (what: () => Promise<unknown>): Promise<void> => {
      try {
        await what();
      } catch (err) {
        if (!(err instanceof QmpError)) this.logger.warn('migration roll-back step failed', { err });
      }
    };
    await quietly(() => machine.execute('migrate_cancel'));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const info = await machine.execute('query-migrate').catch(() => undefined);
      if (info?.status !== 'cancelling' && info?.status !== 'active' && info?.status !== 'pre-switchover' && info?.status !== 'setup') break;
      if (Date.now() > deadline) break;
      await sleep(pollMs);
    }
    const jobs = await machine.execute('query-block-jobs').catch(() => []);
    for (const job of jobs) {
      if (job.device.startsWith('migration-')) await quietly(() => machine.execute('block-job-cancel', { device: job.device, force: true }));
    }
    while ((await machine.execute('query-block-jobs').catch(() => [])).some((j) => j.device.startsWith('migration-'))) {
      if (Date.now() > deadline) break;
      await sleep(pollMs);
    }
    for (const node of await writableNodes(machine).catch(() => [])) await quietly(() => machine.execute('blockdev-del', { 'node-name': mirrorNode(node) }));
    // A cancel at the switch-over point leaves the guest paused: it runs on here.
    const state = await machine.refreshRunState().catch(() => 'unknown');
    if (state === 'paused' || state === 'postmigrate' || state === 'finish-migrate') await quietly(() => machine.execute('cont'));
    await machine.refreshRunState().catch(() => undefined);
    await quietly(() => machine.execute('migrate-set-parameters', { 'tls-creds': '', 'tls-hostname': '' }));
    await unloadCredentials(machine, entry.migrationUid);
    await closeRelays(entry.relays);
  }

  /** Polls `check` until it is true; a cancel ends the wait with {@link Cancelled}. */
  private async until(signal: AbortSignal, check: () => Promise<boolean>): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new Cancelled();
      if (await check()) return;
      await sleep(pollMs);
    }
  }
}

/**
 * How QEMU reaches the target: its node address directly, or, for a QEMU
 * in a network sandbox, unix sockets in its directory relayed by this
 * agent (`relays`) to the target's ports.
 */
async function targetPaths(machine: Machine, target: MigrationTarget, sandboxed: boolean, relays: SocketRelay[]): Promise<{ nbdServer: Record<string, string>; migrationUri: string }> {
  if (!sandboxed) return { nbdServer: { type: 'inet', host: target.address, port: String(target.nbdPort) }, migrationUri: `tcp:${hostPort(target.address, target.migrationPort)}` };
  const nbdPath = join(machine.layout.dir, 'nbd-out.sock');
  const migrationPath = join(machine.layout.dir, 'migration-out.sock');
  relays.push(await SocketRelay.unixToTcp(nbdPath, target.address, target.nbdPort));
  relays.push(await SocketRelay.unixToTcp(migrationPath, target.address, target.migrationPort));
  return { nbdServer: { type: 'unix', path: nbdPath }, migrationUri: `unix:${migrationPath}` };
}

/** The NBD client node (and mirror job) for disk node `node`. */
function mirrorNode(node: string): string {
  return `migration-${node}`;
}

function assertNever(value: never): never {
  throw new Error(`unhandled convergence action ${JSON.stringify(value)}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `step`, a QMP command of a migrating QEMU. QEMU connects to the
 * target (and makes its TLS handshake) synchronously, and may block on a
 * link to the target that went silent: its QMP then answers nothing until
 * TCP gives up, many minutes later, and no stall watch could act. When
 * `step` has not returned within the stall limit, the sockets to the
 * target are closed: QEMU's I/O on them fails, and it answers again.
 */
async function unblockedBy<T>(target: MigrationTarget, step: () => Promise<T>, logger: Logger, entry: Pick<Outgoing, 'severed'>): Promise<T> {
  const timer = setTimeout(() => {
    entry.severed = `no data reached the target for ${Math.round(stallLimitMs / 1000)} s: the target node or the network to it is down`;
    logger.warn('connecting to the migration target takes too long: closing the sockets to it', { address: target.address });
    severConnections(target).catch((err: unknown) => { logger.warn('cannot close the connections to a silent migration target', { err }); });
  }, stallLimitMs);
  try {
    return await step();
  } finally {
    clearTimeout(timer);
  }
}
