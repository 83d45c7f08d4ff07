/**
 * The snapshot and restore controllers against the real API server, the
 * CSI side (VolumeSnapshot readiness, claim binding) and the node agent
 * (VMI phases) played by the test: what a VirtualMachineSnapshot makes
 * (content, VolumeSnapshots, the lock on the VM), its phases, conditions,
 * indications and Events, its deadline and deletion policies; what a
 * VirtualMachineRestore makes (claims from the VolumeSnapshots, the VM's
 * spec), its readiness policies and refusals; admission of bad input.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { recordAt, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { condition, eventsFor, eventually, read, report } from './support.js';
import type { SnapshotEnv } from './vmsnapshot-support.js';
import { boundClaim, cut, readySnapshot, restoreManifest, snapshotManifest, snapshotWhere, startSnapshotEnv, vmWithClaim } from './vmsnapshot-support.js';

let env: SnapshotEnv;
before(async () => { env = await startSnapshotEnv(); });
after(async () => { await env.close(); });

const vms = resources.virtualMachines;
const snapshots = resources.virtualMachineSnapshots;
const contents = resources.virtualMachineSnapshotContents;
const restores = resources.virtualMachineRestores;
const pvcs = resources.persistentVolumeClaims;

async function reasons(name: string): Promise<string[]> {
  return (await eventsFor(env.client, name)).map((e) => stringAt(e, 'reason') ?? '');
}

/** A VMI for VM `name`, as the VM controller and the agent would make and run it. */
async function runningVmi(name: string): Promise<void> {
  await env.client.create(resources.virtualMachineInstances, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace: 'default' }, spec: { domain: { devices: {}, memory: { guest: '128Mi' } } } });
  await report(env.client, name, 'Running');
}

