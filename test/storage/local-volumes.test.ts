/**
 * Persistent local volumes end to end: the real API server with its
 * controllers, scheduler and node agent (TCG). A VM's PVC is provisioned
 * on the node its VMI is scheduled to, keeps what the guest wrote across a
 * stop and start, grows online (the guest sees the new size), is held by
 * pvc-protection while the VM runs, and is gone with its file once the VM
 * and the claim are. Claims that cannot be served stay Pending and say why.
 */
import { after, before, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, openVmEnv, phaseOf, skipWithoutQemu, vmis, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { claim, pvcVm } from './support.js';

const pvcs = resources.persistentVolumeClaims;
const pvs = resources.persistentVolumes;
const classes = resources.storageClasses;
const bootMs = 120_000;
const mi = 2 ** 20;

/**
 * Runs at every boot of a new VMI: writes a marker to the claim's disk
 * (/dev/vdb) unless it is already there, then prints the disk's size in
 * sectors every second, so the test sees an online expansion.
 */
const userData = [
  '#!/bin/sh',
  'm=$(head -c 16 /dev/vdb | tr -d "\\000")',
  'if [ "$m" = "vireo-pvc-marker" ]; then echo "pvc: marker found"; else printf "vireo-pvc-marker" > /dev/vdb; sync; echo "pvc: marker written"; fi',
  '( while true; do echo "pvc-size: $(cat /sys/block/vdb/size)"; sleep 1; done ) </dev/null >/dev/console 2>&1 &',
  '',
].join('\n');

function storageClass(name: string, parameters: Record<string, string>, bindingMode = 'Immediate'): KObject {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner: 'vireo.io/local', volumeBindingMode: bindingMode, reclaimPolicy: 'Delete', parameters };
}

/** Messages of the Events about object `name` of `kind` in `default`. */
async function eventsOf(env: VmEnv, kind: string, name: string): Promise<{ reason: string; message: string }[]> {
  const list = await env.client.list(resources.events, { namespace: 'default' });
  return list.items
    .filter((e) => stringAt(e, 'involvedObject', 'kind') === kind && stringAt(e, 'involvedObject', 'name') === name)
    .map((e) => ({ reason: stringAt(e, 'reason') ?? '', message: stringAt(e, 'message') ?? '' }));
}

async function waitEvent(env: VmEnv, name: string, reason: string, what: string): Promise<string> {
  const event = await eventually(async () => (await eventsOf(env, 'PersistentVolumeClaim', name)).find((e) => e.reason === reason), { what, timeoutMs: 30_000, intervalMs: 100 });
  return event.message;
}

async function runningVmi(env: VmEnv, name: string, notUid: string | undefined): Promise<KObject> {
  return eventually(async () => {
    const vmi = await env.client.tryGet(vmis, 'default', name);
    return vmi !== undefined && vmi.metadata.uid !== notUid && phaseOf(vmi) === 'Running' ? vmi : undefined;
  }, { what: `VMI ${name} to run`, timeoutMs: bootMs, intervalMs: 100 });
}

async function console(t: TestContext, env: VmEnv, name: string): Promise<ConsoleCapture> {
  const capture = await ConsoleCapture.open(env, name);
  t.after(() => { capture.close(); });
  return capture;
}

function imageInfo(path: string): { format: string; 'virtual-size': number } {
  return JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', path], { encoding: 'utf8' })) as { format: string; 'virtual-size': number };
}

let env: VmEnv;

// One server, agent and test guest for the whole file.
before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-storage-test');
  await importTestGuest(env.images);
});

after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
});

