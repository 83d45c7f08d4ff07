/**
 * The write log, as kine keeps it: one row per write, carrying what a reader
 * at any revision or a watcher needs (the value before the write, the
 * revision it replaced). Both backends decide a write the same way, here,
 * and differ only in where they keep the rows.
 */
import { StoreError } from './types.js';
import type { KeyValue, StoreEvent } from './types.js';

/** A write, as callers ask for it. */
export type WriteOp =
  | { kind: 'create'; key: string; value: string }
  | { kind: 'update'; key: string; value: string; expectedRevision: number }
  | { kind: 'delete'; key: string; expectedRevision: number | undefined };

/** One accepted write. `revision` is the row's id in the log. */
export interface LogRow {
  revision: number;
  key: string;
  /** The write created the key. */
  created: boolean;
  /** The write deleted the key (a tombstone). */
  deleted: boolean;
  createRevision: number;
  /** The modRevision this write replaced; 0 for a create. */
  prevRevision: number;
  /** The new value; for a delete, the deleted value. */
  value: string;
  /** The value before this write; undefined for a create. */
  prevValue: string | undefined;
}

/**
 * Decides a write against the key's current value: the row it appends at
 * `revision`, or the error that refuses it. Pure, so both backends agree.
 */
export function planWrite(op: WriteOp, current: KeyValue | undefined, revision: number): LogRow | StoreError {
  switch (op.kind) {
    case 'create':
      if (current !== undefined) {
        return keyExists(op.key, current);
      }
      return {
        revision,
        key: op.key,
        created: true,
        deleted: false,
        createRevision: revision,
        prevRevision: 0,
        value: op.value,
        prevValue: undefined,
      };
    case 'update':
      if (current === undefined) return notFound('update', op.key);
      if (current.modRevision !== op.expectedRevision) return conflict('update', op.key, op.expectedRevision, current);
      return {
        revision,
        key: op.key,
        created: false,
        deleted: false,
        createRevision: current.createRevision,
        prevRevision: current.modRevision,
        value: op.value,
        prevValue: current.value,
      };
    case 'delete':
      if (current === undefined) return notFound('delete', op.key);
      if (op.expectedRevision !== undefined && current.modRevision !== op.expectedRevision) {
        return conflict('delete', op.key, op.expectedRevision, current);
      }
      return {
        revision,
        key: op.key,
        created: false,
        deleted: true,
        createRevision: current.createRevision,
        prevRevision: current.modRevision,
        value: current.value,
        prevValue: current.value,
      };
    default:
      return assertNever(op);
  }
}

/** What the write returns to its caller: for a delete, the deleted value at the delete's revision. */
export function rowToKeyValue(row: LogRow): KeyValue {
  return { key: row.key, value: row.value, createRevision: row.createRevision, modRevision: row.revision };
}

/** The watch event for a row. Frozen, because one event object goes to every watcher. */
export function rowToEvent(row: LogRow): StoreEvent {
  return Object.freeze({
    type: row.deleted ? 'delete' : 'put',
    key: row.key,
    revision: row.revision,
    value: row.value,
    prevValue: row.prevValue,
    created: row.created,
  });
}

/**
 * The key's value just before `row` was written, or undefined when the key
 * did not exist then. Lets a backend roll its current state back in time.
 */
export function valueBefore(row: LogRow): KeyValue | undefined {
  if (row.created || row.prevValue === undefined) return undefined;
  return { key: row.key, value: row.prevValue, createRevision: row.createRevision, modRevision: row.prevRevision };
}

/** The error for creating a key that exists; every backend words it the same. */
export function keyExists(key: string, current: KeyValue): StoreError {
  return new StoreError(
    'KeyExists',
    `cannot create ${key}: it already exists (modified at revision ${current.modRevision}); update it instead`,
  );
}

/** The error for writing a key that does not exist. */
export function notFound(verb: string, key: string): StoreError {
  return new StoreError('KeyNotFound', `cannot ${verb} ${key}: it does not exist; create it first`);
}

/** The error for a compare-and-swap whose expected revision is not the key's. */
export function conflict(verb: string, key: string, expected: number, current: KeyValue): StoreError {
  return new StoreError(
    'Conflict',
    `cannot ${verb} ${key}: it is at revision ${current.modRevision}, not ${expected}; read it again and retry`,
    { current },
  );
}

function assertNever(value: never): never {
  throw new TypeError(`unexpected write ${JSON.stringify(value)}`);
}
