/**
 * Group commit: writes that arrive in the same turn of the event loop are
 * committed together in one transaction (one fsync for SQLite), each one
 * decided on its own. With 16 concurrent callers this turns 16 fsyncs into
 * one, which is where SQLite's write throughput comes from.
 */
import { closedError } from './revisions.js';
import { StoreError } from './types.js';
import type { WriteOp } from './log-row.js';
import type { KeyValue } from './types.js';

/** One write's result: its value, or why it was refused. */
export type WriteOutcome = KeyValue | StoreError;

/**
 * Commits `ops` in one transaction and returns one outcome per op, in order.
 * A refused op (KeyExists, Conflict, KeyNotFound) must not affect the
 * others. Throwing means nothing was committed.
 */
export type CommitBatch = (ops: readonly WriteOp[]) => readonly WriteOutcome[];

interface Pending {
  op: WriteOp;
  resolve: (value: KeyValue) => void;
  reject: (error: StoreError) => void;
}

/** The most writes one transaction takes, so that a flood of writes cannot stall the event loop. */
const maxBatch = 1000;

/** The write queue of one store: batches each turn's writes into one commit. */
export class GroupCommit {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly drainWaiters: (() => void)[] = [];

  constructor(private readonly commit: CommitBatch) {}

  /** Queues a write; resolves once the transaction that holds it has committed. */
  submit(op: WriteOp): Promise<KeyValue> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise<KeyValue>((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      this.schedule();
    });
  }

  /** Refuses new writes and resolves once every queued write has been committed or refused. */
  close(): Promise<void> {
    this.closed = true;
    if (!this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.flush();
    });
  }

  private flush(): void {
    const batch = this.queue.length <= maxBatch ? this.queue : this.queue.slice(0, maxBatch);
    this.queue = this.queue.length <= maxBatch ? [] : this.queue.slice(maxBatch);
    let outcomes: readonly WriteOutcome[];
    try {
      outcomes = this.commit(batch.map((p) => p.op));
    } catch (cause) {
      const error = new StoreError('Unavailable', `the store could not commit ${batch.length} write(s): ${String(cause)}`);
      error.cause = cause;
      outcomes = batch.map(() => error);
    }
    batch.forEach((pending, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) pending.reject(new StoreError('Unavailable', 'the store lost a write result; retry'));
      else if (outcome instanceof StoreError) pending.reject(outcome);
      else pending.resolve(outcome);
    });
    this.scheduled = false;
    if (this.queue.length > 0) {
      this.schedule();
      return;
    }
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}
