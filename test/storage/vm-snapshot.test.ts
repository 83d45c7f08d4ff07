/**
 * KubeVirt's snapshot layer end to end: the real API server with its
 * controllers, scheduler and node agent (TCG), the real `vireo` CLI, and
 * a guest writing to a qcow2 claim on the default `local` class. A
 * VirtualMachineSnapshot of the running VM (its guest agent answers:
 * Online, GuestAgent) cuts one CSI VolumeSnapshot; a VirtualMachineRestore of
 * the stopped VM brings back what the guest had written when it was taken;
 * a VirtualMachineClone of the running VM makes a new VM with its own
 * SMBIOS serial that boots with the data of the moment of the clone.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { arrayAt, booleanAt, recordAt, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import type { ResourceRef } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, History, phaseOf, skipWithoutQemu, startVmEnv, vmis, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { vireo } from '../subresources/support.js';
import { claim, pvcVm } from './support.js';

const pvcs = resources.persistentVolumeClaims;
const vmSnapshots = resources.virtualMachineSnapshots;
const vmRestores = resources.virtualMachineRestores;
const vmClones = resources.virtualMachineClones;
const bootMs = 120_000;

/**
 * At every boot: prints what the data disk (/dev/vdb) starts with and the
 * SMBIOS serial. An empty disk gets `one`, and `two` once the disk grows
 * (the test's signal, sent by growing the claim online); a disk that
 * starts with `one` (a restore) gets `three` once it grows.
 */
const userData = [
  '#!/bin/sh',
  'd=$(head -c 16 /dev/vdb | tr -d "\\000 ")',
  'echo "data-found: [$d]"',
  'echo "serial: [$(cat /sys/class/dmi/id/product_serial 2>/dev/null)]"',
  'case "$d" in',
  '  "") printf "vireo-data:one  " > /dev/vdb; sync; echo "data: wrote one"; next=two ;;',
  '  vireo-data:one) next=three ;;',
  '  *) next="" ;;',
  'esac',
  'if [ -n "$next" ]; then',
  '  s=$(cat /sys/block/vdb/size)',
  '  while [ "$(cat /sys/block/vdb/size)" = "$s" ]; do sleep 1; done',
  '  printf "vireo-data:%s  " "$next" > /dev/vdb; sync; echo "data: wrote $next"',
  'fi',
  '',
].join('\n');

/** The VM under test: the test guest, claim `data` as /dev/vdb, a firmware serial of its own. */
function sourceVm(): KObject {
  const vm = pvcVm('source', { claimName: 'data', userData, graceSeconds: 0 });
  const domain = recordAt(vm, 'spec', 'template', 'spec', 'domain');
  if (domain === undefined) throw new Error('pvcVm made no domain');
  domain.firmware = { serial: 'source-serial' };
  return vm;
}

async function ofKind(env: VmEnv, ref: ResourceRef, name: string, what: string, done: (obj: KObject) => boolean, timeoutMs = 60_000): Promise<KObject> {
  return eventually(async () => {
    const obj = await env.client.tryGet(ref, 'default', name);
    if (obj !== undefined && done(obj)) return obj;
    // The last status goes into the timeout's message.
    throw new Error(`status ${JSON.stringify(obj?.status ?? null)}`);
  }, { what, timeoutMs, intervalMs: 100 });
}

/** The VMI of VM `name` once it runs, a new one when `notUid` names the previous. */
async function runningVmi(env: VmEnv, name: string, notUid?: string): Promise<KObject> {
  return ofKind(env, vmis, name, `VMI ${name} to run`, (vmi) => vmi.metadata.uid !== notUid && phaseOf(vmi) === 'Running', bootMs);
}

async function console(t: TestContext, env: VmEnv, name: string): Promise<ConsoleCapture> {
  const capture = await ConsoleCapture.open(env, name);
  t.after(() => { capture.close(); });
  return capture;
}

async function consoleSays(capture: ConsoleCapture, text: string, what: string): Promise<void> {
  await eventually(() => capture.text().includes(text), { what: `${what} (console says "${text}")`, timeoutMs: bootMs, intervalMs: 200 });
}

function conditionOf(obj: KObject, type: string): { status?: unknown; reason?: unknown } | undefined {
  return recordsAt(obj, 'status', 'conditions').find((c) => c.type === type);
}

function dataClaimOf(vm: KObject): string | undefined {
  const volume = recordsAt(vm, 'spec', 'template', 'spec', 'volumes').find((v) => v.name === 'data');
  return stringAt(volume, 'persistentVolumeClaim', 'claimName');
}