test('a snapshot of a stopped VM: content with the VM and one volume backup, a VolumeSnapshot per claim, InProgress → Succeeded → ready', async () => {
  await boundClaim(env, 'offline-data');
  const vm = await env.client.create(vms, vmWithClaim('offline', 'offline-data'));
  const snap = await env.client.create(snapshots, snapshotManifest('offline-snap', 'offline'));
  const uid = snap.metadata.uid ?? '';
  const vsName = `vmsnapshot-${uid}-volume-data`;

  // While it runs, the VM is locked and the VolumeSnapshot exists, not cut yet.
  const inProgress = await snapshotWhere(env.client, 'offline-snap', (s) => stringAt(s, 'status', 'virtualMachineSnapshotContentName') !== undefined, 'content named');
  assert.equal(stringAt(inProgress, 'status', 'phase'), 'InProgress');
  assert.equal(recordAt(inProgress, 'status')?.readyToUse, false);
  assert.deepEqual(inProgress.metadata.finalizers, ['snapshot.kubevirt.io/vmsnapshot-protection']);
  assert.equal(condition(inProgress, 'Progressing')?.status, 'True');
  assert.equal(condition(inProgress, 'Progressing')?.reason, 'Source locked and operation in progress');
  assert.equal(recordAt(inProgress, 'status')?.indications, undefined, 'an offline snapshot has no indications');
  const locked = await env.client.get(vms, 'default', 'offline');
  assert.equal(stringAt(locked, 'status', 'snapshotInProgress'), 'offline-snap');
  assert.ok(locked.metadata.finalizers?.includes('snapshot.kubevirt.io/snapshot-source-protection'));

  const contentName = `vmsnapshot-content-${uid}`;
  const content = await env.client.get(contents, 'default', contentName);
  assert.equal(stringAt(content, 'spec', 'virtualMachineSnapshotName'), 'offline-snap');
  assert.deepEqual(content.metadata.finalizers, ['snapshot.kubevirt.io/vmsnapshotcontent-protection']);
  assert.equal(stringAt(content, 'spec', 'source', 'virtualMachine', 'metadata', 'uid'), vm.metadata.uid);
  assert.deepEqual(recordAt(content, 'spec', 'source', 'virtualMachine', 'spec', 'template'), recordAt(vm, 'spec', 'template'));
  const backups = recordsAt(content, 'spec', 'volumeBackups');
  assert.equal(backups.length, 1);
  assert.equal(backups[0]?.volumeName, 'data');
  assert.equal(backups[0]?.volumeSnapshotName, vsName);
  assert.equal(stringAt(backups[0], 'persistentVolumeClaim', 'metadata', 'name'), 'offline-data');
  assert.equal(stringAt(backups[0], 'persistentVolumeClaim', 'spec', 'storageClassName'), env.storageClass);

  const vs = await eventually(() => env.client.tryGet(resources.volumeSnapshots, 'default', vsName), { what: 'the VolumeSnapshot' });
  assert.equal(stringAt(vs, 'spec', 'source', 'persistentVolumeClaimName'), 'offline-data');
  assert.equal(stringAt(vs, 'spec', 'volumeSnapshotClassName'), 'local');
  assert.deepEqual(vs.metadata.labels, { 'snapshot.kubevirt.io/source-vm-name': 'offline', 'snapshot.kubevirt.io/source-vm-namespace': 'default' });
  assert.deepEqual(vs.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.controller]), [['VirtualMachineSnapshotContent', contentName, true]]);

  // Cut but not ready: Succeeded (KubeVirt's phase follows creation), not ready to use.
  await cut(env.client, vsName, false);
  const cutSnap = await snapshotWhere(env.client, 'offline-snap', (s) => stringAt(s, 'status', 'phase') === 'Succeeded', 'Succeeded');
  assert.equal(recordAt(cutSnap, 'status')?.readyToUse, false);
  assert.equal(condition(cutSnap, 'Ready')?.status, 'False');
  // Ready.
  await cut(env.client, vsName, true);
  const done = await snapshotWhere(env.client, 'offline-snap', (s) => recordAt(s, 'status')?.readyToUse === true, 'ready to use');
  assert.equal(stringAt(done, 'status', 'phase'), 'Succeeded');
  assert.equal(stringAt(done, 'status', 'sourceUID'), vm.metadata.uid);
  assert.equal(stringAt(done, 'status', 'virtualMachineSnapshotContentName'), contentName);
  assert.match(stringAt(done, 'status', 'creationTime') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual([condition(done, 'Progressing')?.status, condition(done, 'Progressing')?.reason], ['False', 'Operation complete']);
  assert.deepEqual([condition(done, 'Ready')?.status, condition(done, 'Ready')?.reason], ['True', 'Ready']);
  assert.deepEqual(recordAt(done, 'status', 'snapshotVolumes'), { includedVolumes: ['data'], excludedVolumes: ['root', 'cloudinit'] });
  const readyContent = await env.client.get(contents, 'default', contentName);
  assert.equal(recordAt(readyContent, 'status')?.readyToUse, true);
  assert.deepEqual(recordsAt(readyContent, 'status', 'volumeSnapshotStatus').map((s) => [s.volumeSnapshotName, s.readyToUse]), [[vsName, true]]);

  // The lock is released; KubeVirt's Events were recorded.
  await eventually(async () => stringAt(await env.client.get(vms, 'default', 'offline'), 'status', 'snapshotInProgress') === undefined, { what: 'the VM lock to go' });
  assert.ok(!(await env.client.get(vms, 'default', 'offline')).metadata.finalizers?.includes('snapshot.kubevirt.io/snapshot-source-protection'));
  await eventually(async () => (await reasons('offline-snap')).includes('SuccessfulVirtualMachineSnapshotContentCreate'), { what: 'the content Event' });
  await eventually(async () => (await reasons(contentName)).includes('SuccessfulVolumeSnapshotCreate'), { what: 'the VolumeSnapshot Event' });

  // The VM says which volumes can be snapshotted.
  const statuses = await eventually(async () => {
    const list = recordsAt(await env.client.get(vms, 'default', 'offline'), 'status', 'volumeSnapshotStatuses');
    return list.length === 3 ? list : undefined;
  }, { what: 'volumeSnapshotStatuses' });
  assert.deepEqual(statuses.map((s) => [s.name, s.enabled]), [['root', false], ['data', true], ['cloudinit', false]]);
  assert.equal(statuses[0]?.reason, 'Snapshot is not supported for this volumeSource type [root]');
});

