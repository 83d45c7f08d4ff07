import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { validatePersistentVolume } from './persistentvolume.js';

function pv(node: string, path: string, capacity = '1Gi'): KObject {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'pvc-1' },
    spec: { capacity: { storage: capacity }, local: { path }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } } },
  };
}

test('a user cannot move a PersistentVolume (its source and node affinity are immutable); Vireo\'s controllers can; other changes pass', () => {
  const stored = pv('host-1', '/a/volumes/pvc-1');
  const moved = pv('host-2', '/b/volumes/pvc-1');
  const errors = validatePersistentVolume(moved, stored, { writer: 'user' });
  assert.deepEqual(errors.map((e) => e.field), ['spec.persistentvolumesource', 'spec.nodeAffinity']);
  assert.match(errors[1]?.message ?? '', /field is immutable/);
  assert.deepEqual(validatePersistentVolume(moved, stored, { writer: 'controller' }), []);
  assert.deepEqual(validatePersistentVolume(pv('host-1', '/a/volumes/pvc-1', '2Gi'), stored, { writer: 'user' }), []);
  assert.deepEqual(validatePersistentVolume(moved, undefined, { writer: 'user' }), []);
});
