/**
 * Watch fan-out, one per store: replays a watcher's history, then hands it
 * every committed event under its prefix, synchronously, in revision order.
 * Watchers are grouped by prefix so that an event costs one `startsWith`
 * per distinct prefix, not per watcher.
 */
import { checkWatchStart } from './revisions.js';
import type { StoreError, StoreEvent, WatchOptions } from './types.js';

/** What the broadcaster needs from its backend to start a watch. */
export interface WatchSource {
  compactRevision(): number;
  currentRevision(): number;
  /** Events under `prefix` with `after < revision <= upTo`, in revision order. */
  history(prefix: string, after: number, upTo: number): Iterable<StoreEvent>;
}

/** Where the broadcaster reports a watcher whose callback threw. */
export type WatchErrorHandler = (error: unknown, prefix: string) => void;

/** Reports a throwing watcher when no handler was given: a process warning, not a crash. */
export function defaultWatchError(error: unknown, prefix: string): void {
  process.emitWarning(`a store watcher on ${JSON.stringify(prefix)} threw and was dropped: ${String(error)}`, 'StoreWatchWarning');
}

interface Subscriber {
  readonly prefix: string;
  readonly onEvent: (event: StoreEvent) => void;
  readonly onError: ((error: StoreError) => void) | undefined;
  /** The last revision this watcher has seen; later deliveries of it or older are skipped. */
  seen: number;
  readonly detach: () => void;
}

/** The fan-out of one store's committed events to its watchers. */
export class Broadcaster {
  private readonly byPrefix = new Map<string, Set<Subscriber>>();
  private count = 0;

  constructor(
    private readonly source: WatchSource,
    private readonly onWatchError: WatchErrorHandler,
  ) {}

  /** Number of live watchers. */
  get size(): number {
    return this.count;
  }

  /**
   * Replays history, then subscribes. Callers must not commit writes while
   * this runs; the backends guarantee it by committing only from their own
   * write queue, so nothing lands between the replay and the subscription.
   * A callback that throws during replay fails the watch.
   */
  watch(options: WatchOptions, onEvent: (event: StoreEvent) => void): void {
    const { prefix, afterRevision, signal } = options;
    if (signal.aborted) return;
    checkWatchStart(afterRevision, this.source.compactRevision());
    const upTo = this.source.currentRevision();
    for (const event of this.source.history(prefix, afterRevision, upTo)) {
      if (signal.aborted) return;
      onEvent(event);
    }
    if (signal.aborted) return;
    this.subscribe(options, onEvent, Math.max(afterRevision, upTo));
  }

  /** Delivers committed events, in revision order, to every watcher whose prefix they fall under. */
  publish(events: readonly StoreEvent[]): void {
    if (this.count === 0) return;
    for (const event of events) {
      for (const [prefix, group] of this.byPrefix) {
        if (!event.key.startsWith(prefix)) continue;
        for (const subscriber of group) this.deliver(subscriber, event);
      }
    }
  }

  /** Drops every watcher (the store is closing). */
  close(): void {
    for (const group of this.byPrefix.values()) {
      for (const subscriber of group) subscriber.detach();
    }
  }

  /** Ends every watch because the store cannot continue them, telling each watcher that asked to be told. */
  fail(error: StoreError): void {
    for (const group of [...this.byPrefix.values()]) {
      for (const subscriber of group) {
        subscriber.detach();
        try {
          subscriber.onError?.(error);
        } catch (thrown) {
          this.onWatchError(thrown, subscriber.prefix);
        }
      }
    }
  }

  private deliver(subscriber: Subscriber, event: StoreEvent): void {
    // A watcher started from inside another watcher's callback has already
    // replayed the batch being published; `seen` keeps it from getting it twice.
    if (event.revision <= subscriber.seen) return;
    subscriber.seen = event.revision;
    try {
      subscriber.onEvent(event);
    } catch (error) {
      // One broken watcher must not stop the others or the write that fed them.
      subscriber.detach();
      try {
        this.onWatchError(error, subscriber.prefix);
      } catch {
        // The reporter failed too; the write that fed the watcher has committed regardless.
      }
    }
  }

  private subscribe(options: WatchOptions, onEvent: (event: StoreEvent) => void, seen: number): void {
    const { prefix, signal } = options;
    let group = this.byPrefix.get(prefix);
    if (group === undefined) {
      group = new Set();
      this.byPrefix.set(prefix, group);
    }
    const members = group;
    const detach = (): void => {
      signal.removeEventListener('abort', detach);
      if (!members.delete(subscriber)) return;
      this.count--;
      if (members.size === 0 && this.byPrefix.get(prefix) === members) this.byPrefix.delete(prefix);
    };
    const subscriber: Subscriber = { prefix, onEvent, onError: options.onError, seen, detach };
    members.add(subscriber);
    this.count++;
    signal.addEventListener('abort', detach, { once: true });
  }
}