test('the default StorageClass is seeded and a claim without a class gets it, with the pvc-protection finalizer', { skip: skipWithoutQemu }, async () => {
  const sc = await env.client.get(classes, undefined, 'local');
  assert.equal(sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
  assert.equal(stringAt(sc, 'volumeBindingMode'), 'WaitForFirstConsumer');
  const created = await env.client.create(pvcs, claim('defaults', '1Mi'));
  assert.equal(stringAt(created, 'spec', 'storageClassName'), 'local');
  assert.equal(stringAt(created, 'spec', 'volumeMode'), 'Filesystem');
  assert.deepEqual(created.metadata.finalizers, ['kubernetes.io/pvc-protection']);
  await eventually(async () => stringAt(await env.client.get(pvcs, 'default', 'defaults'), 'status', 'phase') === 'Pending', { what: 'the claim to show Pending' });
  assert.match(await waitEvent(env, 'defaults', 'WaitForFirstConsumer', 'the WaitForFirstConsumer event'), /waiting for first consumer/);
  await env.client.delete(pvcs, 'default', 'defaults');
  await eventually(async () => (await env.client.tryGet(pvcs, 'default', 'defaults')) === undefined, { what: 'the unused claim to go' });
});

test('a VM with a PVC: provisioned where it runs, data kept across a restart, grown online, protected while in use, gone with the VM', { skip: skipWithoutQemu, timeout: 300_000 }, async (t) => {
  await env.client.create(pvcs, claim('data', '64Mi'));
  await env.client.create(vms, pvcVm('keeper', { claimName: 'data', userData, graceSeconds: 30 }));
  const first = await runningVmi(env, 'keeper', undefined);
  const serial = await console(t, env, 'keeper');
  await eventually(() => serial.text().includes('pvc: marker written'), { what: 'the guest to write its marker', timeoutMs: bootMs, intervalMs: 200 });

  // Provisioned on the node the VMI runs on, bound both ways, with the file where the PV says.
  const pvc = await env.client.get(pvcs, 'default', 'data');
  assert.equal(stringAt(pvc, 'status', 'phase'), 'Bound');
  const uid = pvc.metadata.uid ?? '';
  assert.equal(stringAt(pvc, 'spec', 'volumeName'), `pvc-${uid}`);
  assert.equal(pvc.metadata.annotations?.['volume.kubernetes.io/selected-node'], stringAt(first, 'status', 'nodeName'));
  const pv = await env.client.get(pvs, undefined, `pvc-${uid}`);
  assert.equal(stringAt(pv, 'status', 'phase'), 'Bound');
  assert.equal(stringAt(pv, 'spec', 'claimRef', 'uid'), uid);
  assert.equal(stringAt(pv, 'spec', 'persistentVolumeReclaimPolicy'), 'Delete');
  assert.equal(pv.metadata.annotations?.['pv.kubernetes.io/provisioned-by'], 'vireo.io/local');
  const terms = recordsAt(pv, 'spec', 'nodeAffinity', 'required', 'nodeSelectorTerms');
  assert.deepEqual(terms, [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [stringAt(first, 'status', 'nodeName')] }] }]);
  const dir = join(env.agentDir, 'volumes', `pvc-${uid}`);
  assert.equal(stringAt(pv, 'spec', 'local', 'path'), dir);
  const file = join(dir, 'disk.img');
  assert.deepEqual({ format: imageInfo(file).format, size: imageInfo(file)['virtual-size'] }, { format: 'qcow2', size: 64 * mi });

  // Online expansion: the file, the objects and the running guest all see the new size.
  await env.client.patch(pvcs, 'default', 'data', 'merge', { spec: { resources: { requests: { storage: '96Mi' } } } });
  await eventually(() => serial.text().includes(`pvc-size: ${(96 * mi) / 512}`), { what: 'the guest to see the grown disk', timeoutMs: 30_000, intervalMs: 200 });
  assert.equal(imageInfo(file)['virtual-size'], 96 * mi);
  await eventually(async () => stringAt(await env.client.get(pvcs, 'default', 'data'), 'status', 'capacity', 'storage') === '96Mi', { what: 'the claim to show 96Mi' });
  assert.equal(stringAt(await env.client.get(pvs, undefined, `pvc-${uid}`), 'spec', 'capacity', 'storage'), '96Mi');
  const shrink = await env.server.fetch('PATCH', '/api/v1/namespaces/default/persistentvolumeclaims/data', {
    body: JSON.stringify({ spec: { resources: { requests: { storage: '32Mi' } } } }),
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  assert.equal(shrink.status, 422);
  assert.match(shrink.body, /field can not be less than previous value/);

  // Stop and start: a new VMI, the same data.
  await env.client.patch(vms, 'default', 'keeper', 'merge', { spec: { runStrategy: 'Halted' } });
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'keeper')) === undefined, { what: 'the VMI to go', timeoutMs: 60_000, intervalMs: 100 });
  serial.close();
  // Read once QEMU is gone: a running QEMU may hold qcow2 metadata the guest did not flush.
  const head = execFileSync('qemu-io', ['-U', '-r', '-f', 'qcow2', '-c', 'read -v 0 16', file], { encoding: 'utf8' });
  assert.match(head, new RegExp(Buffer.from('vireo-pvc-marker').toString('hex').replace(/(..)(?!$)/g, '$1 ')), 'the guest wrote to the volume file itself');
  await env.client.patch(vms, 'default', 'keeper', 'merge', { spec: { runStrategy: 'Always' } });
  const second = await runningVmi(env, 'keeper', first.metadata.uid);
  const again = await console(t, env, 'keeper');
  await eventually(() => again.text().includes(TEST_GUEST_READY_MARKER), { what: 'the restarted guest to boot', timeoutMs: bootMs, intervalMs: 200 });
  assert.ok(again.text().includes('pvc: marker found'), `the restarted guest reads its marker back:\n${again.text()}`);
  assert.ok(again.text().includes(`pvc-size: ${(96 * mi) / 512}`), 'and sees the grown disk');
  assert.equal(stringAt(second, 'status', 'nodeName'), stringAt(first, 'status', 'nodeName'), 'the new VMI goes where the volume is');

  // Deleting the claim of a running VM leaves it Terminating and the VM running.
  await env.client.delete(pvcs, 'default', 'data');
  const terminating = await env.client.get(pvcs, 'default', 'data');
  assert.ok(terminating.metadata.deletionTimestamp !== undefined);
  // A negative: nothing to wait for but time in which the volume controller would have released it.
  await new Promise((r) => setTimeout(r, 1500));
  assert.ok((await env.client.tryGet(pvcs, 'default', 'data')) !== undefined, 'the claim is kept while the VM uses it');
  assert.equal(phaseOf(await env.client.tryGet(vmis, 'default', 'keeper')), 'Running');

  // Deleting the VM lets the claim, its volume and its file go.
  await env.client.delete(vms, 'default', 'keeper');
  await eventually(async () => (await env.client.tryGet(pvcs, 'default', 'data')) === undefined, { what: 'the claim to go with the VM', timeoutMs: 90_000, intervalMs: 200 });
  await eventually(async () => (await env.client.tryGet(pvs, undefined, `pvc-${uid}`)) === undefined && !existsSync(dir), { what: 'the volume and its file to go', timeoutMs: 30_000, intervalMs: 100 });
});

