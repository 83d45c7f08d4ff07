/**
 * Snapshots and clones of local volumes end to end, through the CSI
 * snapshot API and claims' data sources: the real API server with its
 * controllers, scheduler and node agent (TCG). A running guest's qcow2
 * volume is snapshotted live (the guest keeps running and writing), a
 * claim restored from the snapshot and a claim cloned from the volume
 * boot with their own data, and both outlive the original and the
 * snapshot (hard-linked layers). A stopped VM's volume, and one no VM
 * ever used, are snapshotted offline. A clone of a 10 GiB volume copies no data. Snapshots and
 * restores that cannot be served say why.
 */
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { booleanAt, numberAt, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import type { ResourceRef } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, openVmEnv, phaseOf, skipWithoutQemu, vmis, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { claim, pvcVm } from './support.js';

const pvcs = resources.persistentVolumeClaims;
const pvs = resources.persistentVolumes;
const snapshots: ResourceRef = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots', namespaced: true };
const contents: ResourceRef = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents', namespaced: false };
const snapshotClasses: ResourceRef = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotclasses', namespaced: false };
const bootMs = 120_000;
const mi = 2 ** 20;
const gi = 2 ** 30;

/**
 * At every boot: prints what the data disk (/dev/vdb) starts with. On an
 * empty disk it writes `one`, then waits for the disk to grow (the test's
 * signal, sent by growing the claim online) and writes `two`.
 */
const userData = [
  '#!/bin/sh',
  'd=$(head -c 16 /dev/vdb | tr -d "\\000 ")',
  'echo "data-found: [$d]"',
  'if [ -z "$d" ]; then',
  '  printf "vireo-data:one  " > /dev/vdb; sync; echo "data: wrote one"',
  '  s=$(cat /sys/block/vdb/size)',
  '  while [ "$(cat /sys/block/vdb/size)" = "$s" ]; do sleep 1; done',
  '  printf "vireo-data:two  " > /dev/vdb; sync; echo "data: wrote two"',
  'fi',
  '',
].join('\n');

function fromSnapshot(name: string): Record<string, unknown> {
  return { dataSource: { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot', name } };
}

function fromClaim(name: string): Record<string, unknown> {
  return { dataSource: { kind: 'PersistentVolumeClaim', name } };
}

function snapshot(name: string, source: Record<string, unknown>): KObject {
  return { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name, namespace: 'default' }, spec: { source } };
}

async function eventsOf(env: VmEnv, kind: string, name: string): Promise<{ reason: string; message: string }[]> {
  const list = await env.client.list(resources.events, { namespace: 'default' });
  return list.items
    .filter((e) => stringAt(e, 'involvedObject', 'kind') === kind && stringAt(e, 'involvedObject', 'name') === name)
    .map((e) => ({ reason: stringAt(e, 'reason') ?? '', message: stringAt(e, 'message') ?? '' }));
}

async function waitEvent(env: VmEnv, which: { kind: string; name: string; reason: string; match: RegExp }): Promise<void> {
  await eventually(async () => (await eventsOf(env, which.kind, which.name)).find((e) => e.reason === which.reason && which.match.test(e.message)), {
    what: `a ${which.reason} event on ${which.kind} ${which.name} matching ${String(which.match)}`,
    timeoutMs: 30_000,
    intervalMs: 100,
  });
}

async function readySnapshot(env: VmEnv, name: string): Promise<KObject> {
  return eventually(async () => {
    const vs = await env.client.get(snapshots, 'default', name);
    return booleanAt(vs, 'status', 'readyToUse') === true ? vs : undefined;
  }, { what: `VolumeSnapshot ${name} to be ready`, timeoutMs: 30_000, intervalMs: 100 });
}

async function boundClaim(env: VmEnv, name: string, timeoutMs = 30_000): Promise<KObject> {
  return eventually(async () => {
    const pvc = await env.client.get(pvcs, 'default', name);
    return stringAt(pvc, 'status', 'phase') === 'Bound' ? pvc : undefined;
  }, { what: `claim ${name} to bind`, timeoutMs, intervalMs: 100 });
}

async function runningVmi(env: VmEnv, name: string): Promise<KObject> {
  return eventually(async () => {
    const vmi = await env.client.tryGet(vmis, 'default', name);
    if (phaseOf(vmi) === 'Running') return vmi;
    // The last state goes into the timeout's message.
    if (vmi === undefined) {
      const vm = await env.client.tryGet(vms, 'default', name);
      throw new Error(`no VMI; the VM says ${JSON.stringify(vm?.status ?? null)}`);
    }
    throw new Error(`phase ${phaseOf(vmi) ?? 'none'}, conditions ${JSON.stringify(recordsAt(vmi, 'status', 'conditions').map((c) => `${String(c.type)}=${String(c.status)}: ${stringAt(c, 'message') ?? ''}`))}`);
  }, { what: `VMI ${name} to run`, timeoutMs: bootMs, intervalMs: 100 });
}

async function console(t: TestContext, env: VmEnv, name: string): Promise<ConsoleCapture> {
  const capture = await ConsoleCapture.open(env, name);
  t.after(() => { capture.close(); });
  return capture;
}

async function consoleSays(capture: ConsoleCapture, text: string, what: string): Promise<void> {
  await eventually(() => capture.text().includes(text), { what, timeoutMs: bootMs, intervalMs: 200 });
}

function volumeDirOf(pvc: KObject): string {
  return join(env.agentDir, 'volumes', `pvc-${pvc.metadata.uid ?? ''}`);
}

/** The first 16 bytes of the qcow2 chain at `file`, read as the guest would (even while a QEMU has it open). */
function dataOf(file: string): string {
  const dump = execFileSync('qemu-io', ['-U', '-r', '-f', 'qcow2', '-c', 'read -v 0 16', file], { encoding: 'utf8' });
  const hex = /^00000000: ((?: [0-9a-f]{2}){16})/m.exec(dump)?.[1] ?? '';
  return Buffer.from(hex.replaceAll(' ', ''), 'hex').toString('latin1').replace(/[\0 ]+$/, '');
}

/** `qemu-img info --backing-chain` of `file`: file name and backing file name of each image, top first. */
function chainOf(file: string): { filename: string; 'backing-filename'?: string }[] {
  return JSON.parse(execFileSync('qemu-img', ['info', '-U', '--backing-chain', '--output=json', file], { encoding: 'utf8' })) as { filename: string; 'backing-filename'?: string }[];
}

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-snapshot-test');
  await importTestGuest(env.images);
  await env.client.create(resources.storageClasses, { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'qcow2-now' }, provisioner: 'vireo.io/local', volumeBindingMode: 'Immediate', reclaimPolicy: 'Delete', parameters: { format: 'qcow2' } });
});

