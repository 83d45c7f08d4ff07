import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { claimNamesOf, importInProgress, localVolumeOf, volumeDir, volumeNode } from './volume.js';

const claim = (extra: Record<string, unknown> = {}): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name: 'data', namespace: 'default', uid: 'u1' },
  spec: { volumeName: 'pvc-u1', ...extra },
});
const volume = (mode: 'Filesystem' | 'Block', path: string, format = 'qcow2'): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: { name: 'pvc-u1', annotations: { 'pv.kubernetes.io/provisioned-by': 'vireo.io/local', 'storage.vireo.io/format': format } },
  spec: {
    capacity: { storage: '1Gi' },
    volumeMode: mode,
    claimRef: { namespace: 'default', name: 'data', uid: 'u1' },
    local: { path },
    nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }] } },
  },
});

test('a Filesystem volume is disk.img in its directory, a Block volume the file its path names', () => {
  const dir = volumeDir('/data/agent', 'u1');
  assert.equal(dir, '/data/agent/volumes/pvc-u1');
  assert.deepEqual(localVolumeOf(claim(), volume('Filesystem', dir)), { path: `${dir}/disk.img`, format: 'qcow2', volumeMode: 'Filesystem', node: 'n1', bytes: 2 ** 30 });
  assert.deepEqual(localVolumeOf(claim(), volume('Block', `${dir}/block`, 'raw')), { path: `${dir}/block`, format: 'raw', volumeMode: 'Block', node: 'n1', bytes: 2 ** 30 });
  assert.equal(volumeNode(volume('Block', '/x')), 'n1');
});

test('a claim not bound to the volume, or a volume of another provisioner, has no local file', () => {
  assert.throws(() => localVolumeOf(claim({ volumeName: 'other' }), volume('Filesystem', '/d')), /is not bound to PersistentVolume "pvc-u1"/);
  const foreign = volume('Filesystem', '/d');
  foreign.metadata.annotations = {};
  assert.throws(() => localVolumeOf(claim(), foreign), /was not made by the vireo.io\/local provisioner/);
});

test('an import in progress is any CDI pod phase but Succeeded', () => {
  const annotated = (phase: string): KObject => ({ ...claim(), metadata: { name: 'd', annotations: { 'cdi.kubevirt.io/storage.pod.phase': phase } } });
  assert.equal(importInProgress(claim()), undefined);
  assert.equal(importInProgress(annotated('Succeeded')), undefined);
  assert.equal(importInProgress(annotated('Running')), 'Running');
  assert.equal(importInProgress(annotated('Failed')), 'Failed');
});

test('a VMI uses the claims of its persistentVolumeClaim and dataVolume volumes, once each', () => {
  const vmi: KObject = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'v' },
    spec: { volumes: [{ name: 'a', persistentVolumeClaim: { claimName: 'x' } }, { name: 'b', dataVolume: { name: 'y' } }, { name: 'c', persistentVolumeClaim: { claimName: 'x' } }, { name: 'd', emptyDisk: {} }] },
  };
  assert.deepEqual(claimNamesOf(vmi), ['x', 'y']);
});
