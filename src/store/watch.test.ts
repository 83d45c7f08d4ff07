// The store contract for watches, run once per backend.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { range, storePerTest, testBackends, waitFor, WatchRecorder } from './test-support.js';
import type { TestStore } from './test-support.js';
import type { KeyValue, StoreEvent } from './types.js';

for (const backend of testBackends()) {
  describe(`store watch (${backend.name})`, () => {
    let store: TestStore;
    storePerTest(backend, (opened) => {
      store = opened;
    });

    function watch(recorder: WatchRecorder, prefix: string, afterRevision: number): Promise<void> {
      return store.watch({ prefix, afterRevision, signal: recorder.signal }, recorder.onEvent);
    }

    it('replays history in order, then delivers live events, with values before and after', async () => {
      const a = await store.create('/r/a', 'a1');
      await store.create('/other/x', 'x');
      await store.update('/r/a', 'a2', a.modRevision);
      await store.delete('/r/a');
      const recorder = new WatchRecorder();
      await watch(recorder, '/r/', 0);
      assert.deepEqual(recorder.events, [
        { type: 'put', key: '/r/a', revision: 1, value: 'a1', prevValue: undefined, created: true },
        { type: 'put', key: '/r/a', revision: 3, value: 'a2', prevValue: 'a1', created: false },
        { type: 'delete', key: '/r/a', revision: 4, value: 'a2', prevValue: 'a2', created: false },
      ]);
      await store.create('/r/a', 'a3');
      await store.create('/other/y', 'y');
      await store.create('/r/b', 'b1');
      await recorder.until(7);
      assert.deepEqual(
        recorder.events.slice(3).map((e) => [e.type, e.key, e.revision, e.created, e.prevValue]),
        [
          ['put', '/r/a', 5, true, undefined],
          ['put', '/r/b', 7, true, undefined],
        ],
      );
    });

    it('delivers every revision exactly once when a watch starts while writes are in flight', async () => {
      const workers = Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 40; i++) {
          const kv = await store.create(`/w/${w}/${i}`, 'v1');
          await store.update(kv.key, 'v2', kv.modRevision);
        }
      });
      const writing = Promise.all(workers);
      await waitFor(() => store.currentRevision() >= 200, 'the first 200 writes');
      const fromStart = new WatchRecorder();
      const fromMiddle = new WatchRecorder();
      const fromNow = new WatchRecorder();
      const middle = Math.floor(store.currentRevision() / 2);
      await watch(fromStart, '/w/', 0);
      await watch(fromMiddle, '/w/', middle);
      const now = store.currentRevision();
      await watch(fromNow, '/w/', now);
      await writing;
      const final = store.currentRevision();
      assert.equal(final, 16 * 40 * 2);
      await fromStart.until(final);
      await fromMiddle.until(final);
      await fromNow.until(final);
      assert.deepEqual(fromStart.revisions, range(0, final));
      assert.deepEqual(fromMiddle.revisions, range(middle, final));
      assert.deepEqual(fromNow.revisions, range(now, final));
    });

    it('filters by prefix', async () => {
      const recorder = new WatchRecorder();
      await watch(recorder, '/r/a/', 0);
      for (const key of ['/r/a', '/r/ab', '/r/a/1', '/r/b/1', '/r/a/2/x']) await store.create(key, key);
      await waitFor(() => store.currentRevision() === 5, 'five writes');
      assert.deepEqual(recorder.events.map((e) => e.key), ['/r/a/1', '/r/a/2/x']);
    });

    it('waits quietly from a revision not yet written', async () => {
      await store.create('/r/a', 'v');
      const recorder = new WatchRecorder();
      await watch(recorder, '/r/', 3);
      for (let i = 0; i < 4; i++) await store.create(`/r/${i}`, 'v');
      await recorder.until(5);
      assert.deepEqual(recorder.revisions, [4, 5]);
    });

    it('stops at abort, also during the replay, and leaves no watcher behind', async () => {
      for (let i = 0; i < 5; i++) await store.create(`/r/${i}`, 'v');
      const stopped = new WatchRecorder();
      await store.watch({ prefix: '/r/', afterRevision: 0, signal: stopped.signal }, (event) => {
        stopped.onEvent(event);
        if (stopped.events.length === 3) stopped.controller.abort();
      });
      const live = new WatchRecorder();
      await watch(live, '/r/', 5);
      assert.equal(store.watcherCount, 1);
      const early = new WatchRecorder();
      early.controller.abort();
      await watch(early, '/r/', 0);
      live.controller.abort();
      assert.equal(store.watcherCount, 0);
      await store.create('/r/late', 'v');
      assert.deepEqual(stopped.revisions, [1, 2, 3]);
      assert.deepEqual(live.events, []);
      assert.deepEqual(early.events, []);
    });

    it('drops a watcher whose callback throws, and keeps the write and the other watchers', async () => {
      const reported: unknown[] = [];
      const own = await backend.open({ onWatchError: (error) => reported.push(error) });
      try {
        const good = new WatchRecorder();
        await own.watch({ prefix: '/', afterRevision: 0, signal: good.signal }, good.onEvent);
        await own.watch({ prefix: '/', afterRevision: 0, signal: new AbortController().signal }, () => {
          throw new Error('broken consumer');
        });
        assert.equal(own.watcherCount, 2);
        assert.equal((await own.create('/r/a', 'v')).modRevision, 1);
        await own.create('/r/b', 'v');
        await good.until(2);
        assert.equal(own.watcherCount, 1);
        assert.equal(reported.length, 1);
        assert.deepEqual(good.revisions, [1, 2]);
      } finally {
        await own.close();
      }
    });

    it('feeds 500 watchers every event in order', async () => {
      const recorders = Array.from({ length: 500 }, () => new WatchRecorder());
      await Promise.all(recorders.map((r, i) => watch(r, i % 2 === 0 ? '/r/' : '/r/a', 0)));
      await Promise.all(range(0, 20).map((i) => store.create(`/r/a${i}`, 'v')));
      await store.create('/r/b', 'v');
      for (const [i, recorder] of recorders.entries()) {
        await recorder.until(i % 2 === 0 ? 21 : 20);
        assert.deepEqual(recorder.revisions, range(0, i % 2 === 0 ? 21 : 20));
      }
    });

    it('gives a watch started from inside another watcher no duplicate', async () => {
      const inner = new WatchRecorder();
      const starting: Promise<void>[] = [];
      const outer = new WatchRecorder();
      await store.watch({ prefix: '/r/', afterRevision: 0, signal: outer.signal }, (event) => {
        outer.onEvent(event);
        if (event.revision === 2) starting.push(watch(inner, '/r/', 0));
      });
      await Promise.all([store.create('/r/a', 'v'), store.create('/r/b', 'v'), store.create('/r/c', 'v')]);
      await store.create('/r/d', 'v');
      await Promise.all(starting);
      await inner.until(4);
      assert.deepEqual(inner.revisions, [1, 2, 3, 4]);
      assert.deepEqual(outer.revisions, [1, 2, 3, 4]);
    });

    it('lets a callback read the store during a long replay', async () => {
      await Promise.all(range(0, 1200).map((i) => store.create(`/r/${i}`, 'v')));
      const reads: Promise<KeyValue | undefined>[] = [];
      const seen: StoreEvent[] = [];
      await store.watch({ prefix: '/r/', afterRevision: 0, signal: new AbortController().signal }, (event) => {
        seen.push(event);
        reads.push(store.get(event.key));
      });
      assert.equal(seen.length, 1200);
      assert.equal((await Promise.all(reads)).filter((kv) => kv !== undefined).length, 1200);
    });
  });
}