test('a snapshot of a running VM without a guest agent says Online and NoGuestAgent', async () => {
  await boundClaim(env, 'online-data');
  await env.client.create(vms, vmWithClaim('online', 'online-data', 'Always'));
  await runningVmi('online');
  const snap = await env.client.create(snapshots, snapshotManifest('online-snap', 'online'));
  const inProgress = await snapshotWhere(env.client, 'online-snap', (s) => Array.isArray(recordAt(s, 'status')?.indications), 'indications');
  assert.deepEqual(recordAt(inProgress, 'status')?.indications, ['NoGuestAgent', 'Online']);
  assert.deepEqual(recordsAt(inProgress, 'status', 'sourceIndications').map((i) => i.indication), ['NoGuestAgent', 'Online']);
  assert.match(String(recordsAt(inProgress, 'status', 'sourceIndications')[0]?.message), /crash-consistent/);
  await cut(env.client, `vmsnapshot-${snap.metadata.uid ?? ''}-volume-data`, true);
  const done = await snapshotWhere(env.client, 'online-snap', (s) => recordAt(s, 'status')?.readyToUse === true, 'ready');
  assert.deepEqual(recordAt(done, 'status')?.indications, ['NoGuestAgent', 'Online'], 'the indications stay');
});

test('a snapshot that cannot lock its VM in time fails at its deadline and releases nothing it did not take', async () => {
  await env.client.create(pvcs, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'unbound', namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } });
  await env.client.create(vms, vmWithClaim('stuck', 'unbound'));
  await env.client.create(snapshots, snapshotManifest('stuck-snap', 'stuck', { failureDeadline: '2s' }));
  const waiting = await snapshotWhere(env.client, 'stuck-snap', (s) => stringAt(s, 'status', 'phase') === 'InProgress', 'InProgress');
  assert.equal(condition(waiting, 'Progressing')?.status, 'False');
  assert.match(condition(waiting, 'Progressing')?.reason as string, /Source not locked source default\/stuck volume not bound: unbound/);
  const failed = await snapshotWhere(env.client, 'stuck-snap', (s) => stringAt(s, 'status', 'phase') === 'Failed', 'Failed');
  assert.deepEqual([condition(failed, 'Failure')?.status, condition(failed, 'Failure')?.reason], ['True', 'snapshot deadline exceeded']);
  assert.deepEqual([condition(failed, 'Progressing')?.status, condition(failed, 'Progressing')?.reason], ['False', 'Operation failed']);
  assert.equal(stringAt(await env.client.get(vms, 'default', 'stuck'), 'status', 'snapshotInProgress'), undefined);
  await env.client.delete(snapshots, 'default', 'stuck-snap');
  await eventually(async () => (await read(env.client, snapshots, 'stuck-snap')) === undefined, { what: 'the failed snapshot to go' });
});

