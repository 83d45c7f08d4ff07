// The backends side by side on the same random workload: every answer must match.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { range, testBackends } from './test-support.js';
import { StoreError } from './types.js';
import type { TestStore } from './test-support.js';
import type { KeyValue, ListResult, StoreEvent } from './types.js';

/** A small deterministic PRNG (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function outcome(write: Promise<KeyValue>): Promise<string> {
  try {
    const kv = await write;
    return `${kv.key}=${kv.value}@${kv.createRevision}/${kv.modRevision}`;
  } catch (error) {
    if (error instanceof StoreError) return `${error.code}:${JSON.stringify(error.current)}`;
    throw error;
  }
}

function render(items: readonly KeyValue[]): string[] {
  return items.map((kv) => `${kv.key}=${kv.value}@${kv.createRevision}/${kv.modRevision}`);
}

async function replay(store: TestStore, prefix: string, after: number): Promise<StoreEvent[]> {
  const events: StoreEvent[] = [];
  const controller = new AbortController();
  await store.watch({ prefix, afterRevision: after, signal: controller.signal }, (e) => events.push(e));
  controller.abort();
  return events;
}

describe('the backends agree', () => {
  it('on a random workload with compactions, in writes, lists at every revision, and watches', async () => {
    const backends = testBackends();
    const stores: TestStore[] = await Promise.all(backends.map((b) => b.open()));
    const next = random(42);
    const pick = <T>(items: readonly T[]): T => {
      const item = items[Math.floor(next() * items.length)];
      if (item === undefined) throw new Error('pick from an empty list');
      return item;
    };
    const keys = range(0, 24).map((i) => `/${pick(['a', 'b'])}/${i % 12}`);
    try {
      for (let step = 0; step < 100; step++) {
        // A tick's worth of writes, issued together so that they share a batch.
        const latest = new Map((await stores[0]?.list(''))?.items.map((kv) => [kv.key, kv.modRevision]));
        const ops = range(0, 1 + Math.floor(next() * 12)).map(() => {
          const key = pick(keys);
          const kind = pick(['create', 'create', 'update', 'update', 'delete', 'delete-any'] as const);
          // Mostly the right revision, sometimes a stale or made-up one.
          const expected = next() < 0.8 ? (latest.get(key) ?? 1) : Math.floor(next() * (stores[0]?.currentRevision() ?? 0) + 1);
          const value = `v${Math.floor(next() * 1000)}`;
          return (store: TestStore) =>
            kind === 'create' ? store.create(key, value)
            : kind === 'update' ? store.update(key, value, expected)
            : kind === 'delete' ? store.delete(key, expected)
            : store.delete(key);
        });
        const answers = await Promise.all(stores.map((store) => Promise.all(ops.map((op) => outcome(op(store))))));
        for (const [i, answer] of answers.entries()) assert.deepEqual(answer, answers[0], `${backends[i]?.name} at step ${step}`);
        if (step % 25 === 24) {
          const target = Math.floor((stores[0]?.currentRevision() ?? 0) * 0.7);
          await Promise.all(stores.map((store) => store.compact(target)));
        }
      }
      const [memory, ...others] = stores;
      assert.ok(memory !== undefined && others.length === backends.length - 1);
      for (const [i, other] of others.entries()) {
        const name: string = backends[i + 1]?.name ?? '?';
        const pair: TestStore[] = [memory, other];
        assert.equal(other.currentRevision(), memory.currentRevision(), name);
        assert.equal(other.compactRevision(), memory.compactRevision(), name);
        const revisions: number[] = range(memory.compactRevision() - 1, memory.currentRevision());
        for (const revision of revisions) {
          for (const prefix of ['/a/', '/b/', '']) {
            const [m, s]: ListResult[] = await Promise.all(pair.map((store) => store.list(prefix, { revision })));
            assert.deepEqual(render(s?.items ?? []), render(m?.items ?? []), `${name}: list ${prefix} at ${revision}`);
            const [pm, ps]: ListResult[] = await Promise.all(pair.map((store) => store.list(prefix, { revision, limit: 3, startKey: `${prefix}3` })));
            assert.deepEqual([render(ps?.items ?? []), ps?.more], [render(pm?.items ?? []), pm?.more], `${name}: page ${prefix} at ${revision}`);
          }
        }
        for (const prefix of ['/a/', '']) {
          assert.deepEqual(await replay(other, prefix, other.compactRevision()), await replay(memory, prefix, memory.compactRevision()), name);
        }
      }
      // The workload must have done what it is meant to test.
      assert.ok(memory.currentRevision() > 150, `only ${memory.currentRevision()} writes succeeded`);
      assert.ok(memory.compactRevision() > 100 && (await memory.count('')) > 5, 'the workload compacted and left keys');
    } finally {
      for (const store of stores) await store.close();
      for (const backend of backends) await backend.cleanup();
    }
  });
});
