// What only the SQLite backend promises: state survives reopening and kill -9.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from './sqlite.js';
import { makeTempDir, range, WatchRecorder } from './test-support.js';
import { StoreError } from './types.js';

describe('SqliteStore', () => {
  let dir: string;
  let path: string;
  const open: SqliteStore[] = [];
  const openStore = (): SqliteStore => {
    const store = new SqliteStore({ path });
    open.push(store);
    return store;
  };
  beforeEach(() => {
    dir = makeTempDir();
    path = join(dir, 'store.db');
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('restores values, revisions and watchable history on reopen', async () => {
    const first = openStore();
    const a = await first.create('/r/a', 'a1');
    await first.create('/r/b', 'b1');
    await first.update('/r/a', 'a2', a.modRevision);
    await first.delete('/r/b');
    await first.create('/r/c', 'c1');
    await first.compact(2);
    await first.close();

    const second = openStore();
    assert.equal(second.currentRevision(), 5);
    assert.equal(second.compactRevision(), 2);
    assert.deepEqual((await second.list('/r/')).items.map((i) => `${i.key}=${i.value}`), ['/r/a=a2', '/r/c=c1']);
    assert.deepEqual((await second.list('/r/', { revision: 3 })).items.map((i) => `${i.key}=${i.value}`), ['/r/a=a2', '/r/b=b1']);
    const recorder = new WatchRecorder();
    await second.watch({ prefix: '/r/', afterRevision: 2, signal: recorder.signal }, recorder.onEvent);
    assert.deepEqual(recorder.revisions, [3, 4, 5]);
    assert.equal((await second.create('/r/d', 'd1')).modRevision, 6);
  });

  it('restores the revision when compaction removed every row', async () => {
    const first = openStore();
    await first.create('/r/a', 'v');
    await first.delete('/r/a');
    await first.compact(2);
    await first.close();

    const second = openStore();
    assert.equal(second.currentRevision(), 2);
    assert.equal(second.compactRevision(), 2);
    assert.equal(await second.count(''), 0);
    assert.equal((await second.create('/r/a', 'again')).modRevision, 3);
  });

  it('compacts a long history in steps and keeps every latest value', async () => {
    const store = openStore();
    await Promise.all(range(0, 300).map((i) => store.create(`/r/${i}`, 'v0')));
    for (let round = 1; round <= 40; round++) {
      const items = (await store.list('/r/')).items;
      await Promise.all(items.map((kv) => store.update(kv.key, `v${round}`, kv.modRevision)));
    }
    const target = store.currentRevision() - 300;
    await store.compact(target);
    assert.equal(store.compactRevision(), target);
    const latest = (await store.list('/r/')).items;
    assert.equal(latest.length, 300);
    assert.ok(latest.every((kv) => kv.value === 'v40'));
    const atTarget = (await store.list('/r/', { revision: target })).items;
    assert.ok(atTarget.length === 300 && atTarget.every((kv) => kv.value === 'v39'));
  });

  it('refuses a second opener of the same file with Unavailable', async () => {
    const first = openStore();
    await first.create('/r/a', 'v');
    assert.throws(
      () => new SqliteStore({ path }),
      (error: unknown) => error instanceof StoreError && error.code === 'Unavailable' && error.message.includes('another process'),
    );
    await first.close();
    const second = openStore();
    assert.equal((await second.get('/r/a'))?.value, 'v');
  });

  it('keeps every acknowledged create when the writer is killed with SIGKILL', async (t) => {
    const writer = fileURLToPath(new URL('./crash-writer.js', import.meta.url));
    const child = spawn(process.execPath, [writer, path, '1000'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const acked: string[] = [];
    let done = false;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => { resolve(signal); }));
    const deadline = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      for await (const line of createInterface({ input: child.stdout })) {
        if (line === 'done') done = true;
        else acked.push(line);
        if (acked.length === 300) child.kill('SIGKILL');
      }
      assert.equal(await exited, 'SIGKILL');
    } finally {
      clearTimeout(deadline);
    }
    t.diagnostic(`killed after ${acked.length} acknowledged creates${done ? ' (the writer had finished)' : ''}`);
    assert.ok(acked.length >= 300, `only ${acked.length} creates were acknowledged before the writer died`);

    const store = openStore();
    const present = new Set((await store.list('/crash/')).items.map((kv) => kv.key));
    const lost = acked.filter((key) => !present.has(key));
    assert.deepEqual(lost, [], `${lost.length} acknowledged creates were lost`);
    assert.equal(store.currentRevision(), present.size);
  });
});