test('deletionPolicy: Delete takes the content and its VolumeSnapshots along, Retain keeps the content', async () => {
  await boundClaim(env, 'del-data');
  await env.client.create(vms, vmWithClaim('del', 'del-data'));
  const deleting = await readySnapshot(env, 'del-snap', 'del');
  const contentName = stringAt(deleting, 'status', 'virtualMachineSnapshotContentName') ?? '';
  await env.client.delete(snapshots, 'default', 'del-snap');
  await eventually(async () => (await read(env.client, snapshots, 'del-snap')) === undefined, { what: 'the snapshot to go' });
  await eventually(async () => (await read(env.client, contents, contentName)) === undefined, { what: 'its content to go' });
  await eventually(async () => (await env.client.tryGet(resources.volumeSnapshots, 'default', `vmsnapshot-${deleting.metadata.uid ?? ''}-volume-data`)) === undefined, { what: 'its VolumeSnapshot to go' });

  await env.client.create(snapshots, snapshotManifest('keep-snap', 'del', { deletionPolicy: 'Retain' }));
  const kept = await snapshotWhere(env.client, 'keep-snap', (s) => stringAt(s, 'status', 'virtualMachineSnapshotContentName') !== undefined, 'content');
  await cut(env.client, `vmsnapshot-${kept.metadata.uid ?? ''}-volume-data`, true);
  await snapshotWhere(env.client, 'keep-snap', (s) => recordAt(s, 'status')?.readyToUse === true, 'ready');
  await env.client.delete(snapshots, 'default', 'keep-snap');
  await eventually(async () => (await read(env.client, snapshots, 'keep-snap')) === undefined, { what: 'the snapshot to go' });
  const content = await eventually(async () => {
    const c = await read(env.client, contents, `vmsnapshot-content-${kept.metadata.uid ?? ''}`);
    return c !== undefined && (c.metadata.finalizers ?? []).length === 0 ? c : undefined;
  }, { what: 'the retained content without its finalizer' });
  assert.equal(recordAt(content, 'status')?.readyToUse, true);
});

async function restoreWhere(name: string, probe: (r: KObject) => boolean, what: string): Promise<KObject> {
  return eventually(async () => {
    const r = await read(env.client, restores, name);
    return r !== undefined && probe(r) ? r : undefined;
  }, { what: `restore ${name}: ${what}`, timeoutMs: 15_000 });
}

test('a restore into the stopped VM: claims from the VolumeSnapshots, the VM\'s volumes pointed at them, complete', async () => {
  await boundClaim(env, 'back-data');
  await env.client.create(vms, vmWithClaim('back', 'back-data'));
  const snap = await readySnapshot(env, 'back-snap', 'back');
  // The VM changes after the snapshot; the restore brings the old spec back.
  await env.client.patch(vms, 'default', 'back', 'merge', { spec: { template: { spec: { domain: { memory: { guest: '256Mi' } } } } } });
  const restore = await env.client.create(restores, restoreManifest('back-restore', 'back', 'back-snap'));
  const done = await restoreWhere('back-restore', (r) => recordAt(r, 'status')?.complete === true, 'complete');
  const claimName = `restore-${restore.metadata.uid ?? ''}-data`;
  assert.deepEqual(recordsAt(done, 'status', 'restores'), [{ volumeName: 'data', persistentVolumeClaim: claimName, volumeSnapshotName: `vmsnapshot-${snap.metadata.uid ?? ''}-volume-data` }]);
  assert.match(stringAt(done, 'status', 'restoreTime') ?? '', /Z$/);
  assert.deepEqual([condition(done, 'Ready')?.status, condition(done, 'Ready')?.reason], ['True', 'Operation complete']);
  assert.deepEqual([condition(done, 'Progressing')?.status, condition(done, 'Progressing')?.reason], ['False', 'Operation complete']);
  assert.ok(done.metadata.finalizers?.includes('snapshot.kubevirt.io/vmrestore-protection'));
  assert.deepEqual(done.metadata.ownerReferences?.map((r) => [r.kind, r.name]), [['VirtualMachine', 'back']]);

  const pvc = await env.client.get(pvcs, 'default', claimName);
  assert.deepEqual(recordAt(pvc, 'spec', 'dataSource'), { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name: `vmsnapshot-${snap.metadata.uid ?? ''}-volume-data` });
  assert.equal(stringAt(pvc, 'spec', 'storageClassName'), env.storageClass);
  assert.equal(stringAt(pvc, 'spec', 'resources', 'requests', 'storage'), '1Gi');
  assert.equal(pvc.metadata.labels?.['restore.kubevirt.io/source-vm-name'], 'back');
  assert.equal(pvc.metadata.labels?.disk, 'back-data', 'the backed-up claim\'s labels come along');
  assert.equal(pvc.metadata.annotations?.['restore.kubevirt.io/name'], 'back-restore');
  assert.deepEqual(pvc.metadata.ownerReferences?.map((r) => [r.kind, r.name]), [['VirtualMachine', 'back']]);

  const vm = await env.client.get(vms, 'default', 'back');
  const volume = recordsAt(vm, 'spec', 'template', 'spec', 'volumes').find((v) => v.name === 'data');
  assert.deepEqual(volume, { name: 'data', persistentVolumeClaim: { claimName } });
  assert.equal(stringAt(vm, 'spec', 'template', 'spec', 'domain', 'memory', 'guest'), '128Mi', 'the snapshot\'s spec is back');
  assert.equal(stringAt(vm, 'spec', 'runStrategy'), 'Halted', 'the run strategy stays');
  assert.equal(vm.metadata.annotations?.['restore.kubevirt.io/lastRestoreUID'], `back-restore-${restore.metadata.uid ?? ''}`);
  assert.equal(stringAt(vm, 'status', 'restoreInProgress'), undefined);
  await eventually(async () => (await reasons('back-restore')).includes('VirtualMachineRestoreComplete'), { what: 'the restore Event' });
});

