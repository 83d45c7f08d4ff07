import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MemoryStore, openStore, SqliteStore, StoreError } from './index.js';
import { makeTempDir } from './test-support.js';

describe('openStore', () => {
  it('opens the backend asked for', async () => {
    const memory = await openStore({ backend: 'memory' });
    assert.ok(memory instanceof MemoryStore);
    await memory.close();
    const dir = makeTempDir();
    try {
      const sqlite = await openStore({ backend: 'sqlite', path: join(dir, 'store.db') });
      assert.ok(sqlite instanceof SqliteStore);
      await sqlite.create('/a', 'v');
      await sqlite.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects with Unavailable naming the endpoint when etcd cannot be reached', async () => {
    await assert.rejects(
      openStore({ backend: 'etcd', endpoints: ['http://127.0.0.1:1'], connectTimeoutMs: 300 }),
      (e: unknown) => e instanceof StoreError && e.code === 'Unavailable' && e.message.includes('http://127.0.0.1:1'),
    );
  });

  it('rejects with Unavailable when the SQLite file cannot be opened', async () => {
    const dir = makeTempDir();
    try {
      await assert.rejects(
        openStore({ backend: 'sqlite', path: join(dir, 'missing-dir', 'store.db') }),
        (e: unknown) => e instanceof StoreError && e.code === 'Unavailable' && e.message.includes('missing-dir'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