/** Grows a claim by 16Mi: the guest's signal to write its next word. */
async function grow(env: VmEnv, name: string, from: number): Promise<void> {
  await env.client.patch(pvcs, 'default', name, 'merge', { spec: { resources: { requests: { storage: `${from + 16}Mi` } } } });
}

test('a VM snapshot of a running guest, restored into the stopped VM and cloned into a new VM, with real guests', { skip: skipWithoutQemu, timeout: 300_000 }, async (t) => {
  const env = await startVmEnv(t);
  await importTestGuest(env.images);
  const kubeconfig = env.server.kubeconfig;
  const snapshotHistory = await History.start(t, env.client, vmSnapshots, 'snap');
  const restoreHistory = await History.start(t, env.client, vmRestores, 'back-to-one');
  const cloneHistory = await History.start(t, env.client, vmClones, 'copy-of-source');

  // The guest writes `one` to its qcow2 claim on the default class.
  await env.client.create(pvcs, claim('data', '64Mi'));
  await env.client.create(vms, sourceVm());
  const first = await runningVmi(env, 'source');
  const firstConsole = await console(t, env, 'source');
  await consoleSays(firstConsole, 'data: wrote one', 'the guest to write one');
  assert.ok(firstConsole.text().includes('serial: [source-serial]'), `the guest sees its SMBIOS serial:\n${firstConsole.text()}`);
  const source = await ofKind(env, vms, 'source', 'the VM to say its data volume can be snapshotted', (vm) => recordsAt(vm, 'status', 'volumeSnapshotStatuses').some((s) => s.name === 'data' && s.enabled === true));
  assert.deepEqual(recordsAt(source, 'status', 'volumeSnapshotStatuses').filter((s) => s.enabled === true).map((s) => s.name), ['data'], 'only the claim can be snapshotted');

  // A snapshot of the running VM, once its guest agent answers: one CSI VolumeSnapshot of the claim.
  await ofKind(env, vmis, 'source', 'the guest agent to connect', (vmi) => conditionOf(vmi, 'AgentConnected')?.status === 'True');
  await env.client.create(vmSnapshots, { apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name: 'snap', namespace: 'default' }, spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'source' } } });
  const snap = await ofKind(env, vmSnapshots, 'snap', 'the VM snapshot to be ready', (s) => booleanAt(s, 'status', 'readyToUse') === true);
  assert.equal(stringAt(snap, 'status', 'phase'), 'Succeeded');
  assert.equal(stringAt(snap, 'status', 'sourceUID'), source.metadata.uid);
  assert.match(stringAt(snap, 'status', 'creationTime') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const indications = arrayAt(snap, 'status', 'indications');
  assert.deepEqual(indications, ['GuestAgent', 'Online']);
  assert.deepEqual(recordAt(snap, 'status', 'snapshotVolumes'), { includedVolumes: ['data'], excludedVolumes: ['root', 'cloudinit'] });
  assert.equal(conditionOf(snap, 'Ready')?.status, 'True');
  assert.equal(conditionOf(snap, 'Progressing')?.status, 'False');
  assert.equal(phaseOf(await env.client.get(vmis, 'default', 'source')), 'Running', 'the guest kept running');
  const contentName = stringAt(snap, 'status', 'virtualMachineSnapshotContentName') ?? '';
  const content = await env.client.get(resources.virtualMachineSnapshotContents, 'default', contentName);
  assert.equal(booleanAt(content, 'status', 'readyToUse'), true);
  const volumeSnapshotName = stringAt(recordsAt(content, 'spec', 'volumeBackups')[0], 'volumeSnapshotName') ?? '';
  assert.equal(volumeSnapshotName, `vmsnapshot-${snap.metadata.uid ?? ''}-volume-data`);
  const volumeSnapshot = await env.client.get(resources.volumeSnapshots, 'default', volumeSnapshotName);
  assert.equal(booleanAt(volumeSnapshot, 'status', 'readyToUse'), true);
  assert.equal(stringAt(volumeSnapshot, 'spec', 'source', 'persistentVolumeClaimName'), 'data');
  assert.equal(volumeSnapshot.metadata.labels?.['snapshot.kubevirt.io/source-vm-name'], 'source');
  // The lock on the VM is released.
  const unlocked = await ofKind(env, vms, 'source', 'the VM to be unlocked', (vm) => stringAt(vm, 'status', 'snapshotInProgress') === undefined);
  assert.ok(!(unlocked.metadata.finalizers ?? []).includes('snapshot.kubevirt.io/snapshot-source-protection'));
  const snapshotPhases = snapshotHistory.transitions((s) => stringAt(s, 'status', 'phase'));
  assert.deepEqual(snapshotPhases, ['InProgress', 'Succeeded']);

  // The guest writes `two`; the VM is stopped and restored to the snapshot: it reads `one` again.
  await grow(env, 'data', 64);
  await consoleSays(firstConsole, 'data: wrote two', 'the guest to write two');
  const stop = await vireo(['stop', 'source'], { kubeconfig });
  assert.equal(stop.code, 0, stop.stderr);
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'source')) === undefined, { what: 'the VMI to go', timeoutMs: 60_000, intervalMs: 100 });
  await env.client.create(vmRestores, { apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineRestore', metadata: { name: 'back-to-one', namespace: 'default' }, spec: { target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'source' }, virtualMachineSnapshotName: 'snap' } });
  const restore = await ofKind(env, vmRestores, 'back-to-one', 'the restore to complete', (r) => booleanAt(r, 'status', 'complete') === true);
  assert.equal(conditionOf(restore, 'Ready')?.status, 'True');
  assert.equal(conditionOf(restore, 'Progressing')?.status, 'False');
  assert.match(stringAt(restore, 'status', 'restoreTime') ?? '', /^\d{4}-/);
  const restoredClaim = `restore-${restore.metadata.uid ?? ''}-data`;
  assert.deepEqual(recordsAt(restore, 'status', 'restores'), [{ volumeName: 'data', persistentVolumeClaim: restoredClaim, volumeSnapshotName }]);
  assert.deepEqual(restoreHistory.transitions((r) => recordAt(r, 'status') === undefined ? undefined : String(booleanAt(r, 'status', 'complete'))), ['false', 'true']);
  const restoredVm = await ofKind(env, vms, 'source', 'the VM to be released by the restore', (vm) => stringAt(vm, 'status', 'restoreInProgress') === undefined);
  assert.equal(dataClaimOf(restoredVm), restoredClaim, 'the VM\'s data volume is the restored claim');
  assert.equal(restoredVm.metadata.annotations?.['restore.kubevirt.io/lastRestoreUID'], `back-to-one-${restore.metadata.uid ?? ''}`);
  assert.equal(stringAt(restoredVm, 'spec', 'runStrategy'), 'Halted', 'the restore keeps the VM stopped');
  const restored = await env.client.get(pvcs, 'default', restoredClaim);
  assert.equal(stringAt(restored, 'spec', 'dataSource', 'name'), volumeSnapshotName);
  assert.equal(stringAt(restored, 'spec', 'resources', 'requests', 'storage'), '64Mi', 'the claim as it was when the snapshot was taken');
  const start = await vireo(['start', 'source'], { kubeconfig });
  assert.equal(start.code, 0, start.stderr);
  await runningVmi(env, 'source', first.metadata.uid);
  const restoredConsole = await console(t, env, 'source');
  await consoleSays(restoredConsole, 'data-found: [vireo-data:one]', 'the restored guest to read one');

  // The restored guest writes `three`; a clone of the running VM takes it, with a serial of its own.
  await grow(env, restoredClaim, 64);
  await consoleSays(restoredConsole, 'data: wrote three', 'the restored guest to write three');
  await env.client.create(vmClones, {
    apiVersion: 'clone.kubevirt.io/v1beta1',
    kind: 'VirtualMachineClone',
    metadata: { name: 'copy-of-source', namespace: 'default' },
    spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'source' }, target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'copy' }, newSMBiosSerial: 'copy-serial' },
  });
  const clone = await ofKind(env, vmClones, 'copy-of-source', 'the clone to succeed', (c) => stringAt(c, 'status', 'phase') === 'Succeeded' || stringAt(c, 'status', 'phase') === 'Failed');
  assert.equal(stringAt(clone, 'status', 'phase'), 'Succeeded', JSON.stringify(clone.status));
  assert.equal(stringAt(clone, 'status', 'targetName'), 'copy');
  assert.equal(conditionOf(clone, 'Ready')?.status, 'True');
  const clonePhases = cloneHistory.transitions((c) => stringAt(c, 'status', 'phase'));
  assert.equal(clonePhases[0], 'SnapshotInProgress', clonePhases.join(' → '));
  assert.ok(clonePhases.includes('RestoreInProgress'), clonePhases.join(' → '));
  assert.equal(clonePhases[clonePhases.length - 1], 'Succeeded', clonePhases.join(' → '));
  assert.equal(phaseOf(await env.client.get(vmis, 'default', 'source')), 'Running', 'the source kept running through the clone');

  const copy = await env.client.get(vms, 'default', 'copy');
  assert.equal(stringAt(copy, 'spec', 'template', 'spec', 'domain', 'firmware', 'serial'), 'copy-serial');
  assert.equal(stringAt(await env.client.get(vms, 'default', 'source'), 'spec', 'template', 'spec', 'domain', 'firmware', 'serial'), 'source-serial', 'the source keeps its own');
  assert.equal(stringAt(copy, 'spec', 'runStrategy'), 'Halted', 'a new VM from a restore starts halted');
  const copyClaim = dataClaimOf(copy) ?? '';
  assert.ok(copyClaim !== restoredClaim && copyClaim !== 'data', `the copy has a claim of its own: ${copyClaim}`);
  assert.equal(stringAt(await env.client.get(pvcs, 'default', copyClaim), 'spec', 'dataSource', 'kind'), 'VolumeSnapshot');
  const start2 = await vireo(['start', 'copy'], { kubeconfig });
  assert.equal(start2.code, 0, start2.stderr);
  const copyVmi = await runningVmi(env, 'copy');
  assert.notEqual(stringAt(copyVmi, 'spec', 'domain', 'firmware', 'uuid'), stringAt(await env.client.get(vmis, 'default', 'source'), 'spec', 'domain', 'firmware', 'uuid'), 'a firmware UUID of its own');
  const copyConsole = await console(t, env, 'copy');
  await consoleSays(copyConsole, 'data-found: [vireo-data:three]', 'the copy to read the data of the moment of the clone');
  // Printed right after the data line: it may arrive a moment later.
  await consoleSays(copyConsole, 'serial: [copy-serial]', 'the copy to see its own serial');

  // Once the copy's claim is bound, the clone's temporary snapshot and restore go.
  const done = await ofKind(env, vmClones, 'copy-of-source', 'the clone to drop its temporary snapshot and restore', (c) => stringAt(c, 'status', 'snapshotName') === undefined && stringAt(c, 'status', 'restoreName') === undefined);
  assert.equal(stringAt(done, 'status', 'phase'), 'Succeeded');
  await eventually(async () => (await env.client.list(vmSnapshots, { namespace: 'default' })).items.map((s) => s.metadata.name).join(',') === 'snap', { what: 'only the user\'s snapshot to be left', timeoutMs: 30_000, intervalMs: 100 });
  assert.deepEqual((await env.client.list(vmRestores, { namespace: 'default' })).items.map((r) => r.metadata.name), ['back-to-one']);
  const afterClone = await env.client.get(vms, 'default', 'source');
  assert.equal(stringAt(afterClone, 'status', 'snapshotInProgress'), undefined, 'the clone\'s snapshot released the source');
  assert.ok(!(afterClone.metadata.finalizers ?? []).includes('snapshot.kubevirt.io/snapshot-source-protection'));
  const copyPvc = await env.client.get(pvcs, 'default', copyClaim);
  assert.deepEqual(copyPvc.metadata.ownerReferences?.map((r) => `${r.kind}/${r.name}`), ['VirtualMachine/copy'], 'the copy owns its claim');

  // The snapshot goes with its content and CSI VolumeSnapshot; the restored guest runs on. The copy goes with its clone.
  await env.client.delete(vmSnapshots, 'default', 'snap');
  await eventually(async () => (await env.client.tryGet(vmSnapshots, 'default', 'snap')) === undefined
    && (await env.client.tryGet(resources.virtualMachineSnapshotContents, 'default', contentName)) === undefined
    && (await env.client.tryGet(resources.volumeSnapshots, 'default', volumeSnapshotName)) === undefined, { what: 'the snapshot, its content and its VolumeSnapshot to go', timeoutMs: 30_000, intervalMs: 100 });
  await env.client.delete(vms, 'default', 'copy');
  await eventually(async () => (await env.client.tryGet(vmClones, 'default', 'copy-of-source')) === undefined, { what: 'the clone to go with its VM', timeoutMs: 60_000, intervalMs: 100 });
  await eventually(async () => (await env.client.tryGet(pvcs, 'default', copyClaim)) === undefined, { what: 'the copy\'s claim to go with it', timeoutMs: 60_000, intervalMs: 100 });
  assert.equal(phaseOf(await env.client.get(vmis, 'default', 'source')), 'Running');
  for (const history of [snapshotHistory, restoreHistory, cloneHistory]) history.assertComplete();
});
