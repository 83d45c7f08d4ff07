/**
 * What the store's tests share: the backends the contract runs against
 * (each open gets a fresh store, SQLite in its own temp dir), a watch
 * recorder, and waiting on a condition with a deadline instead of sleeping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { EtcdProcess } from './etcd-process.js';
import { EtcdStore } from './etcd.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';
import type { LogStoreOptions } from './log-store.js';
import type { Store, StoreEvent } from './types.js';

/** A store under test, plus what the tests inspect beyond the interface. */
export type TestStore = Store & { readonly watcherCount: number };

/** A backend the shared tests run against. */
export interface TestBackend {
  readonly name: string;
  /** A fresh, empty store (for etcd: on an etcd of its own, so revisions start at 0). */
  open(options?: LogStoreOptions): Promise<TestStore>;
  /** Removes what `open` left behind (files, etcd processes); the stores must be closed first. */
  cleanup(): Promise<void>;
}

/** A new temp dir for one test; the caller removes it. */
export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vireo-store-'));
}

/** Every backend, each with its own cleanup. */
export function testBackends(): TestBackend[] {
  const dirs: string[] = [];
  const etcds: EtcdProcess[] = [];
  return [
    { name: 'memory', open: (options) => Promise.resolve(new MemoryStore(options)), cleanup: () => Promise.resolve() },
    {
      name: 'sqlite',
      open: (options) => {
        const dir = makeTempDir();
        dirs.push(dir);
        return Promise.resolve(new SqliteStore({ ...options, path: join(dir, 'store.db') }));
      },
      cleanup: () => {
        for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
        return Promise.resolve();
      },
    },
    {
      name: 'etcd',
      open: async (options) => {
        const etcd = await EtcdProcess.start();
        etcds.push(etcd);
        return EtcdStore.open({ ...options, endpoints: [etcd.endpoint], connectTimeoutMs: 10_000 });
      },
      cleanup: async () => {
        await Promise.all(etcds.splice(0).map((etcd) => etcd.stop()));
      },
    },
  ];
}

/** Opens a fresh store from `backend` before each test of the enclosing suite, and closes it after. */
export function storePerTest(backend: TestBackend, use: (store: TestStore) => void): void {
  let store: TestStore | undefined;
  beforeEach(async () => {
    store = await backend.open();
    use(store);
  });
  afterEach(async () => {
    await store?.close();
    await backend.cleanup();
  });
}

/** Resolves once `condition()` holds; rejects after `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await nextTurn();
  }
}

/** Collects a watch's events. */
export class WatchRecorder {
  readonly events: StoreEvent[] = [];
  readonly controller = new AbortController();
  readonly onEvent = (event: StoreEvent): void => {
    this.events.push(event);
  };

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get revisions(): number[] {
    return this.events.map((e) => e.revision);
  }

  /** Resolves once an event at `revision` or later has arrived. */
  until(revision: number): Promise<void> {
    return waitFor(() => (this.events.at(-1)?.revision ?? 0) >= revision, `an event at revision ${revision}`);
  }
}

/** The integers in `(after, upTo]`. */
export function range(after: number, upTo: number): number[] {
  return Array.from({ length: Math.max(0, upTo - after) }, (_, i) => after + 1 + i);
}