test('a restore into a running VM waits (WaitGracePeriod), fails at once (FailImmediate), or stops it (StopTarget)', async () => {
  await boundClaim(env, 'busy-data');
  await env.client.create(vms, vmWithClaim('busy', 'busy-data'));
  await readySnapshot(env, 'busy-snap', 'busy');
  await env.client.patch(vms, 'default', 'busy', 'merge', { spec: { runStrategy: 'Always' } });
  await runningVmi('busy');

  await env.client.create(restores, restoreManifest('busy-wait', 'busy', 'busy-snap'));
  const waiting = await restoreWhere('busy-wait', (r) => (condition(r, 'Ready')?.reason as string | undefined)?.startsWith('Waiting for target VM') === true, 'waiting');
  assert.match(condition(waiting, 'Ready')?.reason as string, /or the operation will fail after 5m0s/);
  assert.equal(recordAt(waiting, 'status')?.complete, false);
  await eventually(async () => (await reasons('busy-wait')).includes('RestoreTargetNotReady'), { what: 'the RestoreTargetNotReady Event' });
  await env.client.delete(restores, 'default', 'busy-wait');

  await env.client.create(restores, restoreManifest('busy-fail', 'busy', 'busy-snap', { targetReadinessPolicy: 'FailImmediate' }));
  const failed = await restoreWhere('busy-fail', (r) => condition(r, 'Failure')?.status === 'True', 'failed');
  assert.equal(condition(failed, 'Failure')?.reason, 'Restore target VMI must be powered off before restore operation');

  await env.client.create(restores, restoreManifest('busy-stop', 'busy', 'busy-snap', { targetReadinessPolicy: 'StopTarget' }));
  await eventually(async () => stringAt(await env.client.get(vms, 'default', 'busy'), 'spec', 'runStrategy') === 'Halted', { what: 'the target to be stopped' });
  // The VM controller would now delete the VMI; the restore goes on once it is gone.
  await env.client.delete(resources.virtualMachineInstances, 'default', 'busy');
  await restoreWhere('busy-stop', (r) => recordAt(r, 'status')?.complete === true, 'complete');
});