after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
});

test('the snapshot API is served and a default VolumeSnapshotClass is seeded', { skip: skipWithoutQemu }, async () => {
  const cls = await env.client.get(snapshotClasses, undefined, 'local');
  assert.equal(stringAt(cls, 'driver'), 'vireo.io/local');
  assert.equal(stringAt(cls, 'deletionPolicy'), 'Delete');
  assert.equal(cls.metadata.annotations?.['snapshot.storage.kubernetes.io/is-default-class'], 'true');
  const sc = await env.client.get(resources.storageClasses, undefined, 'local');
  assert.equal(stringAt(sc, 'parameters', 'format'), 'qcow2', 'the default class makes qcow2 volumes, which snapshot instantly');
  // A snapshot naming no source is refused by the schema, not by a 5xx.
  const bad = await env.server.fetch('POST', '/apis/snapshot.storage.k8s.io/v1/namespaces/default/volumesnapshots', { body: JSON.stringify(snapshot('nosource', {})), headers: { 'content-type': 'application/json' } });
  assert.equal(bad.status, 422, bad.body);
});

test('a running VM\'s volume: snapshot online, restore and clone boot with their own data and outlive the original', { skip: skipWithoutQemu, timeout: 300_000 }, async (t) => {
  await env.client.create(pvcs, claim('origin', '64Mi'));
  await env.client.create(vms, pvcVm('writer', { claimName: 'origin', userData, graceSeconds: 0 }));
  await runningVmi(env, 'writer');
  const writer = await console(t, env, 'writer');
  await consoleSays(writer, 'data: wrote one', 'the writer to write one');
  const origin = await boundClaim(env, 'origin');
  const originDir = volumeDirOf(origin);

  // Online: the guest runs on while its top is frozen; the snapshot says where it is and how big.
  await env.client.create(snapshots, snapshot('snap-one', { persistentVolumeClaimName: 'origin' }));
  const vs = await readySnapshot(env, 'snap-one');
  assert.equal(stringAt(vs, 'spec', 'volumeSnapshotClassName'), 'local', 'the default class is filled in');
  assert.equal(stringAt(vs, 'status', 'restoreSize'), '64Mi');
  assert.match(stringAt(vs, 'status', 'creationTime') ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const contentName = stringAt(vs, 'status', 'boundVolumeSnapshotContentName') ?? '';
  assert.equal(contentName, `snapcontent-${vs.metadata.uid ?? ''}`);
  const content = await env.client.get(contents, undefined, contentName);
  assert.equal(stringAt(content, 'spec', 'source', 'volumeHandle'), `pvc-${origin.metadata.uid ?? ''}`);
  assert.equal(stringAt(content, 'spec', 'driver'), 'vireo.io/local');
  assert.equal(numberAt(content, 'status', 'restoreSize'), 64 * mi);
  assert.ok((numberAt(content, 'status', 'creationTime') ?? 0) > 1.6e18, 'creationTime is in nanoseconds');
  assert.match(stringAt(content, 'status', 'snapshotHandle') ?? '', new RegExp(`/${contentName}$`));
  assert.equal(phaseOf(await env.client.get(vmis, 'default', 'writer')), 'Running', 'the guest kept running');
  const layer = `layer-${contentName}.qcow2`;
  assert.deepEqual(chainOf(join(originDir, 'disk.img')).map((i) => i['backing-filename']), [layer, undefined], 'the volume is a new top over the frozen layer, named relatively');
  const snapshotDir = join(env.agentDir, 'snapshots', contentName);
  assert.equal(statSync(join(snapshotDir, layer)).ino, statSync(join(originDir, layer)).ino, 'the snapshot hard-links the layer');

  // The guest writes again, to the new top; the snapshot keeps `one`.
  await env.client.patch(pvcs, 'default', 'origin', 'merge', { spec: { resources: { requests: { storage: '80Mi' } } } });
  await consoleSays(writer, 'data: wrote two', 'the writer to write two');
  assert.equal(dataOf(join(snapshotDir, layer)), 'vireo-data:one');

  // Restore the snapshot, clone the running volume (another live freeze); each in a VM of its own.
  await env.client.create(pvcs, claim('restored', '64Mi', fromSnapshot('snap-one')));
  await env.client.create(pvcs, claim('cloned', '80Mi', fromClaim('origin')));
  await env.client.create(vms, pvcVm('reader-restored', { claimName: 'restored', userData, graceSeconds: 0 }));
  await env.client.create(vms, pvcVm('reader-cloned', { claimName: 'cloned', userData, graceSeconds: 0 }));
  await runningVmi(env, 'reader-restored');
  await runningVmi(env, 'reader-cloned');
  const restoredConsole = await console(t, env, 'reader-restored');
  const clonedConsole = await console(t, env, 'reader-cloned');
  await consoleSays(restoredConsole, 'data-found: [vireo-data:one]', 'the restored volume to hold one');
  await consoleSays(clonedConsole, 'data-found: [vireo-data:two]', 'the cloned volume to hold two');
  const restored = await env.client.get(pvcs, 'default', 'restored');
  const cloned = await env.client.get(pvcs, 'default', 'cloned');
  assert.equal(stringAt(restored, 'spec', 'dataSourceRef', 'kind'), 'VolumeSnapshot', 'dataSourceRef mirrors dataSource');
  for (const pvc of [restored, cloned]) {
    const pv = await env.client.get(pvs, undefined, stringAt(pvc, 'spec', 'volumeName') ?? '');
    assert.equal(pv.metadata.annotations?.['storage.vireo.io/format'], 'qcow2');
  }
  assert.equal(phaseOf(await env.client.get(vmis, 'default', 'writer')), 'Running', 'the writer kept running through the clone');

  // The original and the snapshot go; the restored and cloned volumes keep their layers (hard links).
  await env.client.delete(vms, 'default', 'writer');
  await env.client.delete(pvcs, 'default', 'origin');
  await env.client.delete(snapshots, 'default', 'snap-one');
  await eventually(async () => (await env.client.tryGet(contents, undefined, contentName)) === undefined, { what: 'the content to go with its snapshot', timeoutMs: 30_000 });
  await eventually(async () => (await env.client.tryGet(pvs, undefined, `pvc-${origin.metadata.uid ?? ''}`)) === undefined, { what: 'the original volume to go', timeoutMs: 90_000, intervalMs: 200 });
  assert.throws(() => statSync(snapshotDir), 'the snapshot directory is gone');
  assert.throws(() => statSync(originDir), 'the original directory is gone');
  assert.equal(dataOf(join(volumeDirOf(restored), 'disk.img')), 'vireo-data:one');
  assert.equal(dataOf(join(volumeDirOf(cloned), 'disk.img')), 'vireo-data:two');
  for (const name of ['reader-restored', 'reader-cloned']) assert.equal(phaseOf(await env.client.get(vmis, 'default', name)), 'Running');

  // A stopped VM's volume is snapshotted offline: a new layer, frozen with the data the guest left.
  await env.client.patch(vms, 'default', 'reader-cloned', 'merge', { spec: { runStrategy: 'Halted' } });
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'reader-cloned')) === undefined, { what: 'the cloned reader to stop', timeoutMs: 60_000, intervalMs: 100 });
  await env.client.create(snapshots, snapshot('snap-stopped', { persistentVolumeClaimName: 'cloned' }));
  const stopped = await readySnapshot(env, 'snap-stopped');
  const stoppedLayer = `layer-snapcontent-${stopped.metadata.uid ?? ''}.qcow2`;
  assert.equal(chainOf(join(volumeDirOf(cloned), 'disk.img'))[0]?.['backing-filename'], stoppedLayer);
  assert.equal(dataOf(join(env.agentDir, 'snapshots', `snapcontent-${stopped.metadata.uid ?? ''}`, stoppedLayer)), 'vireo-data:two');
  await env.client.delete(snapshots, 'default', 'snap-stopped');
  for (const name of ['reader-restored', 'reader-cloned']) await env.client.delete(vms, 'default', name);
  for (const name of ['restored', 'cloned']) await env.client.delete(pvcs, 'default', name);
});

