/**
 * The work queue every controller reconciles through, after client-go's
 * rate-limited workqueue: a key is queued at most once, never reconciled by
 * two workers at a time, and reconciled again when it was added while
 * running. Failures retry with per-key exponential backoff.
 */
import { ApiError } from '../api/errors.js';
import { objectFields } from '../log/logger.js';
import type { LogFields, LoggedObject, Logger } from '../log/logger.js';
import { currentQueueObserver } from './queue-metrics.js';
import type { QueueObserver, ReconcileOutcome } from './queue-metrics.js';

/** What one reconcile asks of the queue. */
export interface ReconcileResult {
  /** Run again after this many milliseconds (resets the key's backoff). */
  requeueAfter?: number;
  /** Run again after the key's next backoff delay (for waiting on others, level-based). */
  requeue?: boolean;
}

/**
 * Brings the world in line for one key. Level-based: it re-reads state and
 * never learns why it was called. A thrown error retries with backoff.
 */
export type Reconciler = (key: string, signal: AbortSignal) => Promise<ReconcileResult | undefined>;

export interface WorkQueueOptions {
  logger: Logger;
  /** Reconciles running at once (different keys). Default 2. */
  concurrency?: number;
  /** First backoff delay. Default 5 ms, as client-go. */
  baseDelayMs?: number;
  /** Longest backoff delay. Default 60 s. */
  maxDelayMs?: number;
  /**
   * The queue's name in the workqueue metrics, after the controller's
   * (`queue-metrics.ts`): for a controller with several queues.
   */
  name?: string;
  /**
   * The object behind a key (the controller's informer cache), so that the
   * queue's records name its namespace, name and uid. Without it, or when
   * the object is gone, namespace and name come from the key and uid is null.
   */
  objectOf?: (key: string) => LoggedObject | undefined;
}

/** A deduplicating, backoff-retrying queue of keys feeding one {@link Reconciler}. */
export class WorkQueue {
  private readonly pending: string[] = [];
  /** Queued keys and when they were queued (`performance.now()`), for the metrics' queue duration. */
  private readonly queued = new Map<string, number>();
  private readonly observer: QueueObserver | undefined;
  private readonly running = new Map<string, Promise<void>>();
  /** Keys added while their reconcile ran: they go again once it ends. */
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; due: number }>();
  private readonly failures = new Map<string, number>();
  private readonly abort = new AbortController();
  private readonly concurrency: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private started = false;

  constructor(
    private readonly reconcile: Reconciler,
    private readonly options: WorkQueueOptions,
  ) {
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.baseDelayMs = options.baseDelayMs ?? 5;
    this.maxDelayMs = options.maxDelayMs ?? 60_000;
    this.observer = currentQueueObserver(options.name);
  }

  /** Keys waiting or running. */
  get length(): number {
    return this.queued.size + this.running.size + this.timers.size;
  }

  /** Begins reconciling; keys added before this wait until now. */
  start(): void {
    if (this.abort.signal.aborted) return;
    this.started = true;
    this.pump();
  }

  /** Stops taking work, drops pending keys, and waits for running reconciles to end. */
  async stop(): Promise<void> {
    this.abort.abort();
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    this.pending.length = 0;
    this.observer?.dropped(this.queued.size);
    this.queued.clear();
    this.dirty.clear();
    await Promise.allSettled([...this.running.values()]);
  }

  /** Queues a key now, unless it is already queued. */
  add(key: string): void {
    if (this.abort.signal.aborted) return;
    const scheduled = this.timers.get(key);
    if (scheduled !== undefined) {
      clearTimeout(scheduled.timer);
      this.timers.delete(key);
    }
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.set(key, performance.now());
    this.pending.push(key);
    this.observer?.added();
    this.pump();
  }

  /** Queues a key after a delay; an earlier schedule for the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.abort.signal.aborted) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    const due = Date.now() + delayMs;
    const scheduled = this.timers.get(key);
    if (scheduled !== undefined) {
      if (scheduled.due <= due) return;
      clearTimeout(scheduled.timer);
    }
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delayMs);
    // A pending retry alone must not keep the process alive.
    timer.unref();
    this.timers.set(key, { timer, due });
  }

  /** Queues a key after its next backoff delay. */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.observer?.retried();
    this.addAfter(key, Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 30)));
  }

  /** Resets a key's backoff. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  private pump(): void {
    while (this.started && !this.abort.signal.aborted && this.running.size < this.concurrency) {
      const key = this.pending.shift();
      if (key === undefined) return;
      const queuedAt = this.queued.get(key) ?? performance.now();
      this.queued.delete(key);
      this.observer?.started((performance.now() - queuedAt) / 1000);
      this.running.set(key, this.run(key));
    }
  }

  private async run(key: string): Promise<void> {
    const started = performance.now();
    const finished = (outcome: ReconcileOutcome): void => { this.observer?.finished((performance.now() - started) / 1000, outcome); };
    try {
      const result = await this.reconcile(key, this.abort.signal);
      finished(result?.requeueAfter !== undefined ? 'requeue_after' : result?.requeue === true ? 'requeue' : 'success');
      if (this.abort.signal.aborted) return;
      if (result?.requeueAfter !== undefined) {
        this.forget(key);
        this.addAfter(key, result.requeueAfter);
      } else if (result?.requeue === true) {
        this.addRateLimited(key);
      } else {
        this.forget(key);
      }
    } catch (err) {
      finished('error');
      if (this.abort.signal.aborted) return;
      if (err instanceof ApiError && err.reason === 'Conflict') {
        // Someone wrote first; a level-based reconcile just runs again on fresh state.
        this.options.logger.debug('reconcile conflicted, requeueing', { key, ...this.objectFieldsOf(key) });
      } else {
        this.options.logger.warn('reconcile failed, retrying with backoff', { key, ...this.objectFieldsOf(key), err, attempt: (this.failures.get(key) ?? 0) + 1 });
      }
      this.addRateLimited(key);
    } finally {
      this.running.delete(key);
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }

  /** The namespace, name and uid a record about `key` carries. */
  private objectFieldsOf(key: string): LogFields {
    let found: LoggedObject | undefined;
    try {
      found = this.options.objectOf?.(key);
    } catch {
      found = undefined;
    }
    if (found !== undefined) return objectFields(found);
    // Keys are `namespace/name` or `name`, some behind a `kind:` or `kind/` prefix (a queue for several kinds).
    const parts = key.replace(/^[a-z]+:/, '').split('/');
    const name = parts[parts.length - 1] ?? key;
    const namespace = parts.length > 1 ? parts[parts.length - 2] : undefined;
    return { namespace: namespace === '' ? undefined : namespace, name, uid: null };
  }
}
