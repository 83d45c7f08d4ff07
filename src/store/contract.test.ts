// The store contract for reads, writes and compaction, run once per backend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StoreError } from './types.js';
import { range, storePerTest, testBackends } from './test-support.js';
import type { TestStore } from './test-support.js';
import type { StoreErrorCode } from './types.js';

function isStoreError(code: StoreErrorCode, check: (error: StoreError) => void = () => undefined) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoreError, `expected a StoreError, got ${String(error)}`);
    assert.equal(error.code, code);
    check(error);
    return true;
  };
}

function errorCode(error: unknown): string {
  return error instanceof StoreError ? error.code : String(error);
}

for (const backend of testBackends()) {
  describe(`store contract (${backend.name})`, () => {
    let store: TestStore;
    storePerTest(backend, (opened) => {
      store = opened;
    });

    describe('create and get', () => {
      it('returns the value at a new revision, and get reads it back', async () => {
        assert.equal(store.currentRevision(), 0);
        const kv = await store.create('/r/a', 'one');
        assert.deepEqual(kv, { key: '/r/a', value: 'one', createRevision: 1, modRevision: 1 });
        assert.equal(store.currentRevision(), 1);
        assert.deepEqual(await store.get('/r/a'), kv);
        assert.equal(await store.get('/r/missing'), undefined);
      });

      it('refuses an existing key with KeyExists and writes nothing', async () => {
        await store.create('/r/a', 'one');
        await assert.rejects(store.create('/r/a', 'two'), isStoreError('KeyExists'));
        assert.equal(store.currentRevision(), 1);
        assert.equal((await store.get('/r/a'))?.value, 'one');
      });

      it('hands out one global revision sequence across keys, without gaps', async () => {
        const revisions: number[] = [];
        for (const key of ['/x/1', '/y/1', '/x/2', '/z']) revisions.push((await store.create(key, 'v')).modRevision);
        assert.deepEqual(revisions, [1, 2, 3, 4]);
        await assert.rejects(store.create('/x/1', 'again'));
        assert.equal((await store.create('/x/3', 'v')).modRevision, 5);
      });

      it('decides writes of the same tick one by one, in call order', async () => {
        const seeded = await store.create('/r/c', 'c0');
        const results = await Promise.allSettled([
          store.create('/r/a', 'a'),
          store.create('/r/a', 'a-again'),
          store.update('/r/c', 'c1', seeded.modRevision),
          store.update('/r/c', 'c2', seeded.modRevision),
          store.delete('/r/missing'),
          store.create('/r/b', 'b'),
        ]);
        assert.deepEqual(
          results.map((r) => (r.status === 'fulfilled' ? r.value.modRevision : errorCode(r.reason))),
          [2, 'KeyExists', 3, 'Conflict', 'KeyNotFound', 4],
        );
        assert.equal((await store.get('/r/c'))?.value, 'c1');
        assert.equal(store.currentRevision(), 4);
      });
    });

    describe('update', () => {
      it('replaces the value when the revision matches, keeping createRevision', async () => {
        const created = await store.create('/r/a', 'one');
        await store.create('/r/b', 'other');
        const updated = await store.update('/r/a', 'two', created.modRevision);
        assert.deepEqual(updated, { key: '/r/a', value: 'two', createRevision: 1, modRevision: 3 });
        assert.deepEqual(await store.get('/r/a'), updated);
      });

      it('refuses a stale revision with Conflict carrying the current value', async () => {
        const created = await store.create('/r/a', 'one');
        const updated = await store.update('/r/a', 'two', created.modRevision);
        await assert.rejects(
          store.update('/r/a', 'three', created.modRevision),
          isStoreError('Conflict', (e) => { assert.deepEqual(e.current, updated); }),
        );
        assert.equal(store.currentRevision(), 2);
      });

      it('refuses a missing key with KeyNotFound', async () => {
        await assert.rejects(store.update('/r/a', 'one', 1), isStoreError('KeyNotFound'));
        assert.equal(store.currentRevision(), 0);
      });
    });

    describe('delete', () => {
      it('with the right revision returns the deleted value at the delete revision', async () => {
        const created = await store.create('/r/a', 'one');
        const deleted = await store.delete('/r/a', created.modRevision);
        assert.deepEqual(deleted, { key: '/r/a', value: 'one', createRevision: 1, modRevision: 2 });
        assert.equal(await store.get('/r/a'), undefined);
      });

      it('with a stale revision fails Conflict carrying the current value', async () => {
        const created = await store.create('/r/a', 'one');
        const updated = await store.update('/r/a', 'two', created.modRevision);
        await assert.rejects(
          store.delete('/r/a', created.modRevision),
          isStoreError('Conflict', (e) => { assert.deepEqual(e.current, updated); }),
        );
        assert.deepEqual(await store.get('/r/a'), updated);
      });

      it('without a revision deletes whatever is there; a missing key is KeyNotFound', async () => {
        await store.create('/r/a', 'one');
        assert.equal((await store.delete('/r/a')).modRevision, 2);
        await assert.rejects(store.delete('/r/a'), isStoreError('KeyNotFound'));
      });

      it('lets the key be created again, with a new createRevision', async () => {
        await store.create('/r/a', 'one');
        await store.delete('/r/a');
        const again = await store.create('/r/a', 'two');
        assert.deepEqual(again, { key: '/r/a', value: 'two', createRevision: 3, modRevision: 3 });
      });
    });

    describe('list and count', () => {
      it('lists exactly the keys under the prefix, in key order, at the latest revision', async () => {
        for (const key of ['/r/b', '/r/ab', '/r/a/2', '/r/a/1', '/r/a', '/r0', '/q', '/r/a/1/x']) await store.create(key, key);
        const list = await store.list('/r/a/');
        assert.deepEqual(list.items.map((i) => i.key), ['/r/a/1', '/r/a/1/x', '/r/a/2']);
        assert.equal(list.revision, store.currentRevision());
        assert.equal(list.more, false);
        assert.deepEqual((await store.list('/r/')).items.map((i) => i.key), ['/r/a', '/r/a/1', '/r/a/1/x', '/r/a/2', '/r/ab', '/r/b']);
        assert.equal((await store.list('')).items.length, 8);
        assert.equal(await store.count('/r/a/'), 3);
        assert.equal(await store.count('/r/'), 6);
        assert.equal(await store.count('/nothing/'), 0);
        assert.equal(await store.count(''), 8);
      });

      it('sorts keys by code point, whatever the insertion order', async () => {
        const keys = Array.from({ length: 300 }, (_, i) => `/k/${(i * 7919) % 300}`);
        keys.push('/k/\u{1F600}', '/k/\uFFFD', '/k/\u00E9');
        await Promise.all(keys.map((k) => store.create(k, 'v')));
        const listed = (await store.list('/k/')).items.map((i) => i.key);
        const byCodePoint = [...keys].sort((a, b) => {
          const x = Array.from(a).map((c) => c.codePointAt(0) ?? 0);
          const y = Array.from(b).map((c) => c.codePointAt(0) ?? 0);
          for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] ?? 0) - (y[i] ?? 0);
          return x.length - y.length;
        });
        assert.deepEqual(listed, byCodePoint);
      });

      it('pages with startKey and limit, flagging more until the last page', async () => {
        for (let i = 0; i < 10; i++) await store.create(`/p/${i}`, `v${i}`);
        await store.create('/q/after', 'x');
        const seen: string[] = [];
        const mores: boolean[] = [];
        let startKey: string | undefined;
        for (;;) {
          const page = await store.list('/p/', startKey === undefined ? { limit: 4 } : { limit: 4, startKey });
          seen.push(...page.items.map((i) => i.key));
          mores.push(page.more);
          const last = page.items.at(-1);
          if (!page.more || last === undefined) break;
          startKey = `${last.key}\u0000`;
        }
        assert.deepEqual(seen, range(-1, 9).map((i) => `/p/${i}`));
        assert.deepEqual(mores, [true, true, false]);
        assert.equal((await store.list('/p/', { limit: 10 })).more, false);
        assert.deepEqual((await store.list('/p/', { startKey: '/a' })).items.length, 10);
        assert.deepEqual((await store.list('/p/', { startKey: '/z' })).items, []);
      });

      it('reads a past revision from history, also page by page while writes go on', async () => {
        const a = await store.create('/r/a', 'a1');
        await store.create('/r/b', 'b1');
        await store.create('/r/c', 'c1');
        const snapshot = store.currentRevision();
        await store.update('/r/a', 'a2', a.modRevision);
        await store.delete('/r/b');
        await store.create('/r/d', 'd1');
        await store.delete('/r/c');
        await store.create('/r/c', 'c2');

        const past = await store.list('/r/', { revision: snapshot });
        assert.equal(past.revision, snapshot);
        assert.deepEqual(past.items, [
          { key: '/r/a', value: 'a1', createRevision: 1, modRevision: 1 },
          { key: '/r/b', value: 'b1', createRevision: 2, modRevision: 2 },
          { key: '/r/c', value: 'c1', createRevision: 3, modRevision: 3 },
        ]);
        const first = await store.list('/r/', { revision: snapshot, limit: 2 });
        assert.deepEqual([first.items.map((i) => i.key), first.more], [['/r/a', '/r/b'], true]);
        await store.create('/r/bb', 'new');
        const second = await store.list('/r/', { revision: snapshot, limit: 2, startKey: '/r/b\u0000' });
        assert.deepEqual([second.items.map((i) => i.value), second.more], [['c1'], false]);
        const latest = await store.list('/r/');
        assert.deepEqual(latest.items.map((i) => i.value), ['a2', 'new', 'c2', 'd1']);
      });

      it('refuses a revision that was never written', async () => {
        await store.create('/r/a', 'one');
        await assert.rejects(store.list('/r/', { revision: 2 }), RangeError);
      });
    });

    describe('compaction', () => {
      it('keeps the latest values, and refuses older lists and watches with Compacted', async () => {
        const a = await store.create('/r/a', 'a1');
        await store.create('/r/b', 'b1');
        await store.update('/r/a', 'a2', a.modRevision);
        await store.delete('/r/b');
        await store.create('/r/c', 'c1');
        const target = store.currentRevision();
        await store.create('/r/d', 'd1');
        await store.compact(target);
        assert.equal(store.compactRevision(), target);

        const compacted = isStoreError('Compacted', (e) => { assert.equal(e.compactRevision, target); });
        await assert.rejects(store.list('/r/', { revision: target - 1 }), compacted);
        const signal = new AbortController().signal;
        await assert.rejects(store.watch({ prefix: '/r/', afterRevision: target - 1, signal }, () => undefined), compacted);

        const atTarget = await store.list('/r/', { revision: target });
        assert.deepEqual(atTarget.items.map((i) => `${i.key}=${i.value}@${i.modRevision}`), ['/r/a=a2@3', '/r/c=c1@5']);
        assert.deepEqual((await store.list('/r/')).items.map((i) => i.value), ['a2', 'c1', 'd1']);
        const replayed: number[] = [];
        await store.watch({ prefix: '/r/', afterRevision: target, signal }, (e) => replayed.push(e.revision));
        assert.deepEqual(replayed, [target + 1]);
      });

      it('ignores a target at or below the compacted revision, and refuses one never written', async () => {
        for (let i = 0; i < 5; i++) await store.create(`/r/${i}`, 'v');
        await store.compact(4);
        await store.compact(2);
        await store.compact(4);
        assert.equal(store.compactRevision(), 4);
        await assert.rejects(store.compact(6), RangeError);
        assert.equal((await store.list('/r/')).items.length, 5);
      });
    });

    describe('close', () => {
      it('commits writes already queued, then fails everything with Unavailable', async () => {
        const queued = store.create('/r/a', 'one');
        await store.close();
        assert.equal((await queued).modRevision, 1);
        const unavailable = isStoreError('Unavailable');
        await assert.rejects(store.get('/r/a'), unavailable);
        await assert.rejects(store.list('/r/'), unavailable);
        await assert.rejects(store.count('/r/'), unavailable);
        await assert.rejects(store.create('/r/b', 'two'), unavailable);
        await assert.rejects(store.update('/r/a', 'two', 1), unavailable);
        await assert.rejects(store.delete('/r/a'), unavailable);
        await assert.rejects(store.compact(1), unavailable);
        const signal = new AbortController().signal;
        await assert.rejects(store.watch({ prefix: '/', afterRevision: 0, signal }, () => undefined), unavailable);
        await store.close();
      });
    });
  });
}