test('a volume no VM uses is snapshotted offline, and a clone of a 10 GiB volume copies no data', { skip: skipWithoutQemu, timeout: 120_000 }, async () => {
  // A volume nobody runs, with data written from the host.
  await env.client.create(pvcs, claim('big', '10Gi', { storageClassName: 'qcow2-now' }));
  const big = await boundClaim(env, 'big');
  const bigDir = volumeDirOf(big);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x61 0 16', '-c', `write -P 0x62 ${gi} 32M`, join(bigDir, 'disk.img')]);
  await env.client.create(snapshots, snapshot('offline', { persistentVolumeClaimName: 'big' }));
  const vs = await readySnapshot(env, 'offline');
  assert.equal(stringAt(vs, 'status', 'restoreSize'), '10Gi');

  await env.client.create(pvcs, claim('big-clone', '10Gi', { storageClassName: 'qcow2-now', ...fromClaim('big') }));
  const clone = await boundClaim(env, 'big-clone');
  const cloneDir = volumeDirOf(clone);
  const files = readdirSync(cloneDir).sort();
  assert.equal(files.length, 3, `the clone is its top and the two frozen layers: ${files.join(', ')}`);
  const used = Number(execFileSync('du', ['-s', '--block-size=1', join(cloneDir, 'disk.img')], { encoding: 'utf8' }).split('\t')[0]);
  assert.ok(used < mi, `the clone's own file holds no data (${used} bytes)`);
  for (const file of files.filter((f) => f.startsWith('layer-'))) {
    assert.equal(statSync(join(cloneDir, file)).ino, statSync(join(bigDir, file)).ino, `${file} is shared, not copied`);
    assert.ok(statSync(join(cloneDir, file)).nlink >= 2);
  }
  assert.equal(dataOf(join(cloneDir, 'disk.img')), 'aaaaaaaaaaaaaaaa');
  for (const name of ['big-clone', 'big']) await env.client.delete(pvcs, 'default', name);
  await env.client.delete(snapshots, 'default', 'offline');
});

