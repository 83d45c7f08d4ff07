/**
 * Periodic compaction of a store's history, as kube-apiserver asks etcd to
 * (every 5 minutes) and kine does (keeping at least 1,000 revisions):
 * watches older than the kept history get 410 and relist.
 */
import type { Logger } from '../log/logger.js';
import type { Store } from './types.js';

export interface CompactorOptions {
  /** Revisions of history to keep behind the latest. */
  retain?: number;
  intervalMs?: number;
  logger: Logger;
}

export class Compactor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly retain: number;
  private readonly intervalMs: number;

  constructor(
    private readonly store: Store,
    private readonly options: CompactorOptions,
  ) {
    this.retain = options.retain ?? 10_000;
    this.intervalMs = options.intervalMs ?? 5 * 60_000;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.compactOnce().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Compacts to `latest - retain` if that is ahead of the current compacted revision. */
  async compactOnce(): Promise<void> {
    const target = this.store.currentRevision() - this.retain;
    if (target <= this.store.compactRevision()) return;
    try {
      await this.store.compact(target);
      this.options.logger.debug('compacted', { revision: target });
    } catch (err) {
      this.options.logger.warn('compaction failed', { err });
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
