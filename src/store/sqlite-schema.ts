/**
 * The SQLite layout: kine's log table (one row per write, `id` = the global
 * revision), a `current` table holding the latest value of each live key so
 * that gets, lists and counts never touch history, and a `meta` table for
 * the compacted revision. Every statement the store runs is prepared here.
 */
import Database from 'better-sqlite3';
import { StoreError } from './types.js';

const schema = `
CREATE TABLE IF NOT EXISTS log (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  value TEXT NOT NULL,
  old_value TEXT
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS current (
  name TEXT PRIMARY KEY,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', 1), ('compact_revision', 0);
`;

/** A row of `current`. */
export interface CurrentRow {
  name: string;
  create_revision: number;
  mod_revision: number;
  value: string;
}

/** A row of `log`. */
export interface LogTableRow {
  id: number;
  name: string;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  value: string;
  old_value: string | null;
}

/** Bounds of a key range. TEXT always sorts below BLOB in SQLite, so an empty blob is "no upper bound". */
export interface RangeParams {
  from: string;
  to: string | Buffer;
}

/**
 * Opens (creating if needed) the database file. The exclusive lock makes a
 * second process opening the same file fail at once: the store keeps the
 * revision counter in memory, so it must be the only writer.
 */
export function openDatabase(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    // No busy wait: the only other holder of the lock is another live store, which will not let go.
    db = new Database(path, { timeout: 0 });
    // Exclusive locking must come before WAL so that SQLite keeps the WAL index in process memory.
    db.pragma('locking_mode = EXCLUSIVE');
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`journal_mode is ${String(mode)}, not wal`);
    // FULL syncs the WAL on every commit: an acknowledged write survives a crash, not just a kill.
    db.pragma('synchronous = FULL');
    db.exec(schema);
    // Take the write lock now, so that a second opener fails here and not on its first write.
    db.exec('BEGIN IMMEDIATE; COMMIT');
    return db;
  } catch (cause) {
    db?.close();
    const busy = cause instanceof Database.SqliteError && cause.code === 'SQLITE_BUSY';
    const error = new StoreError(
      'Unavailable',
      `cannot open the store at ${path}: ${String(cause)}; ` +
        (busy ? 'another process has it open, stop that one first' : 'check that the directory exists and is writable'),
    );
    error.cause = cause;
    throw error;
  }
}

/** The prepared statements of one connection. */
export function prepareStatements(db: Database.Database) {
  const logColumns = 'id, name, created, deleted, create_revision, prev_revision, value, old_value';
  return {
    get: db.prepare<[string], CurrentRow>(
      'SELECT name, create_revision, mod_revision, value FROM current WHERE name = ?',
    ),
    listLatest: db.prepare<RangeParams & { limit: number }, CurrentRow>(
      `SELECT name, create_revision, mod_revision, value FROM current
       WHERE name >= @from AND name < @to ORDER BY name LIMIT @limit`,
    ),
    // The newest row of each key at or below the revision, from the (name, id)
    // index alone; ordering the subquery by name lets SQLite skip a sort of the values.
    listAt: db.prepare<RangeParams & { revision: number; limit: number }, CurrentRow>(
      `SELECT l.name, l.create_revision, l.id AS mod_revision, l.value
       FROM (SELECT name, MAX(id) AS id FROM log
             WHERE name >= @from AND name < @to AND id <= @revision
             GROUP BY name ORDER BY name) AS m
       CROSS JOIN log AS l ON l.id = m.id
       WHERE l.deleted = 0 ORDER BY m.name LIMIT @limit`,
    ),
    count: db.prepare<RangeParams, number>('SELECT COUNT(*) FROM current WHERE name >= @from AND name < @to').pluck(),
    history: db.prepare<RangeParams & { after: number; upTo: number; limit: number }, LogTableRow>(
      `SELECT ${logColumns} FROM log
       WHERE id > @after AND id <= @upTo AND name >= @from AND name < @to ORDER BY id LIMIT @limit`,
    ),
    insertLog: db.prepare<[LogTableRow]>(
      `INSERT INTO log (${logColumns})
       VALUES (@id, @name, @created, @deleted, @create_revision, @prev_revision, @value, @old_value)`,
    ),
    putCurrent: db.prepare<[CurrentRow]>(
      `INSERT INTO current (name, create_revision, mod_revision, value)
       VALUES (@name, @create_revision, @mod_revision, @value)
       ON CONFLICT (name) DO UPDATE SET mod_revision = excluded.mod_revision, value = excluded.value`,
    ),
    deleteCurrent: db.prepare<[string]>('DELETE FROM current WHERE name = ?'),
    maxRevision: db.prepare<[], number | null>('SELECT MAX(id) FROM log').pluck(),
    readMeta: db.prepare<[string], number>('SELECT value FROM meta WHERE key = ?').pluck(),
    writeMeta: db.prepare<{ key: string; value: number }>('UPDATE meta SET value = @value WHERE key = @key'),
    // Compaction, one revision window (after, upTo] at a time: first the rows a
    // later write in the window replaced, then the tombstones in the window.
    compactSuperseded: db.prepare<{ after: number; upTo: number }>(
      `DELETE FROM log WHERE id IN
         (SELECT prev_revision FROM log WHERE id > @after AND id <= @upTo AND prev_revision > 0)`,
    ),
    compactTombstones: db.prepare<{ after: number; upTo: number }>(
      'DELETE FROM log WHERE deleted = 1 AND id > @after AND id <= @upTo',
    ),
  };
}

/** The prepared statements {@link prepareStatements} returns. */
export type Statements = ReturnType<typeof prepareStatements>;
