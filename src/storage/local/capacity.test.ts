import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { committedBytes, formatBytes, freeBytes } from './capacity.js';

const gi = 2 ** 30;
const pv = (name: string, node: string, size: string, uid: string): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': 'vireo.io/local' } },
  spec: { capacity: { storage: size }, claimRef: { uid }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } } },
});
const pvc = (uid: string, size: string, extra: { node?: string; volumeName?: string; className?: string } = {}): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name: uid, namespace: 'default', uid, annotations: extra.node === undefined ? {} : { 'volume.kubernetes.io/selected-node': extra.node } },
  spec: { storageClassName: extra.className ?? 'local', resources: { requests: { storage: size } }, ...(extra.volumeName === undefined ? {} : { volumeName: extra.volumeName }) },
});

test('a node has promised its local volumes and the claims sent to it, each once', () => {
  const view = {
    pvs: [pv('pvc-a', 'n1', '1Gi', 'a'), pv('pvc-b', 'n2', '5Gi', 'b')],
    pvcs: [
      pvc('a', '1Gi', { node: 'n1', volumeName: 'pvc-a' }),
      pvc('c', '2Gi', { node: 'n1' }),
      pvc('d', '3Gi', { node: 'n1', className: 'nfs' }),
      pvc('e', '4Gi'),
    ],
    isLocalClass: (name: string) => name === 'local',
  };
  assert.equal(committedBytes('n1', view), 3 * gi);
  assert.equal(committedBytes('n1', view, 'c'), 1 * gi);
  const node: KObject = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, status: { allocatable: { 'vireo.io/local-storage': String(10 * gi) } } };
  assert.equal(freeBytes(node, view), 7 * gi);
  assert.equal(freeBytes({ ...node, status: {} }, view), undefined);
});

test('sizes read as Kubernetes users write them', () => {
  assert.equal(formatBytes(10 * gi), '10Gi');
  assert.equal(formatBytes(1.5 * gi), '1.5Gi');
  assert.equal(formatBytes(512), '512');
});
