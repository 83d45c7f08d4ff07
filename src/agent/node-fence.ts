/**
 * Self-fencing: an agent that has not renewed its Lease for longer than
 * its fencing timeout kills its guests on its own, before the server may
 * declare the node dead and start them on another node, so that no VM ever
 * runs twice on one disk. The timeout comes from the grace period the
 * server publishes on the Node (src/api/kinds/node-lifecycle.ts): until the
 * agent has learned it, it does not fence (a server without the node
 * lifecycle controller never moves VMIs). While fenced, or while its Lease
 * is older than the timeout, the agent starts no guest; what it killed is
 * recorded in `<data>/fenced.json` and reported `Failed` (`NodeFenced`)
 * once the API answers again, never started again by the agent.
 *
 * Why the two clocks are safe together: the agent counts from the moment
 * it *sent* its last renew that succeeded; the server counts from the
 * moment it *observed* that renew, which is necessarily later. Each
 * measures a duration on its own monotonic clock, so wall-clock offsets
 * between hosts do not matter. The agent kills at sent + timeout, the
 * server acts at observed + grace ≥ sent + grace, and the timeout is the
 * grace less a margin (10 s, or a third of a short grace) that covers the
 * kill itself, this module's check period and a stalled event loop. A
 * renew whose answer was lost counts as failed here though the server may
 * have seen it: that only makes the agent fence earlier.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fenceTimeoutMs, formatDuration } from '../api/kinds/node-lifecycle.js';
import type { Logger } from '../log/logger.js';

/** A guest the fence killed. */
export interface FencedGuest {
  namespace: string;
  name: string;
  uid: string;
}

/** What fencing needs. */
export interface NodeFenceOptions {
  /** `<data>/agent`: the record of the last fencing goes there. */
  dataDir: string;
  logger: Logger;
  /** Kills every guest of the node now; resolves with the guests it killed. */
  killGuests: () => Promise<FencedGuest[]>;
  /** Told once the Lease is renewed again after a fencing, with the guests it killed (the agent records an Event on its Node). */
  onRecovered?: (guests: FencedGuest[]) => void;
  /** A monotonic clock in ms (tests); default `performance.now`. */
  now?: () => number;
  /** How often the timeout is checked. Default 250 ms. */
  checkEveryMs?: number;
}

/** See the module comment. */
export class NodeFence {
  private graceMs: number | undefined;
  private lastRenewSentAt: number;
  private fencedAt: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private fencing: Promise<void> | undefined;
  private killed: FencedGuest[] = [];
  private readonly now: () => number;

  constructor(private readonly options: NodeFenceOptions) {
    this.now = options.now ?? (() => performance.now());
    this.lastRenewSentAt = this.now();
  }

  start(): void {
    this.timer = setInterval(() => { this.check(); }, this.options.checkEveryMs ?? 250);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.fencing;
  }

  /** The server's grace period, as published on the Node. */
  setGracePeriod(ms: number): void {
    if (ms === this.graceMs) return;
    this.graceMs = ms;
    this.options.logger.info('self-fencing armed: guests are killed when the Lease cannot be renewed in time', { nodeMonitorGracePeriod: formatDuration(ms), fenceTimeout: formatDuration(fenceTimeoutMs(ms)) });
  }

  /** The grace period learned from the server, if any. */
  get gracePeriodMs(): number | undefined {
    return this.graceMs;
  }

  /** A renew sent at `sentAt` (this clock) succeeded. */
  renewed(sentAt: number): void {
    if (sentAt > this.lastRenewSentAt) this.lastRenewSentAt = sentAt;
    if (this.fencedAt !== undefined && this.fencing === undefined) {
      this.options.logger.warn('the Lease is renewed again after self-fencing: the killed guests are reported Failed (NodeFenced), not started again', { guests: this.killed.map((g) => `${g.namespace}/${g.name} (${g.uid})`) });
      this.fencedAt = undefined;
      this.options.onRecovered?.(this.killed);
      this.killed = [];
    }
  }

  /** True when the node may start a guest: not fenced, and its Lease not older than the fencing timeout. */
  mayStartGuests(): boolean {
    if (this.fencedAt !== undefined) return false;
    return this.graceMs === undefined || this.now() - this.lastRenewSentAt < fenceTimeoutMs(this.graceMs);
  }

  private check(): void {
    if (this.graceMs === undefined || this.fencedAt !== undefined) return;
    const silentMs = this.now() - this.lastRenewSentAt;
    const timeoutMs = fenceTimeoutMs(this.graceMs);
    if (silentMs < timeoutMs) return;
    this.fencedAt = this.now();
    this.fencing = this.fence(silentMs, timeoutMs).finally(() => { this.fencing = undefined; });
  }

  private async fence(silentMs: number, timeoutMs: number): Promise<void> {
    const { logger } = this.options;
    logger.error('SELF-FENCING: the Lease could not be renewed on any server in time; killing every guest of this node before the server may start them elsewhere', { silentMs: Math.round(silentMs), fenceTimeout: formatDuration(timeoutMs), nodeMonitorGracePeriod: formatDuration(this.graceMs ?? 0) });
    let guests: FencedGuest[] = [];
    try {
      guests = await this.options.killGuests();
    } catch (err) {
      logger.error('self-fencing could not kill every guest', { err });
    }
    this.killed = guests;
    logger.error('SELF-FENCING done: guests killed', { guests: guests.map((g) => `${g.namespace}/${g.name} (${g.uid})`) });
    const record = { fencedAt: new Date().toISOString(), silentMs: Math.round(silentMs), fenceTimeoutMs: timeoutMs, nodeMonitorGracePeriodMs: this.graceMs, guests };
    await writeFile(join(this.options.dataDir, 'fenced.json'), `${JSON.stringify(record, null, 2)}\n`).catch((err: unknown) => { logger.error('cannot record the self-fencing', { err }); });
  }
}
