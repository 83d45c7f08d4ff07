import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { claimDataSource, sourceNodeOf } from './data-source.js';
import { pickSnapshotClass } from './snapshot-class.js';

const pvc = (spec: Record<string, unknown>): KObject => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'c', namespace: 'ns' }, spec });

test('a claim\'s data source: a VolumeSnapshot of its namespace, or a claim of any namespace', () => {
  assert.equal(claimDataSource(pvc({})), undefined);
  assert.deepEqual(claimDataSource(pvc({ dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's' } })), { kind: 'VolumeSnapshot', name: 's' });
  assert.deepEqual(claimDataSource(pvc({ dataSourceRef: { kind: 'PersistentVolumeClaim', name: 'p' } })), { kind: 'PersistentVolumeClaim', name: 'p' });
  assert.deepEqual(claimDataSource(pvc({ dataSourceRef: { kind: 'PersistentVolumeClaim', name: 'p', namespace: 'other' } })), { kind: 'PersistentVolumeClaim', name: 'p', namespace: 'other' });
  assert.match(JSON.stringify(claimDataSource(pvc({ dataSourceRef: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's', namespace: 'other' } }))), /another namespace/);
  const requested = (value: string): KObject => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'c', namespace: 'ns', annotations: { 'k8s.io/CloneRequest': value } }, spec: {} });
  assert.deepEqual(claimDataSource(requested('golden/base')), { kind: 'PersistentVolumeClaim', name: 'base', namespace: 'golden' }, 'CDI\'s clone annotation names a claim of another namespace');
  assert.deepEqual(claimDataSource(requested('ns/base')), { kind: 'PersistentVolumeClaim', name: 'base' });
  const bad = claimDataSource(requested('base'));
  assert.match(bad !== undefined && 'unsupported' in bad ? bad.unsupported : '', /is not "namespace\/name"/);
  assert.match(JSON.stringify(claimDataSource(pvc({ dataSource: { apiGroup: 'cdi.kubevirt.io', kind: 'VolumeImportSource', name: 'x' } }))), /VolumeImportSource.cdi.kubevirt.io is not one/);
  assert.match(JSON.stringify(claimDataSource(pvc({ dataSource: { kind: 'VolumeSnapshot', name: 's' } }))), /not one the vireo.io\/local provisioner/, 'a VolumeSnapshot needs its apiGroup');
});

test('the source\'s node: the bound volume\'s, or the ready snapshot handle\'s', () => {
  const pv: KObject = {
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'pv1', annotations: { 'pv.kubernetes.io/provisioned-by': 'vireo.io/local' } },
    spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }] } } },
  };
  const snapshot = (ready: boolean): KObject => ({ apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: 's', namespace: 'ns' }, status: { readyToUse: ready, boundVolumeSnapshotContentName: 'sc' } });
  const content: KObject = { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotContent', metadata: { name: 'sc' }, spec: { driver: 'vireo.io/local' }, status: { snapshotHandle: 'n2/sc' } };
  const lookup = (ready: boolean, bound: boolean) => ({
    claim: () => pvc(bound ? { volumeName: 'pv1' } : {}),
    volume: (name: string) => (name === 'pv1' ? pv : undefined),
    snapshot: () => snapshot(ready),
    content: () => content,
  });
  assert.deepEqual(sourceNodeOf({ kind: 'PersistentVolumeClaim', name: 'p' }, 'ns', lookup(true, true)), { node: 'n1' });
  assert.match(JSON.stringify(sourceNodeOf({ kind: 'PersistentVolumeClaim', name: 'p' }, 'ns', lookup(true, false))), /not bound/);
  assert.deepEqual(sourceNodeOf({ kind: 'VolumeSnapshot', name: 's' }, 'ns', lookup(true, true)), { node: 'n2' });
  assert.match(JSON.stringify(sourceNodeOf({ kind: 'VolumeSnapshot', name: 's' }, 'ns', lookup(false, true))), /not ready/);
});

test('the default VolumeSnapshotClass of a driver is the one marked default, and only one may be', () => {
  const cls = (name: string, isDefault: boolean, driver = 'vireo.io/local'): KObject => ({
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotClass',
    metadata: { name, annotations: isDefault ? { 'snapshot.storage.kubernetes.io/is-default-class': 'true' } : {} },
    driver,
    deletionPolicy: 'Delete',
  });
  assert.deepEqual(pickSnapshotClass([cls('a', false), cls('b', true), cls('c', true, 'other')], 'vireo.io/local'), { name: 'b' });
  assert.match(JSON.stringify(pickSnapshotClass([cls('a', false)], 'vireo.io/local')), /no default VolumeSnapshotClass/);
  assert.match(JSON.stringify(pickSnapshotClass([cls('a', true), cls('b', true)], 'vireo.io/local')), /2 VolumeSnapshotClasses .* are marked default \(a, b\)/);
});