test('a restore into another existing VM is refused with KubeVirt\'s reason; into a new VM it creates a halted one', async () => {
  await boundClaim(env, 'orig-data');
  await env.client.create(vms, vmWithClaim('orig', 'orig-data'));
  await readySnapshot(env, 'orig-snap', 'orig');
  await boundClaim(env, 'other-data');
  await env.client.create(vms, vmWithClaim('other', 'other-data'));
  await env.client.create(restores, restoreManifest('wrong-target', 'other', 'orig-snap'));
  const refused = await restoreWhere('wrong-target', (r) => condition(r, 'Ready')?.reason === 'restore source and restore target are different but restore target already exists', 'refused');
  assert.equal(recordAt(refused, 'status')?.complete, false);
  await eventually(async () => (await reasons('wrong-target')).includes('VirtualMachineRestoreError'), { what: 'the error Event' });

  await env.client.create(restores, restoreManifest('to-new', 'brand-new', 'orig-snap', { patches: ['{"op": "replace", "path": "/spec/template/spec/domain/memory/guest", "value": "192Mi"}'] }));
  await restoreWhere('to-new', (r) => recordAt(r, 'status')?.complete === true, 'complete');
  const vm = await env.client.get(vms, 'default', 'brand-new');
  assert.equal(stringAt(vm, 'spec', 'runStrategy'), 'Halted');
  assert.equal(stringAt(vm, 'spec', 'template', 'spec', 'domain', 'memory', 'guest'), '192Mi', 'the patches apply to a new VM');
  assert.equal(vm.metadata.labels?.team, 'a');
});

async function refused(ref: typeof snapshots, obj: KObject): Promise<string> {
  const res = await env.server.fetch('POST', `/apis/${ref.group}/${ref.version}/namespaces/default/${ref.plural}`, { body: JSON.stringify(obj), headers: { 'content-type': 'application/json' } });
  assert.equal(res.status, 422, res.body);
  return res.body;
}

test('admission refuses bad snapshots and restores with KubeVirt\'s causes', async () => {
  const noGroup = snapshotManifest('bad-1', 'x');
  delete (noGroup.spec as { source: Record<string, unknown> }).source.apiGroup;
  assert.match(await refused(snapshots, noGroup), /missing apiGroup/);
  assert.match(await refused(snapshots, snapshotManifest('bad-2', 'x', { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachineInstance', name: 'x' } })), /invalid kind/);
  assert.match(await refused(snapshots, snapshotManifest('bad-3', 'x', { source: { apiGroup: 'cdi.kubevirt.io', kind: 'DataVolume', name: 'x' } })), /invalid apiGroup/);
  assert.match(await refused(snapshots, snapshotManifest('bad-4', 'x', { failureDeadline: 'soon' })), /not a duration/);
  await env.client.create(snapshots, snapshotManifest('fixed', 'nothing'));
  const change = await env.server.fetch('PATCH', '/apis/snapshot.kubevirt.io/v1beta1/namespaces/default/virtualmachinesnapshots/fixed', { body: JSON.stringify({ spec: { source: { name: 'other' } } }), headers: { 'content-type': 'application/merge-patch+json' } });
  assert.equal(change.status, 422);
  assert.match(change.body, /spec in immutable after creation/);

  assert.match(await refused(restores, restoreManifest('r-1', 'x', 's', { target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachinePool', name: 'x' } })), /invalid kind/);
  assert.match(await refused(restores, restoreManifest('r-2', 'x', 's', { volumeRestorePolicy: 'InPlace' })), /InPlace.*not supported by Vireo/);
  assert.match(await refused(restores, restoreManifest('r-3', 'x', 's', { targetReadinessPolicy: 'Hurry' })), /doesn't exist/);
  assert.match(await refused(restores, restoreManifest('r-4', 'x', 's', { patches: ['{"op": "replace", "path": "/metadata/name", "value": "y"}'] })), /valid only for elements under \/spec\//);
  assert.match(await refused(restores, restoreManifest('r-5', 'x', 's', { volumeRestoreOverrides: [{ volumeName: 'data' }] })), /at least one overriden field/);
});
