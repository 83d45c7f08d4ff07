/**
 * The store: a revisioned key-value log, as kine and etcd do it. Every write
 * gets a new global revision; reads can be at a revision; updates are
 * compare-and-swap on the previous revision; watches resume from a revision
 * until it is compacted. The same interface fronts the memory backend
 * (tests), SQLite (default) and etcd, so callers never know which.
 *
 * Values are opaque strings (the API server stores JSON without
 * `metadata.resourceVersion`; the revision is the resourceVersion).
 */

export interface KeyValue {
  key: string;
  value: string;
  /** Revision of the write that created this key (stays the same across updates). */
  createRevision: number;
  /** Revision of the write that produced this value: the object's resourceVersion. */
  modRevision: number;
}

export interface StoreEvent {
  type: 'put' | 'delete';
  key: string;
  /** Revision of this event. */
  revision: number;
  /** The new value; for a delete, the value that was deleted. */
  value: string;
  /** The value before this event; undefined for a create. */
  prevValue: string | undefined;
  /** True when this put created the key. */
  created: boolean;
}

export interface ListOptions {
  /** Read at this revision (0 or absent: latest). Older than the compacted revision: `StoreError('Compacted')`. */
  revision?: number;
  /** Return keys >= startKey (for paging). */
  startKey?: string;
  /** Return at most this many keys (0 or absent: all). */
  limit?: number;
}

export interface ListResult {
  items: KeyValue[];
  /** The revision the list was read at. */
  revision: number;
  /** True when `limit` cut the result. */
  more: boolean;
}

export interface WatchOptions {
  /** Key prefix to watch. */
  prefix: string;
  /** Deliver events with revision > this. Older than the compacted revision: `StoreError('Compacted')`. */
  afterRevision: number;
  signal: AbortSignal;
  /**
   * Called at most once when the store ends this watch itself because it
   * cannot continue it (etcd: the history was compacted while etcd was out
   * of reach); nothing is delivered afterwards. List again and watch from
   * the new revision. Without it, such a watch ends silently.
   */
  onError?: (error: StoreError) => void;
}

export type StoreErrorCode =
  /** create: the key exists. */
  | 'KeyExists'
  /** update/delete: the key does not exist. */
  | 'KeyNotFound'
  /** update/delete: the key's modRevision is not the expected one. */
  | 'Conflict'
  /** read or watch below the compacted revision. */
  | 'Compacted'
  /** the store is closed or failed. */
  | 'Unavailable';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  /** For `Conflict`: the current value, so callers can report or retry without a read. */
  readonly current: KeyValue | undefined;
  /** For `Compacted`: the compacted revision. */
  readonly compactRevision: number | undefined;

  constructor(code: StoreErrorCode, message: string, extra: { current?: KeyValue; compactRevision?: number } = {}) {
    super(message);
    this.name = 'StoreError';
    this.code = code;
    this.current = extra.current;
    this.compactRevision = extra.compactRevision;
  }
}

export interface Store {
  /** Latest value of a key, or undefined. */
  get(key: string): Promise<KeyValue | undefined>;
  /** Keys under `prefix` in key order, at one revision. */
  list(prefix: string, options?: ListOptions): Promise<ListResult>;
  /** Number of keys under prefix (latest revision). */
  count(prefix: string): Promise<number>;
  /**
   * Writes a new key. Resolves only once the write is durable (for SQLite:
   * committed with fsync), so an acknowledged write survives `kill -9`.
   */
  create(key: string, value: string): Promise<KeyValue>;
  /** Compare-and-swap: replaces the value if the key's modRevision equals `expectedRevision`. */
  update(key: string, value: string, expectedRevision: number): Promise<KeyValue>;
  /** Deletes the key if its modRevision equals `expectedRevision` (when given). Returns the deleted value with the delete's revision as modRevision. */
  delete(key: string, expectedRevision?: number): Promise<KeyValue>;
  /**
   * Calls `onEvent` for every event under the prefix with revision >
   * `afterRevision`, in revision order: first the history still held, then
   * live events, until the signal aborts. Throws `StoreError('Compacted')`
   * synchronously-at-call (rejected promise) when history is gone.
   * Resolves once the history has been delivered and live delivery is set up.
   */
  watch(options: WatchOptions, onEvent: (event: StoreEvent) => void): Promise<void>;
  /** The latest revision written. */
  currentRevision(): number;
  /**
   * History at and below this revision is gone. A list may still read at
   * exactly this revision, and a watch may resume from it (its first event is
   * `compactRevision() + 1`); anything older fails `Compacted`.
   */
  compactRevision(): number;
  /** Forgets history at and below `revision` (latest values are kept). */
  compact(revision: number): Promise<void>;
  close(): Promise<void>;
}
