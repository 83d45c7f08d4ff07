import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GroupCommit } from './group-commit.js';
import { StoreError } from './types.js';
import type { WriteOutcome } from './group-commit.js';
import type { WriteOp } from './log-row.js';

/** A commit function that records its batches and accepts every op except keys starting with `bad`. */
function recordingCommit() {
  const batches: string[][] = [];
  let revision = 0;
  const commit = (ops: readonly WriteOp[]): WriteOutcome[] => {
    batches.push(ops.map((op) => op.key));
    return ops.map((op) =>
      op.key.startsWith('bad')
        ? new StoreError('KeyExists', `${op.key} exists`)
        : { key: op.key, value: '', createRevision: ++revision, modRevision: revision },
    );
  };
  return { batches, commit };
}

const create = (key: string): WriteOp => ({ kind: 'create', key, value: '' });

describe('GroupCommit', () => {
  it('commits the writes of one tick as one batch and settles each on its own', async () => {
    const { batches, commit } = recordingCommit();
    const writes = new GroupCommit(commit);
    const results = await Promise.allSettled(['a', 'bad1', 'b', 'c'].map((k) => writes.submit(create(k))));
    assert.deepEqual(batches, [['a', 'bad1', 'b', 'c']]);
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? r.value.modRevision : String(r.reason))),
      [1, 'StoreError: bad1 exists', 2, 3],
    );
    await writes.submit(create('d'));
    assert.deepEqual(batches.length, 2);
  });

  it('splits a flood into transactions of at most 1000 writes', async () => {
    const { batches, commit } = recordingCommit();
    const writes = new GroupCommit(commit);
    await Promise.all(Array.from({ length: 2500 }, (_, i) => writes.submit(create(`k${i}`))));
    assert.deepEqual(batches.map((b) => b.length), [1000, 1000, 500]);
  });

  it('fails the whole batch with Unavailable when the commit throws, and recovers', async () => {
    let fail = true;
    const { commit } = recordingCommit();
    const writes = new GroupCommit((ops) => {
      if (fail) throw new Error('disk I/O error');
      return commit(ops);
    });
    const results = await Promise.allSettled([writes.submit(create('a')), writes.submit(create('b'))]);
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.ok(result.reason instanceof StoreError && result.reason.code === 'Unavailable');
      assert.match(result.reason.message, /disk I\/O error/);
    }
    fail = false;
    assert.equal((await writes.submit(create('c'))).modRevision, 1);
  });

  it('commits what was queued before close, and refuses what comes after', async () => {
    const { batches, commit } = recordingCommit();
    const writes = new GroupCommit(commit);
    const queued = writes.submit(create('a'));
    await writes.close();
    assert.deepEqual(batches, [['a']]);
    assert.equal((await queued).key, 'a');
    await assert.rejects(writes.submit(create('b')), (e: unknown) => e instanceof StoreError && e.code === 'Unavailable');
  });
});
