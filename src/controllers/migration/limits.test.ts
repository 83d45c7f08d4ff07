import { test } from 'node:test';
import assert from 'node:assert/strict';
import { slotVerdict } from './limits.js';
import type { SlotHolder, SlotRequest } from './limits.js';

const limits = { perCluster: 5, perSourceNode: 2 };

function request(uid: string, sourceNode: string, second: number): SlotRequest {
  return { uid, sourceNode, name: uid, creationTimestamp: `2026-11-28T04:00:${String(second).padStart(2, '0')}Z` };
}

function running(count: number, node: (i: number) => string): SlotHolder[] {
  return [...Array(count).keys()].map((i) => ({ uid: `run-${i}`, sourceNode: node(i) }));
}

test('a migration starts while the cluster and its source node have slots', () => {
  const r = request('m', 'a', 1);
  assert.deepEqual(slotVerdict(r, [], [r], limits), { start: true });
  assert.deepEqual(slotVerdict(r, running(1, () => 'a'), [r], limits), { start: true });
});

test('at most parallelOutboundMigrationsPerNode leave one node: the third waits, saying why', () => {
  const r = request('m', 'a', 1);
  const verdict = slotVerdict(r, running(2, () => 'a'), [r], limits);
  assert.equal(verdict.start, false);
  assert.match(verdict.start ? '' : verdict.message, /2 migrations leave node a, the limit per node is 2 .*parallelOutboundMigrationsPerNode/);
  assert.deepEqual(slotVerdict(request('n', 'b', 2), running(2, () => 'a'), [r, request('n', 'b', 2)], limits), { start: true }, 'another node is not held back');
});

test('at most parallelMigrationsPerCluster run: the sixth waits, saying why', () => {
  const r = request('m', 'z', 1);
  const verdict = slotVerdict(r, running(5, (i) => `n${i}`), [r], limits);
  assert.equal(verdict.start, false);
  assert.match(verdict.start ? '' : verdict.message, /5 migrations run, the cluster's limit is 5 .*parallelMigrationsPerCluster/);
});

test('waiting migrations start in creation order: a younger one does not take the slot of an older one', () => {
  const older = request('older', 'a', 1);
  const younger = request('younger', 'b', 2);
  const tight = { perCluster: 1, perSourceNode: 2 };
  assert.deepEqual(slotVerdict(older, [], [younger, older], tight), { start: true });
  const verdict = slotVerdict(younger, [], [younger, older], tight);
  assert.equal(verdict.start, false);
  assert.match(verdict.start ? '' : verdict.message, /0 migrations run and 1 older ones start/);
});

test('an older migration held by its node\'s limit does not hold back a younger one from another node', () => {
  const older = request('older', 'a', 1);
  const younger = request('younger', 'b', 2);
  assert.deepEqual(slotVerdict(younger, running(2, () => 'a'), [older, younger], limits), { start: true });
});

test('same creation second: the name decides, so every pass agrees', () => {
  const a = request('a', 'x', 1);
  const b = request('b', 'y', 1);
  const tight = { perCluster: 1, perSourceNode: 1 };
  assert.deepEqual(slotVerdict(a, [], [b, a], tight), { start: true });
  assert.equal(slotVerdict(b, [], [a, b], tight).start, false);
});
