import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OwnerGraph, parseNode } from './graph.js';

function value(uid: string, extra: { owners?: string[]; deleting?: boolean; finalizers?: string[] } = {}): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      uid,
      ownerReferences: (extra.owners ?? []).map((o) => ({ apiVersion: 'v1', kind: 'ConfigMap', name: o, uid: o })),
      ...(extra.deleting === true ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}),
      finalizers: extra.finalizers ?? [],
    },
  });
}

const sorted = (keys: string[]): string[] => [...keys].sort();

test('values that are not objects with a uid stay out of the graph', () => {
  assert.equal(parseNode('/k', 'not json'), undefined);
  assert.equal(parseNode('/k', '[]'), undefined);
  assert.equal(parseNode('/k', '{"metadata":{}}'), undefined);
  assert.deepEqual(parseNode('/k', value('u', { owners: ['o', 'o'] }))?.owners, ['o']);
});

test('an object with owners needs a look; one without does not', () => {
  const graph = new OwnerGraph();
  assert.deepEqual(graph.observe('/owner', value('o')), []);
  assert.deepEqual(graph.observe('/dep', value('d', { owners: ['o'] })), ['/dep']);
  assert.deepEqual(graph.dependentsOf('o'), ['/dep']);
  assert.equal(graph.keyOf('o'), '/owner');
  assert.deepEqual(sorted(graph.actionable()), ['/dep']);
});

test('an owner that goes, or starts going, wakes its dependents', () => {
  const graph = new OwnerGraph();
  graph.observe('/owner', value('o'));
  graph.observe('/a', value('a', { owners: ['o'] }));
  graph.observe('/b', value('b', { owners: ['o'] }));
  assert.deepEqual(sorted(graph.observe('/owner', value('o', { deleting: true, finalizers: ['foregroundDeletion'] }))), ['/a', '/b', '/owner']);
  assert.deepEqual(sorted(graph.observe('/owner', undefined)), ['/a', '/b']);
  assert.equal(graph.keyOf('o'), undefined);
});

test('a dependent that changes wakes an owner waiting for it, and dropped references leave the index', () => {
  const graph = new OwnerGraph();
  graph.observe('/owner', value('o', { deleting: true, finalizers: ['foregroundDeletion'] }));
  graph.observe('/dep', value('d', { owners: ['o'] }));
  assert.deepEqual(sorted(graph.observe('/dep', value('d'))), ['/owner']);
  assert.deepEqual(graph.dependentsOf('o'), []);
  assert.equal(graph.hasDependents('o'), false);
});

test('a key reused by a new object releases the old one’s dependents', () => {
  const graph = new OwnerGraph();
  graph.observe('/owner', value('o1'));
  graph.observe('/dep', value('d', { owners: ['o1'] }));
  assert.deepEqual(graph.observe('/owner', value('o2')), ['/dep']);
  assert.equal(graph.keyOf('o1'), undefined);
  assert.equal(graph.keyOf('o2'), '/owner');
});