test('Immediate classes: qcow2 and Block volumes are provisioned at once in their format', { skip: skipWithoutQemu }, async () => {
  await env.client.create(classes, storageClass('qcow2-now', { format: 'qcow2' }));
  await env.client.create(pvcs, claim('q', '8Mi', { storageClassName: 'qcow2-now' }));
  await env.client.create(pvcs, claim('b', '8Mi', { storageClassName: 'qcow2-now', volumeMode: 'Block' }));
  for (const [name, leaf, format] of [['q', 'disk.img', 'qcow2'], ['b', 'block', 'raw']] as const) {
    const bound = await eventually(async () => {
      const pvc = await env.client.get(pvcs, 'default', name);
      return stringAt(pvc, 'status', 'phase') === 'Bound' ? pvc : undefined;
    }, { what: `claim ${name} to bind`, timeoutMs: 30_000 });
    const pv = await env.client.get(pvs, undefined, stringAt(bound, 'spec', 'volumeName') ?? '');
    assert.equal(pv.metadata.annotations?.['storage.vireo.io/format'], format);
    const file = join(env.agentDir, 'volumes', `pvc-${bound.metadata.uid ?? ''}`, leaf);
    assert.equal(imageInfo(file).format, format);
    assert.equal(imageInfo(file)['virtual-size'], 8 * mi);
    // The class does not allow expansion: growing is refused at admission.
    await assert.rejects(env.client.patch(pvcs, 'default', name, 'merge', { spec: { resources: { requests: { storage: '16Mi' } } } }), /Forbidden|must support resize/);
    await env.client.delete(pvcs, 'default', name);
    await eventually(async () => (await env.client.tryGet(pvs, undefined, pv.metadata.name ?? '')) === undefined && !existsSync(file), { what: `volume of ${name} to go`, timeoutMs: 30_000 });
  }
});

