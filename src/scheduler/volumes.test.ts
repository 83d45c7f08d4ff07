import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../api/object.js';
import { cordonedVolumeHint, holdsDataSource, volumeFilter, volumeNeeds, volumeReasons } from './volumes.js';

const gi = 2 ** 30;
const vmi = (...claims: string[]): KObject => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'v', namespace: 'default' },
  spec: { volumes: claims.map((c, i) => (i % 2 === 0 ? { name: `v${i}`, persistentVolumeClaim: { claimName: c } } : { name: `v${i}`, dataVolume: { name: c } })) },
});
const claim = (name: string, extra: { volumeName?: string; className?: string; node?: string; deleting?: boolean; size?: string } = {}): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: {
    name,
    namespace: 'default',
    uid: name,
    ...(extra.node === undefined ? {} : { annotations: { 'volume.kubernetes.io/selected-node': extra.node } }),
    ...(extra.deleting === true ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
  },
  spec: { storageClassName: extra.className ?? 'local', resources: { requests: { storage: extra.size ?? '1Gi' } }, ...(extra.volumeName === undefined ? {} : { volumeName: extra.volumeName }) },
});
const node = (name: string): KObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } });
const pinnedTo = (name: string): KObject => ({
  apiVersion: 'v1',
  kind: 'PersistentVolume',
  metadata: { name: 'pv' },
  spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [name] }] }] } } },
});
const classes: Record<string, KObject> = {
  local: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'local' }, provisioner: 'vireo.io/local', volumeBindingMode: 'WaitForFirstConsumer' },
  now: { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'now' }, provisioner: 'vireo.io/local' },
};
const lookup = (claims: KObject[], pv?: KObject) => ({
  claim: (_ns: string, name: string) => claims.find((c) => c.metadata.name === name),
  volume: (name: string) => (name === 'pv' ? pv : undefined),
  storageClass: (name: string) => classes[name],
});

test('a missing, deleted or unbound Immediate claim makes every node unfit', () => {
  assert.deepEqual(volumeNeeds(vmi('gone'), lookup([])), { unresolvable: 'PersistentVolumeClaim "gone" not found' });
  assert.deepEqual(volumeNeeds(vmi('x'), lookup([claim('x', { deleting: true })])), { unresolvable: 'persistentvolumeclaim "x" is being deleted' });
  assert.deepEqual(volumeNeeds(vmi('x'), lookup([claim('x', { className: 'now' })])), { unresolvable: 'pod has unbound immediate PersistentVolumeClaims' });
  assert.deepEqual(volumeNeeds(vmi('x'), lookup([claim('x', { className: 'nope' })])), { unresolvable: 'storageclass.storage.k8s.io "nope" not found' });
});

test('bound volumes pin the VMI to their node; unbound local claims need room', () => {
  const needs = volumeNeeds(vmi('a', 'b'), lookup([claim('a', { volumeName: 'pv' }), claim('b', { size: '2Gi' })], pinnedTo('n1')));
  assert.ok(!('unresolvable' in needs));
  assert.deepEqual(volumeFilter(needs, node('n1'), 3 * gi), []);
  assert.deepEqual(volumeFilter(needs, node('n2'), 3 * gi), [volumeReasons.conflict]);
  assert.deepEqual(volumeFilter(needs, node('n1'), gi), [volumeReasons.noSpace]);
  assert.deepEqual(volumeFilter(needs, node('n1'), undefined), [volumeReasons.noSpace]);
  const sent = volumeNeeds(vmi('c'), lookup([claim('c', { node: 'n2', size: '100Gi' })]));
  assert.ok(!('unresolvable' in sent));
  assert.deepEqual(volumeFilter(sent, node('n1'), 200 * gi), [volumeReasons.conflict]);
  assert.deepEqual(volumeFilter(sent, node('n2'), 0), [], 'a claim already sent to the node is counted in its free bytes');
});

test('a clone or restore goes to the node holding its source, and waits until that is known', () => {
  const cloned = (annotations: Record<string, string>): KObject => {
    const pvc = claim('copy');
    pvc.metadata.annotations = annotations;
    (pvc.spec as Record<string, unknown>).dataSource = { kind: 'PersistentVolumeClaim', name: 'origin' };
    return pvc;
  };
  assert.match(JSON.stringify(volumeNeeds(vmi('copy'), lookup([cloned({})]))), /waits for its data source/);
  const needs = volumeNeeds(vmi('copy'), lookup([cloned({ 'storage.vireo.io/data-source-node': 'n2' })]));
  assert.ok(!('unresolvable' in needs));
  assert.deepEqual(volumeFilter(needs, node('n1'), 10 * gi), [volumeReasons.notSourceNode], 'n2 publishes no agent endpoint and is not the control plane');
  assert.deepEqual(volumeFilter(needs, node('n2'), 10 * gi), []);
  assert.equal(holdsDataSource(needs, node('n2')), true);
  assert.equal(holdsDataSource(needs, node('n1')), false);
});

test('a clone or restore from a node with an agent endpoint may go anywhere with room, its source node first', () => {
  const withEndpoint: KObject = { ...node('n2'), metadata: { name: 'n2', annotations: { 'vireo.io/agent-certificate': 'PEM' } }, status: { daemonEndpoints: { kubeletEndpoint: { Port: 10250 } } } };
  const copy = (dataSource: Record<string, unknown>): KObject => {
    const pvc = claim('copy');
    pvc.metadata.annotations = { 'storage.vireo.io/data-source-node': 'n2' };
    (pvc.spec as Record<string, unknown>).dataSource = dataSource;
    return pvc;
  };
  const nodes = { node: (name: string) => (name === 'n2' ? withEndpoint : node(name)) };
  const clone = volumeNeeds(vmi('copy'), { ...lookup([copy({ kind: 'PersistentVolumeClaim', name: 'origin' })]), ...nodes });
  assert.ok(!('unresolvable' in clone));
  assert.deepEqual(volumeFilter(clone, node('n1'), 10 * gi), [], 'n1 copies the data from n2');
  assert.deepEqual(volumeFilter(clone, node('n1'), 0), [volumeReasons.noSpace], 'a full copy needs room');
  assert.equal(holdsDataSource(clone, withEndpoint), true);
  const restore = volumeNeeds(vmi('copy'), { ...lookup([copy({ apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: 's' })]), ...nodes });
  assert.ok(!('unresolvable' in restore));
  assert.deepEqual(volumeFilter(restore, node('n1'), 10 * gi), [], 'n1 copies the snapshot\'s data from n2');
});

test('a VMI held by local volumes of a cordoned node is told which claims and what to do', () => {
  const cordoned = (name: string): KObject => ({ ...node(name), spec: { unschedulable: true } });
  const claims = [claim('data', { volumeName: 'pv' }), claim('scratch', { size: '1Gi' })];
  const on = (n: KObject) => ({ ...lookup(claims, pinnedTo('n1')), node: (name: string) => (name === 'n1' ? n : undefined) });
  assert.equal(cordonedVolumeHint(vmi('data', 'scratch'), on(cordoned('n1'))), 'claim "data" is a local volume of node n1, which is cordoned: uncordon n1 to run it there again (a local volume does not follow its VMI to another node)');
  assert.equal(cordonedVolumeHint(vmi('data'), on(node('n1'))), undefined, 'not cordoned: kube-scheduler\'s message says enough');
  assert.equal(cordonedVolumeHint(vmi('scratch'), on(cordoned('n1'))), undefined, 'an unbound claim is not pinned');
});