test('snapshots and restores that cannot be served say why', { skip: skipWithoutQemu }, async () => {
  // No such claim.
  await env.client.create(snapshots, snapshot('of-nothing', { persistentVolumeClaimName: 'missing' }));
  const missing = await eventually(async () => stringAt(await env.client.get(snapshots, 'default', 'of-nothing'), 'status', 'error', 'message'), { what: 'the missing claim to be reported' });
  assert.match(missing, /persistentvolumeclaim "missing" not found/);
  await waitEvent(env, { kind: 'VolumeSnapshot', name: 'of-nothing', reason: 'SnapshotContentCreationFailed', match: /not found/ });

  // A claim not bound yet (WaitForFirstConsumer, no VM).
  await env.client.create(pvcs, claim('unbound', '8Mi'));
  await env.client.create(snapshots, snapshot('of-unbound', { persistentVolumeClaimName: 'unbound' }));
  const unbound = await eventually(async () => stringAt(await env.client.get(snapshots, 'default', 'of-unbound'), 'status', 'error', 'message'), { what: 'the unbound claim to be reported' });
  assert.match(unbound, /not yet bound/);
  assert.equal(booleanAt(await env.client.get(snapshots, 'default', 'of-unbound'), 'status', 'readyToUse'), false);

  // A restore smaller than its snapshot stays Pending and says so.
  await env.client.create(pvcs, claim('small-src', '16Mi', { storageClassName: 'qcow2-now' }));
  await boundClaim(env, 'small-src');
  await env.client.create(snapshots, snapshot('small', { persistentVolumeClaimName: 'small-src' }));
  await readySnapshot(env, 'small');
  await env.client.create(pvcs, claim('too-small', '8Mi', { storageClassName: 'qcow2-now', ...fromSnapshot('small') }));
  await waitEvent(env, { kind: 'PersistentVolumeClaim', name: 'too-small', reason: 'ProvisioningFailed', match: /requested volume size 8Mi is less than the size 16Mi of the source VolumeSnapshot "small"/ });
  assert.equal(stringAt(await env.client.get(pvcs, 'default', 'too-small'), 'status', 'phase'), 'Pending');

  // dataSource and dataSourceRef that disagree are refused at admission.
  const conflicting = claim('conflict', '16Mi', { ...fromSnapshot('small'), dataSourceRef: { kind: 'PersistentVolumeClaim', name: 'small-src' } });
  const refused = await env.server.fetch('POST', '/api/v1/namespaces/default/persistentvolumeclaims', { body: JSON.stringify(conflicting), headers: { 'content-type': 'application/json' } });
  assert.equal(refused.status, 422, refused.body);
  assert.match(refused.body, /must match dataSourceRef/);

  // A snapshot being restored from is kept until the restore is done (or given up).
  await env.client.delete(snapshots, 'default', 'small');
  assert.ok((await env.client.get(snapshots, 'default', 'small')).metadata.deletionTimestamp !== undefined);
  await env.client.delete(pvcs, 'default', 'too-small');
  await eventually(async () => (await env.client.tryGet(snapshots, 'default', 'small')) === undefined, { what: 'the snapshot to go once nothing restores from it' });
  await eventually(async () => !recordsAt(await env.client.list(contents), 'items').some((c) => stringAt(c, 'spec', 'volumeSnapshotRef', 'name') === 'small'), { what: 'its content to go with it' });
  for (const name of ['of-nothing', 'of-unbound']) await env.client.delete(snapshots, 'default', name);
  for (const name of ['unbound', 'small-src']) await env.client.delete(pvcs, 'default', name);
});
