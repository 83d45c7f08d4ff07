import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { validatePersistentVolumeClaim } from './persistentvolumeclaim.js';

const pvc = (storage: string | undefined, extra: Record<string, unknown> = {}, phase?: string): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name: 'data' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: storage === undefined ? {} : { storage } }, storageClassName: 'local', ...extra },
  ...(phase === undefined ? {} : { status: { phase } }),
});
const fields = (errors: { field: string }[]): string[] => errors.map((e) => e.field);

test('a claim needs access modes and a storage request', () => {
  assert.deepEqual(validatePersistentVolumeClaim(pvc('1Gi'), undefined), []);
  assert.deepEqual(fields(validatePersistentVolumeClaim(pvc(undefined, { accessModes: [] }), undefined)), ['spec.accessModes', 'spec.resources[storage]']);
  assert.deepEqual(fields(validatePersistentVolumeClaim(pvc('1Gi', { volumeMode: 'Raw', accessModes: ['RWO'] }), undefined)), ['spec.accessModes[0]', 'spec.volumeMode']);
});

test('a bound claim may grow, never shrink; the rest of its spec is fixed, but the binder may name its volume', () => {
  const bound = pvc('2Gi', { volumeName: 'pvc-1' }, 'Bound');
  assert.deepEqual(validatePersistentVolumeClaim(pvc('3Gi', { volumeName: 'pvc-1' }), bound), []);
  const shrink = validatePersistentVolumeClaim(pvc('1Gi', { volumeName: 'pvc-1' }), bound);
  assert.equal(shrink[0]?.field, 'spec.resources.requests.storage');
  assert.match(shrink[0]?.message ?? '', /field can not be less than previous value/);
  assert.deepEqual(fields(validatePersistentVolumeClaim(pvc('2Gi', { volumeName: 'pvc-1', storageClassName: 'other' }), bound)), ['spec']);
  assert.deepEqual(validatePersistentVolumeClaim(pvc('2Gi', { volumeName: 'pvc-9' }), pvc('2Gi', {}, 'Pending')), []);
  assert.deepEqual(fields(validatePersistentVolumeClaim(pvc('3Gi'), pvc('2Gi', {}, 'Pending'))), ['spec'], 'an unbound claim cannot be resized');
});
