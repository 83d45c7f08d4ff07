/**
 * The SQLite backend (the default): a kine-style log in one database file,
 * WAL with a full sync per commit, so a write is acknowledged only once it
 * is on disk. Writes arriving in the same event-loop turn share one
 * transaction and one fsync (see `group-commit.ts`). Compare-and-swap is a
 * check against `current` inside the write transaction; the exclusive file
 * lock makes this process the only writer, so the check cannot race.
 */
import { keyRange } from './keys.js';
import { LogStore } from './log-store.js';
import { planWrite, rowToEvent, rowToKeyValue } from './log-row.js';
import { resolveList } from './revisions.js';
import { openDatabase, prepareStatements } from './sqlite-schema.js';
import { StoreError } from './types.js';
import type { CommittedBatch, LogStoreOptions } from './log-store.js';
import type { LogRow, WriteOp } from './log-row.js';
import type { CurrentRow, LogTableRow, RangeParams, Statements } from './sqlite-schema.js';
import type { KeyValue, ListOptions, ListResult, StoreEvent } from './types.js';
import type Database from 'better-sqlite3';

/** Options of {@link SqliteStore}. */
export interface SqliteStoreOptions extends LogStoreOptions {
  /** The database file; created with its tables when missing. */
  path: string;
}

/** TEXT sorts below every BLOB in SQLite, so an empty blob bounds a range above all keys. */
const noUpperBound = Buffer.alloc(0);
/** History rows read per query during a watch replay. */
const historyPage = 500;
/** Revisions compacted per transaction, so compaction never holds the event loop for long. */
const compactWindow = 10_000;

/** A {@link Store} in a SQLite file, durable across crashes. Opening restores its revisions. */
export class SqliteStore extends LogStore {
  /** The database file. */
  readonly path: string;
  private readonly db: Database.Database;
  private readonly sql: Statements;
  private readonly writeRows: (ops: readonly WriteOp[], firstRevision: number) => CommittedBatch;
  private readonly compactRows: (after: number, upTo: number) => void;

  /** Opens or creates the store; fails `Unavailable` when the file cannot be opened or another process holds it. */
  constructor(options: SqliteStoreOptions) {
    super(options);
    this.path = options.path;
    this.db = openDatabase(options.path);
    try {
      this.sql = prepareStatements(this.db);
      this.compacted = this.sql.readMeta.get('compact_revision') ?? 0;
      // Compaction can remove every row up to the compacted revision (tombstones included).
      this.revision = Math.max(this.sql.maxRevision.get() ?? 0, this.compacted);
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.writeRows = this.db.transaction((ops: readonly WriteOp[], firstRevision: number) =>
      this.writeInTransaction(ops, firstRevision),
    );
    this.compactRows = this.db.transaction((after: number, upTo: number) => {
      this.sql.compactSuperseded.run({ after, upTo });
      this.sql.compactTombstones.run({ after, upTo });
      this.sql.writeMeta.run({ key: 'compact_revision', value: upTo });
    });
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.read(() => {
      const row = this.sql.get.get(key);
      return row === undefined ? undefined : toKeyValue(row);
    });
  }

  list(prefix: string, options: ListOptions = {}): Promise<ListResult> {
    return this.read(() => {
      const request = resolveList(options, this.revision, this.compacted);
      const range = rangeParams(prefix, request.startKey);
      // One row past the limit tells whether there are more; -1 is SQLite's "no limit".
      const limit = request.limit === 0 ? -1 : request.limit + 1;
      const rows = request.latest
        ? this.sql.listLatest.all({ ...range, limit })
        : this.sql.listAt.all({ ...range, revision: request.revision, limit });
      const more = request.limit > 0 && rows.length > request.limit;
      if (more) rows.length = request.limit;
      return { items: rows.map(toKeyValue), revision: request.revision, more };
    });
  }

  count(prefix: string): Promise<number> {
    return this.read(() => this.sql.count.get(rangeParams(prefix, undefined)) ?? 0);
  }

  protected commitBatch(ops: readonly WriteOp[], firstRevision: number): CommittedBatch {
    return this.writeRows(ops, firstRevision);
  }

  protected *history(prefix: string, after: number, upTo: number): Iterable<StoreEvent> {
    const range = rangeParams(prefix, undefined);
    let cursor = after;
    // Pages rather than one open cursor: a watcher's callback may read the
    // store, which better-sqlite3 refuses while a statement is iterating.
    for (;;) {
      const rows = this.sql.history.all({ ...range, after: cursor, upTo, limit: historyPage });
      for (const row of rows) yield rowToEvent(fromLogTable(row));
      const last = rows.at(-1);
      if (last === undefined || rows.length < historyPage) return;
      cursor = last.id;
    }
  }

  protected compactStep(after: number, target: number): number {
    const upTo = Math.min(target, after + compactWindow);
    this.compactRows(after, upTo);
    return upTo;
  }

  protected release(): void {
    this.db.close();
  }

  private writeInTransaction(ops: readonly WriteOp[], firstRevision: number): CommittedBatch {
    const rows: LogRow[] = [];
    const outcomes = ops.map((op) => {
      const found = this.sql.get.get(op.key);
      const planned = planWrite(op, found === undefined ? undefined : toKeyValue(found), firstRevision + rows.length);
      if (planned instanceof StoreError) return planned;
      this.sql.insertLog.run(toLogTable(planned));
      if (planned.deleted) {
        this.sql.deleteCurrent.run(planned.key);
      } else {
        this.sql.putCurrent.run({
          name: planned.key,
          create_revision: planned.createRevision,
          mod_revision: planned.revision,
          value: planned.value,
        });
      }
      rows.push(planned);
      return rowToKeyValue(planned);
    });
    return { outcomes, rows };
  }
}

function rangeParams(prefix: string, startKey: string | undefined): RangeParams {
  const { from, to } = keyRange(prefix, startKey);
  return { from, to: to ?? noUpperBound };
}

function toKeyValue(row: CurrentRow): KeyValue {
  return { key: row.name, value: row.value, createRevision: row.create_revision, modRevision: row.mod_revision };
}

function toLogTable(row: LogRow): LogTableRow {
  return {
    id: row.revision,
    name: row.key,
    created: row.created ? 1 : 0,
    deleted: row.deleted ? 1 : 0,
    create_revision: row.createRevision,
    prev_revision: row.prevRevision,
    value: row.value,
    old_value: row.prevValue ?? null,
  };
}

function fromLogTable(row: LogTableRow): LogRow {
  return {
    revision: row.id,
    key: row.name,
    created: row.created === 1,
    deleted: row.deleted === 1,
    createRevision: row.create_revision,
    prevRevision: row.prev_revision,
    value: row.value,
    prevValue: row.old_value ?? undefined,
  };
}
