/**
 * The source side of live migrations on one node. Block migration as
 * libvirt drives it: each writable local disk is mirrored (`blockdev-mirror`,
 * sync full) into the target's NBD export until the mirror is ready, then
 * the memory is migrated (pre-copy, auto-converge) with QEMU pausing before
 * the switch-over, where the mirrors are completed with the guest paused,
 * then the switch-over. The run is followed by polling; a cancel before the
 * switch-over stops both and leaves the guest running here.
 */
import type { Logger } from '../../log/logger.js';
import type { Machine } from '../machine.js';
import { QmpError } from '../qmp/index.js';
import type { MigrationHost } from './host.js';
import { hostPort, writableNodes } from './host.js';
import type { MigrationTarget, SourceProgress } from './protocol.js';

/** How often QEMU is asked how far the mirrors and the migration are: each step waits a poll on average, and the guest stays paused through the pre-switchover ones (a query is ~1 ms). */
const pollMs = 20;

/** `max-bandwidth` without a policy: QEMU's default (32 MiB/s) would slow every migration, KubeVirt's default is unlimited. */
const unlimitedBytesPerSecond = 10 * 1024 ** 3;

interface Outgoing {
  machine: Machine;
  progress: SourceProgress;
  /** Aborted by a cancel. */
  abort: AbortController;
  run: Promise<void>;
}

/** What a migration run needs besides the machine. */
export interface OutgoingOptions {
  target: MigrationTarget;
  bandwidthBytesPerSecond?: number;
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
    const entry: Outgoing = { machine, progress: { state: 'mirroring' }, abort, run: Promise.resolve() };
    this.host.holdForMigration(machine.key, machine.record.uid);
    entry.run = this.run(entry, options, abort.signal).then(
      (progress) => { entry.progress = progress; },
      async (err: unknown) => {
        const cancelled = err instanceof Cancelled;
        entry.progress = { state: cancelled ? 'cancelled' : 'failed', message: cancelled ? err.message : `migration failed: ${err instanceof Error ? err.message : String(err)}` };
        await this.rollBack(entry);
        this.host.migrationEnded(machine.record.uid);
        this.logger.info('migration ended on the source; the guest runs on here', { migrationUid, uid: machine.record.uid, state: entry.progress.state, message: entry.progress.message });
      },
    );
    this.outgoing.set(migrationUid, entry);
  }

  /** Where migration `migrationUid` is; `unknown` when this agent knows nothing of it (restarted). */
  status(migrationUid: string): SourceProgress {
    return this.outgoing.get(migrationUid)?.progress ?? { state: 'unknown', message: 'the source agent knows nothing of this migration (it restarted?)' };
  }

  /** Stops a migration that has not switched over; resolves once the guest runs on here alone. */
  async cancel(migrationUid: string): Promise<SourceProgress> {
    const entry = this.outgoing.get(migrationUid);
    if (entry === undefined) return this.status(migrationUid);
    if (entry.progress.state === 'completed') throw new Error('the migration has already switched over: the guest runs on the target');
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
    await this.host.removeGuestFiles(machine.record.uid);
    this.outgoing.delete(migrationUid);
    this.logger.info('migrated guest left this node', { migrationUid, uid: machine.record.uid });
  }

  private async run(entry: Outgoing, options: OutgoingOptions, signal: AbortSignal): Promise<SourceProgress> {
    const { machine } = entry;
    const { target } = options;
    const nodes = await writableNodes(machine);
    for (const node of nodes) {
      if (!target.exports.includes(node)) throw new Error(`the target exports no disk for ${node} (it exports ${target.exports.join(', ') || 'none'})`);
    }
    for (const node of nodes) {
      await machine.execute('blockdev-add', { driver: 'nbd', 'node-name': mirrorNode(node), server: { type: 'inet', host: target.address, port: String(target.nbdPort) }, export: node });
      await machine.execute('blockdev-mirror', { 'job-id': mirrorNode(node), device: node, target: mirrorNode(node), sync: 'full' });
    }
    await this.until(signal, async () => {
      const jobs = await machine.execute('query-block-jobs');
      for (const node of nodes) {
        const job = jobs.find((j) => j.device === mirrorNode(node));
        if (job === undefined) throw new Error(`the mirror of ${node} into the target ended before it was in step`);
        if (job.error !== undefined) throw new Error(`the mirror of ${node} failed: ${job.error}`);
      }
      return nodes.every((node) => jobs.find((j) => j.device === mirrorNode(node))?.ready === true);
    });
    entry.progress = { state: 'migrating', disksCopied: nodes.length > 0 };
    await machine.execute('migrate-set-capabilities', { capabilities: [{ capability: 'auto-converge', state: true }, { capability: 'pause-before-switchover', state: true }] });
    await machine.execute('migrate-set-parameters', { 'max-bandwidth': options.bandwidthBytesPerSecond ?? unlimitedBytesPerSecond });
    await machine.execute('migrate', { uri: `tcp:${hostPort(target.address, target.migrationPort)}` });
    let completed: SourceProgress | undefined;
    await this.until(signal, async () => {
      const info = await machine.execute('query-migrate');
      switch (info.status) {
        case 'pre-switchover':
          // The guest is paused: the mirrors catch up with its last writes and end, then the switch-over.
          await this.completeMirrors(machine, nodes);
          await machine.execute('migrate-continue', { state: 'pre-switchover' });
          return false;
        case 'completed':
          completed = { state: 'completed', disksCopied: nodes.length > 0, ...(info.downtime === undefined ? {} : { downtimeMs: info.downtime }), ...(info['total-time'] === undefined ? {} : { totalTimeMs: info['total-time'] }) };
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
    if (machine.exit !== undefined) return;
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

/** The NBD client node (and mirror job) for disk node `node`. */
function mirrorNode(node: string): string {
  return `migration-${node}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
