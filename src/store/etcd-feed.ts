/**
 * The etcd backend's feed: one etcd watch on the cluster's whole prefix
 * whose events go into an in-memory tail of recent history and on to the
 * store's fan-out, as kube-apiserver's watch cache does. Writers wait here
 * until their revision has been fanned out, so no watcher lags behind a
 * write whose client has heard back.
 */
import { EtcdWatch } from './etcd-watch.js';
import type { EtcdKeys } from './etcd-codec.js';
import type { Etcd3 } from 'etcd3';
import type { StoreError, StoreEvent } from './types.js';

/** What the feed needs from its store. */
export interface EtcdFeedOptions {
  client: Etcd3;
  keys: EtcdKeys;
  /** How long a writer waits for its revision before it is released anyway (the write is durable regardless). */
  publishTimeoutMs: number;
  /** Hands events on to the watchers, synchronously, in revision order. */
  publish(events: readonly StoreEvent[]): void;
  /** etcd ended the feed's watch for good (history compacted while it was away). */
  ended(error: StoreError): void;
}

/** Events the tail keeps for watches that start in the recent past; older starts get their own etcd watch. */
const tailCapacity = 10_000;

/** The feed of one etcd store; `start` (again) begins it at a revision. */
export class EtcdFeed {
  /** Every event under the prefix through this revision has been published. */
  published = 0;
  /** The tail holds every event under the prefix after this revision. */
  tailFloor = 0;
  private tail: StoreEvent[] = [];
  private watch: EtcdWatch | undefined;
  private stopped = false;
  private readonly waiters = new Set<{ revision: number; release: () => void }>();

  constructor(private readonly options: EtcdFeedOptions) {}

  /** Starts (or restarts, forgetting the tail) the feed with the events after `afterRevision`. */
  async start(afterRevision: number): Promise<void> {
    await this.watch?.cancel();
    this.published = afterRevision;
    this.tailFloor = afterRevision;
    this.tail = [];
    this.watch = await EtcdWatch.start(this.options.client, this.options.keys, '', afterRevision, {
      onEvents: (events) => { this.receive(events); },
      onProgress: (revision) => { this.advance(revision); },
      onEnd: (error) => { this.options.ended(error); },
    });
  }

  /** Events in the tail under `prefix` with `after < revision <= upTo`, in revision order. */
  *history(prefix: string, after: number, upTo: number): Iterable<StoreEvent> {
    let index = this.tail.length;
    while (index > 0 && (this.tail[index - 1]?.revision ?? 0) > after) index--;
    for (; index < this.tail.length; index++) {
      const event = this.tail[index];
      if (event === undefined || event.revision > upTo) return;
      if (event.key.startsWith(prefix)) yield event;
    }
  }

  /** Resolves once `revision` has been published, or after the publish timeout. */
  untilPublished(revision: number): Promise<void> {
    if (this.published >= revision || this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const waiter = {
        revision,
        release: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve();
        },
      };
      const timer = setTimeout(waiter.release, this.options.publishTimeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** Ends the feed and releases every waiting writer. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.watch?.cancel();
    for (const waiter of this.waiters) waiter.release();
  }

  private receive(events: StoreEvent[]): void {
    this.tail.push(...events);
    if (this.tail.length > 2 * tailCapacity) {
      const dropped = this.tail.splice(0, this.tail.length - tailCapacity);
      this.tailFloor = dropped.at(-1)?.revision ?? this.tailFloor;
    }
    // Fan out before releasing the writers, so no watcher lags behind an acknowledged write.
    this.published = events.at(-1)?.revision ?? this.published;
    this.options.publish(events);
    this.releaseWaiters();
  }

  private advance(revision: number): void {
    this.published = Math.max(this.published, revision);
    this.releaseWaiters();
  }

  private releaseWaiters(): void {
    for (const waiter of this.waiters) if (waiter.revision <= this.published) waiter.release();
  }
}