test('claims that cannot be served stay Pending and say why; a VMI without its claim is unschedulable', { skip: skipWithoutQemu }, async () => {
  await env.client.create(classes, storageClass('bad-format', { format: 'vmdk' }));
  await env.client.create(pvcs, claim('odd', '1Mi', { storageClassName: 'bad-format' }));
  assert.match(await waitEvent(env, 'odd', 'ProvisioningFailed', 'the bad format to be reported'), /format "vmdk".*use raw or qcow2/);
  assert.equal(stringAt(await env.client.get(pvcs, 'default', 'odd'), 'status', 'phase'), 'Pending');

  // Too big for any node: the Immediate binder finds no node; sent to the node anyway, its agent refuses.
  await env.client.create(pvcs, claim('huge', '1Pi', { storageClassName: 'qcow2-now' }));
  assert.match(await waitEvent(env, 'huge', 'ProvisioningFailed', 'no node to fit'), /no node can hold 1Pi of local storage: .* has .* free/);
  const node = (await env.client.list(resources.nodes)).items[0]?.metadata.name ?? '';
  await env.client.create(pvcs, { ...claim('forced', '1Pi'), metadata: { name: 'forced', namespace: 'default', annotations: { 'volume.kubernetes.io/selected-node': node } } });
  assert.match(await waitEvent(env, 'forced', 'ProvisioningFailed', 'the agent to refuse'), new RegExp(`not enough local storage on node "${node}": the claim asks for 1Pi`));
  assert.equal(stringAt(await env.client.get(pvcs, 'default', 'forced'), 'status', 'phase'), 'Pending');

  // A VMI whose WaitForFirstConsumer claim fits no node, and one whose claim is missing.
  await env.client.create(pvcs, claim('too-big', '1Pi'));
  const vmi = (name: string, claimName: string): KObject => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default' },
    spec: { domain: { devices: { disks: [{ name: 'd', disk: {} }] }, memory: { guest: '64Mi' } }, volumes: [{ name: 'd', persistentVolumeClaim: { claimName } }] },
  });
  await env.client.create(vmis, vmi('no-room', 'too-big'));
  await env.client.create(vmis, vmi('no-claim', 'missing'));
  const message = async (name: string): Promise<string> =>
    eventually(async () => {
      const found = await env.client.get(vmis, 'default', name);
      const condition = recordsAt(found, 'status', 'conditions').find((c) => c.type === 'PodScheduled' && c.status === 'False');
      return stringAt(condition, 'message');
    }, { what: `VMI ${name} to be unschedulable`, timeoutMs: 30_000 });
  assert.match(await message('no-room'), /0\/1 nodes are available: 1 node\(s\) did not have enough free storage\./);
  assert.equal(await message('no-claim'), '0/1 nodes are available: PersistentVolumeClaim "missing" not found.');
  assert.equal((await env.client.get(pvcs, 'default', 'too-big')).metadata.annotations?.['volume.kubernetes.io/selected-node'], undefined);
  for (const name of ['no-room', 'no-claim']) await env.client.delete(vmis, 'default', name);
  for (const name of ['odd', 'huge', 'forced', 'too-big']) await env.client.delete(pvcs, 'default', name);
});

test('a VMI waits while its DataVolume\'s claim is still being imported, and starts once the import succeeded', { skip: skipWithoutQemu }, async () => {
  const importing = claim('importing', '8Mi', { storageClassName: 'qcow2-now' });
  importing.metadata.annotations = { 'cdi.kubevirt.io/storage.pod.phase': 'Running' };
  await env.client.create(pvcs, importing);
  await env.client.create(vmis, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'waits', namespace: 'default' },
    spec: { terminationGracePeriodSeconds: 0, domain: { devices: { autoattachGraphicsDevice: false, disks: [{ name: 'd', disk: {} }] }, memory: { guest: '64Mi' } }, volumes: [{ name: 'd', dataVolume: { name: 'importing' } }] },
  });
  const waiting = await eventually(async () => {
    const vmi = await env.client.get(vmis, 'default', 'waits');
    return recordsAt(vmi, 'status', 'conditions').find((c) => c.type === 'Synchronized' && c.reason === 'VolumeNotReady');
  }, { what: 'the VMI to wait for the import', timeoutMs: 30_000 });
  assert.match(String(waiting.message), /PersistentVolumeClaim "importing" is still being populated \(import phase Running\)/);
  await env.client.patch(pvcs, 'default', 'importing', 'merge', { metadata: { annotations: { 'cdi.kubevirt.io/storage.pod.phase': 'Succeeded' } } });
  await runningVmi(env, 'waits', undefined);
  await env.client.delete(vmis, 'default', 'waits');
  await env.client.delete(pvcs, 'default', 'importing');
  await eventually(async () => (await env.client.tryGet(pvcs, 'default', 'importing')) === undefined, { what: 'the claim to go once its VMI is gone', timeoutMs: 60_000 });
});
