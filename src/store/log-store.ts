/**
 * What the backends share: the write path (group commit, then revision
 * bump, then watch fan-out, in that order), watches, compaction pacing and
 * closing. A backend supplies only storage: how to commit a batch of rows,
 * read current values and history, and drop old history.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Broadcaster, defaultWatchError } from './broadcaster.js';
import { GroupCommit } from './group-commit.js';
import { rowToEvent } from './log-row.js';
import { checkCompactTarget, closedError } from './revisions.js';
import type { WatchErrorHandler } from './broadcaster.js';
import type { WriteOutcome } from './group-commit.js';
import type { LogRow, WriteOp } from './log-row.js';
import type { KeyValue, ListOptions, ListResult, Store, StoreEvent, WatchOptions } from './types.js';

/** Options every backend takes. */
export interface LogStoreOptions {
  /** Called when a watcher's callback throws; the watcher is dropped. Default: a process warning. */
  onWatchError?: WatchErrorHandler;
}

/** The result of committing one batch: an outcome per op, and the rows written, in revision order. */
export interface CommittedBatch {
  outcomes: WriteOutcome[];
  rows: LogRow[];
}

/** Base of the store backends; see the module comment for the split. */
export abstract class LogStore implements Store {
  /** The latest committed revision. */
  protected revision = 0;
  /** History at and below this revision is gone. */
  protected compacted = 0;
  protected closed = false;
  private readonly writes = new GroupCommit((ops) => this.commitAndPublish(ops));
  private readonly broadcaster: Broadcaster;
  private compaction: Promise<void> = Promise.resolve();

  protected constructor(options: LogStoreOptions) {
    this.broadcaster = new Broadcaster(
      {
        compactRevision: () => this.compacted,
        currentRevision: () => this.revision,
        history: (prefix, after, upTo) => this.history(prefix, after, upTo),
      },
      options.onWatchError ?? defaultWatchError,
    );
  }

  abstract get(key: string): Promise<KeyValue | undefined>;
  abstract list(prefix: string, options?: ListOptions): Promise<ListResult>;
  abstract count(prefix: string): Promise<number>;

  /**
   * Commits `ops` atomically, revisions starting at `firstRevision` and
   * counting up over the accepted ops only, so revisions have no gaps.
   * Throws (having committed nothing) when storage fails.
   */
  protected abstract commitBatch(ops: readonly WriteOp[], firstRevision: number): CommittedBatch;
  /** Events under `prefix` with `after < revision <= upTo`, in revision order. */
  protected abstract history(prefix: string, after: number, upTo: number): Iterable<StoreEvent>;
  /**
   * Drops history at and below `target`, possibly only part of the way;
   * returns the revision it compacted through, which it has recorded.
   */
  protected abstract compactStep(after: number, target: number): number;
  /** Frees storage; called once, after the last write and compaction step. */
  protected abstract release(): void;

  create(key: string, value: string): Promise<KeyValue> {
    return this.writes.submit({ kind: 'create', key, value });
  }

  update(key: string, value: string, expectedRevision: number): Promise<KeyValue> {
    return this.writes.submit({ kind: 'update', key, value, expectedRevision });
  }

  delete(key: string, expectedRevision?: number): Promise<KeyValue> {
    return this.writes.submit({ kind: 'delete', key, expectedRevision });
  }

  watch(options: WatchOptions, onEvent: (event: StoreEvent) => void): Promise<void> {
    return this.read(() => {
      this.broadcaster.watch(options, onEvent);
    });
  }

  currentRevision(): number {
    return this.revision;
  }

  compactRevision(): number {
    return this.compacted;
  }

  compact(revision: number): Promise<void> {
    const previous = this.compaction;
    const run = this.read(() => {
      checkCompactTarget(revision, this.revision);
    }).then(() => previous.then(() => this.compactTo(revision)));
    this.compaction = run.catch(() => undefined);
    return run;
  }

  /** Commits the writes already queued, drops every watcher and frees storage. Later calls fail `Unavailable`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.close();
    await this.compaction;
    this.broadcaster.close();
    this.release();
  }

  /** Number of live watchers (for tests and metrics). */
  get watcherCount(): number {
    return this.broadcaster.size;
  }

  /** Runs a read against open storage, turning a throw into a rejection. */
  protected read<T>(body: () => T): Promise<T> {
    return new Promise<T>((resolve) => {
      if (this.closed) throw closedError();
      resolve(body());
    });
  }

  private commitAndPublish(ops: readonly WriteOp[]): WriteOutcome[] {
    const { outcomes, rows } = this.commitBatch(ops, this.revision + 1);
    const last = rows.at(-1);
    if (last !== undefined) this.revision = last.revision;
    // Synchronously after the commit and before any caller hears back, so a
    // watcher never lags behind a write its own client has seen succeed.
    this.broadcaster.publish(rows.map(rowToEvent));
    return outcomes;
  }

  private async compactTo(target: number): Promise<void> {
    while (this.compacted < target) {
      // Between steps, and before the first: never under a watch replay, and
      // never holding the event loop for a whole large compaction.
      await nextTurn();
      if (this.closed) throw closedError();
      this.compacted = this.compactStep(this.compacted, target);
    }
  }
}
