/**
 * Events expire after an hour, as kube-apiserver's `--event-ttl` has them
 * (there, an etcd lease; here, a periodic sweep through the API, so it works
 * on any store and against any server).
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { errorMessage } from '../vmi/index.js';

/** Tuning and seams of the cleaner; every field is optional. */
export interface EventTtlOptions {
  /** Age (since the event last happened) after which it is deleted. Default 1 h. */
  ttlMs?: number;
  /** Time between sweeps. Default 5 min. */
  intervalMs?: number;
  now?: () => number;
}

/** Deletes Events older than the TTL, periodically. */
export class EventTtlCleaner {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<number> | undefined;
  private readonly ttlMs: number;
  private readonly intervalMs: number;
  private readonly now: () => number;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: EventTtlOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? 60 * 60_000;
    this.intervalMs = options.intervalMs ?? 5 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Sweeps now, then every interval. */
  start(): void {
    if (this.timer !== undefined) return;
    const tick = (): void => {
      void this.sweep();
    };
    this.timer = setInterval(tick, this.intervalMs);
    // Expiry alone must not keep a process alive.
    this.timer.unref();
    tick();
  }

  /** Stops sweeping and waits for a running sweep to end. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.sweeping;
  }

  /** Deletes every expired Event once; resolves with how many were deleted. Never rejects. */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => {
      this.sweeping = undefined;
    });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    let deleted = 0;
    try {
      const cutoff = this.now() - this.ttlMs;
      const events = await this.client.list(resources.events);
      for (const event of events.items) {
        const seen = lastSeen(event);
        if (seen === undefined || seen > cutoff) continue;
        try {
          await this.client.delete(resources.events, event.metadata.namespace, event.metadata.name ?? '', { preconditions: { uid: event.metadata.uid ?? '' } });
          deleted++;
        } catch (err) {
          if (!(err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict'))) throw err;
        }
      }
      if (deleted > 0) this.logger.debug('expired events deleted', { deleted });
    } catch (err) {
      this.logger.warn('event expiry sweep failed; retrying at the next interval', { err: errorMessage(err) });
    }
    return deleted;
  }
}

/** When the event last happened, in ms since the epoch. */
function lastSeen(event: KObject): number | undefined {
  const candidates = [stringAt(event, 'series', 'lastObservedTime'), stringAt(event, 'lastTimestamp'), stringAt(event, 'eventTime'), stringAt(event, 'firstTimestamp'), event.metadata.creationTimestamp];
  for (const c of candidates) {
    if (c === undefined || c === '') continue;
    const ms = Date.parse(c);
    if (!Number.isNaN(ms)) return ms;
  }
  return undefined;
}
