/**
 * The memory backend, for tests: the whole log in an array until
 * `compact()`, the latest values in a map plus a sorted key array. Writes go
 * through the same group commit as SQLite, so timing (a write lands on a
 * later turn of the event loop) and ordering match the real backend.
 */
import { compareKeys, keyRange } from './keys.js';
import { LogStore } from './log-store.js';
import { planWrite, rowToEvent, rowToKeyValue, valueBefore } from './log-row.js';
import { resolveList } from './revisions.js';
import { StoreError } from './types.js';
import type { CommittedBatch, LogStoreOptions } from './log-store.js';
import type { LogRow, WriteOp } from './log-row.js';
import type { ResolvedList } from './revisions.js';
import type { KeyValue, ListOptions, ListResult, StoreEvent } from './types.js';

/** Options of {@link MemoryStore}. */
export type MemoryStoreOptions = LogStoreOptions;

/** A {@link Store} held in memory. Fast, and forgets everything on exit. */
export class MemoryStore extends LogStore {
  private readonly log: LogRow[] = [];
  private readonly current = new Map<string, KeyValue>();
  /** Keys of `current`, in {@link compareKeys} order. */
  private readonly keys: string[] = [];

  constructor(options: MemoryStoreOptions = {}) {
    super(options);
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.read(() => {
      const kv = this.current.get(key);
      return kv === undefined ? undefined : { ...kv };
    });
  }

  list(prefix: string, options: ListOptions = {}): Promise<ListResult> {
    return this.read(() => {
      const request = resolveList(options, this.revision, this.compacted);
      const items = request.latest ? this.listLatest(prefix, request) : this.listAt(prefix, request);
      const more = request.limit > 0 && items.length > request.limit;
      if (more) items.length = request.limit;
      return { items, revision: request.revision, more };
    });
  }

  count(prefix: string): Promise<number> {
    return this.read(() => {
      const start = lowerBound(this.keys, prefix);
      let end = start;
      while (end < this.keys.length && (this.keys[end] ?? '').startsWith(prefix)) end++;
      return end - start;
    });
  }

  protected commitBatch(ops: readonly WriteOp[], firstRevision: number): CommittedBatch {
    const rows: LogRow[] = [];
    const outcomes = ops.map((op) => {
      const planned = planWrite(op, this.current.get(op.key), firstRevision + rows.length);
      if (planned instanceof StoreError) return planned;
      this.apply(planned);
      rows.push(planned);
      return rowToKeyValue(planned);
    });
    return { outcomes, rows };
  }

  protected *history(prefix: string, after: number, upTo: number): Iterable<StoreEvent> {
    for (let i = firstAfter(this.log, after); i < this.log.length; i++) {
      const row = this.log[i];
      if (row === undefined || row.revision > upTo) return;
      if (row.key.startsWith(prefix)) yield rowToEvent(row);
    }
  }

  protected compactStep(_after: number, target: number): number {
    this.log.splice(0, firstAfter(this.log, target));
    return target;
  }

  protected release(): void {
    this.log.length = 0;
    this.current.clear();
    this.keys.length = 0;
  }

  private apply(row: LogRow): void {
    this.log.push(row);
    if (row.deleted) {
      this.current.delete(row.key);
      this.keys.splice(lowerBound(this.keys, row.key), 1);
      return;
    }
    if (row.created) this.keys.splice(lowerBound(this.keys, row.key), 0, row.key);
    this.current.set(row.key, rowToKeyValue(row));
  }

  /** Latest values; one item past `limit` so the caller can tell whether there are more. */
  private listLatest(prefix: string, request: ResolvedList): KeyValue[] {
    const items: KeyValue[] = [];
    const want = request.limit === 0 ? Infinity : request.limit + 1;
    for (let i = lowerBound(this.keys, keyRange(prefix, request.startKey).from); i < this.keys.length; i++) {
      const kv = this.current.get(this.keys[i] ?? '');
      if (kv === undefined || !kv.key.startsWith(prefix) || items.length >= want) break;
      items.push({ ...kv });
    }
    return items;
  }

  /** Values at a past revision: today's values, with every later write in range rolled back. */
  private listAt(prefix: string, request: ResolvedList): KeyValue[] {
    const { from } = keyRange(prefix, request.startKey);
    const state = new Map<string, KeyValue | undefined>();
    for (let i = lowerBound(this.keys, from); i < this.keys.length; i++) {
      const key = this.keys[i] ?? '';
      if (!key.startsWith(prefix)) break;
      state.set(key, this.current.get(key));
    }
    // Newest first, so the last rollback a key gets is to its value at the revision.
    for (let i = this.log.length - 1; i >= 0; i--) {
      const row = this.log[i];
      if (row === undefined || row.revision <= request.revision) break;
      if (row.key.startsWith(prefix) && compareKeys(row.key, from) >= 0) state.set(row.key, valueBefore(row));
    }
    const items: KeyValue[] = [];
    for (const kv of state.values()) if (kv !== undefined) items.push({ ...kv });
    items.sort((a, b) => compareKeys(a.key, b.key));
    if (request.limit > 0) items.length = Math.min(items.length, request.limit + 1);
    return items;
  }
}

/** Index of the first key >= `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  return partitionPoint(keys.length, (i) => compareKeys(keys[i] ?? '', key) < 0);
}

/** Index of the first row with revision > `revision`. */
function firstAfter(log: readonly LogRow[], revision: number): number {
  return partitionPoint(log.length, (i) => (log[i]?.revision ?? 0) <= revision);
}

/** Binary search: the first index in `[0, length)` where `before` turns false (it is true, then false). */
function partitionPoint(length: number, before: (index: number) => boolean): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (before(mid)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
