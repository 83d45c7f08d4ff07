// The etcd backend beyond the shared contract: etcd down at start, etcd killed mid-write and mid-watch,
// clusters sharing one etcd, and compaction done by another server.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdProcess, freePort } from './etcd-process.js';
import { EtcdStore } from './etcd.js';
import { parseEtcdUrl } from './etcd-codec.js';
import { range, waitFor, WatchRecorder } from './test-support.js';
import { StoreError } from './types.js';
import type { KeyValue } from './types.js';

function unavailable(mentions: string) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof StoreError, `expected a StoreError, got ${String(error)}`);
    assert.equal(error.code, 'Unavailable');
    assert.ok(error.message.includes(mentions), `the message names ${mentions}: ${error.message}`);
    return true;
  };
}

/** Resolves once the store answers reads again (its client reconnects by itself); fails after 10 s. */
async function reachable(store: EtcdStore): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await store.count('/');
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('etcd store: etcd down at start', () => {
  it('gives up after the connect timeout with an error naming the endpoint and what to do', async () => {
    const etcd = await EtcdProcess.prepare();
    try {
      const started = Date.now();
      await assert.rejects(EtcdStore.open({ endpoints: [etcd.endpoint], connectTimeoutMs: 1_500 }), (error: unknown) => {
        unavailable(etcd.endpoint)(error);
        assert.match((error as Error).message, /Start etcd there/);
        return true;
      });
      assert.ok(Date.now() - started >= 1_500, 'it kept trying until the timeout');
    } finally {
      await etcd.stop();
    }
  });

  it('keeps retrying, says it is waiting, and opens once etcd comes up', async () => {
    const etcd = await EtcdProcess.prepare();
    const said: string[] = [];
    try {
      const opening = EtcdStore.open({ endpoints: [etcd.endpoint], connectTimeoutMs: 60_000, onWaiting: (message) => said.push(message) });
      await waitFor(() => said.length > 0, 'a waiting message');
      assert.match(said[0] ?? '', new RegExp(`waiting for etcd at ${etcd.endpoint}`));
      await etcd.restart();
      const store = await opening;
      try {
        assert.equal((await store.create('/r/a', 'v')).modRevision, 1);
      } finally {
        await store.close();
      }
    } finally {
      await etcd.stop();
    }
  });
});

describe('etcd store: etcd killed and restarted', () => {
  let etcd: EtcdProcess;
  before(async () => {
    etcd = await EtcdProcess.start();
  });
  after(async () => {
    await etcd.stop();
  });

  it('loses no acknowledged write, fails the others Unavailable, and the watch resumes without a gap', async () => {
    const store = await EtcdStore.open({ endpoints: [etcd.endpoint], requestTimeoutMs: 2_000 });
    const watch = new WatchRecorder();
    try {
      await store.watch({ prefix: '/w/', afterRevision: 0, signal: watch.signal }, watch.onEvent);
      const acknowledged: KeyValue[] = [];
      const failures: unknown[] = [];
      let killed = false;
      let restarted: Promise<void> | undefined;
      const writers = Array.from({ length: 8 }, async (_, w) => {
        for (let i = 0; i < 80; i++) {
          try {
            acknowledged.push(await store.create(`/w/${w}/${i}`, `v${i}`));
          } catch (error) {
            failures.push(error);
          }
          if (acknowledged.length >= 100 && !killed) {
            killed = true;
            await etcd.kill();
            // Writes and reads fail while etcd is away; then it comes back with its data.
            await assert.rejects(store.get('/w/0/0'), unavailable(etcd.endpoint));
            restarted = etcd.restart();
          }
          if (restarted !== undefined && failures.length > 0) {
            await restarted;
            await reachable(store);
          }
        }
      });
      await Promise.all(writers);
      assert.ok(killed, 'etcd was killed mid-write');
      assert.ok(failures.length > 0, 'some writes failed while etcd was down');
      for (const failure of failures) unavailable(etcd.endpoint)(failure);
      assert.ok(acknowledged.length > 100, `writes went on after the restart (${acknowledged.length} acknowledged)`);

      const stored = new Map((await store.list('/w/')).items.map((kv) => [kv.key, kv]));
      for (const kv of acknowledged) assert.deepEqual(stored.get(kv.key), kv, `acknowledged ${kv.key} is stored as acknowledged`);
      // Every write that landed, acknowledged or not, reaches the watch once, in revision order.
      const landed = [...stored.values()].map((kv) => kv.modRevision).sort((a, b) => a - b);
      await watch.until(landed.at(-1) ?? 0);
      assert.deepEqual(watch.revisions, landed);
      assert.deepEqual(watch.events.map((e) => e.key).sort(), [...stored.keys()].sort());
    } finally {
      watch.controller.abort();
      await store.close();
    }
  });
});

describe('etcd store: history compacted while etcd was out of reach', () => {
  it('ends the watches it cannot continue with Compacted, and serves new watches', async () => {
    const etcd = await EtcdProcess.start();
    const store = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: '/p/' });
    try {
      const ended: StoreError[] = [];
      const watch = new WatchRecorder();
      await store.watch({ prefix: '/r/', afterRevision: 0, signal: watch.signal, onError: (error) => ended.push(error) }, watch.onEvent);
      await store.create('/r/a', 'v');
      await watch.until(1);

      // etcd comes back where this store cannot reach it; another server writes and compacts meanwhile.
      const reachable = etcd.clientPort;
      await etcd.kill();
      await etcd.restart({ clientPort: await freePort() });
      const other = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: '/p/' });
      for (const i of range(0, 3)) await other.create(`/r/other-${i}`, 'v');
      await other.compact(other.currentRevision());
      await other.close();
      await etcd.kill();
      await etcd.restart({ clientPort: reachable });

      await waitFor(() => ended.length > 0, 'the watch to end', 20_000);
      assert.equal(ended[0]?.code, 'Compacted');
      assert.deepEqual(watch.revisions, [1], 'nothing was delivered after the gap');
      assert.equal(store.watcherCount, 0);

      const after = new WatchRecorder();
      await waitFor(() => store.currentRevision() >= 4, 'the store to catch up with etcd', 20_000);
      await store.watch({ prefix: '/r/', afterRevision: store.currentRevision(), signal: after.signal }, after.onEvent);
      const written = await store.create('/r/b', 'v');
      await after.until(written.modRevision);
      assert.deepEqual(after.revisions, [written.modRevision]);
      after.controller.abort();
    } finally {
      await store.close();
      await etcd.stop();
    }
  });
});

describe('etcd store: one etcd, several clusters and servers', () => {
  let etcd: EtcdProcess;
  before(async () => {
    etcd = await EtcdProcess.start();
  });
  after(async () => {
    await etcd.stop();
  });

  it('keeps clusters apart by prefix; their revisions are etcd-wide', async () => {
    const a = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: '/cluster-a/' });
    const b = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: '/cluster-b/' });
    try {
      const inA = await a.create('/r/x', 'a');
      const inB = await b.create('/r/x', 'b');
      assert.ok(inB.modRevision > inA.modRevision);
      assert.equal((await a.get('/r/x'))?.value, 'a');
      assert.equal((await b.get('/r/x'))?.value, 'b');
      assert.deepEqual((await a.list('')).items.map((kv) => kv.value), ['a']);
      assert.equal(await b.count(''), 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a second server sees the first one\'s writes, replays their history, and learns its compaction', async () => {
    const prefix = '/shared/';
    const first = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix });
    let second: EtcdStore | undefined;
    try {
      const written = [];
      for (const i of range(0, 6)) written.push(await first.create(`/r/${i}`, `v${i}`));
      second = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix });
      // History from before the second server opened comes from etcd itself.
      const replay = new WatchRecorder();
      await second.watch({ prefix: '/r/', afterRevision: written[1]?.modRevision ?? 0, signal: replay.signal }, replay.onEvent);
      await first.create('/r/live', 'v');
      await replay.until(first.currentRevision());
      assert.deepEqual(replay.revisions, [...written.slice(2).map((kv) => kv.modRevision), first.currentRevision()]);
      replay.controller.abort();

      const target = written[3]?.modRevision ?? 0;
      const stale = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix });
      await first.compact(target);
      // A watch from before the compaction, on a server that has not heard of it: etcd refuses, the store says how far.
      await assert.rejects(stale.watch({ prefix: '/r/', afterRevision: 0, signal: new AbortController().signal }, () => undefined), (error: unknown) => {
        assert.ok(error instanceof StoreError && error.code === 'Compacted', String(error));
        assert.equal(error.compactRevision, target);
        return true;
      });
      await stale.close();
      assert.equal(second.compactRevision(), 0, 'the second server has not heard of it yet');
      await assert.rejects(second.list('/r/', { revision: target - 1 }), (error: unknown) => {
        assert.ok(error instanceof StoreError && error.code === 'Compacted');
        assert.equal(error.compactRevision, target);
        return true;
      });
      assert.equal(second.compactRevision(), target);
      const third = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix });
      assert.equal(third.compactRevision(), target, 'a server opening later finds the compacted revision');
      await third.close();
    } finally {
      await first.close();
      await second?.close();
    }
  });
});

describe('parseEtcdUrl', () => {
  it('reads endpoints and an optional prefix, and refuses what is not an etcd URL', () => {
    assert.deepEqual(parseEtcdUrl('etcd://127.0.0.1:2379'), { endpoints: ['http://127.0.0.1:2379'], prefix: '/vireo/' });
    assert.deepEqual(parseEtcdUrl('etcd://a:1,b.example:2/team-a'), { endpoints: ['http://a:1', 'http://b.example:2'], prefix: '/team-a/' });
    assert.deepEqual(parseEtcdUrl('etcd://[::1]:2379/x/'), { endpoints: ['http://[::1]:2379'], prefix: '/x/' });
    assert.throws(() => parseEtcdUrl('etcd://'), /etcd:\/\/host:port/);
    assert.throws(() => parseEtcdUrl('etcd://host'), /"host" is not host:port/);
    assert.throws(() => parseEtcdUrl('http://127.0.0.1:2379'), /not an etcd URL/);
  });
});
