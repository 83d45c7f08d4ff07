/**
 * The clone controller against the real API server, the CSI side played by
 * the test: a clone of a VM goes through a temporary snapshot and restore
 * to a new VM with its own MAC, serial and firmware UUID and filtered
 * labels, KubeVirt's phases and Events; a clone of a snapshot needs no
 * snapshot of its own; admission refuses bad clones.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { recordAt, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { condition, eventsFor, eventually, read } from './support.js';
import type { SnapshotEnv } from './vmsnapshot-support.js';
import { bind, boundClaim, cut, readySnapshot, startSnapshotEnv, vmWithClaim } from './vmsnapshot-support.js';

let env: SnapshotEnv;
before(async () => { env = await startSnapshotEnv(); });
after(async () => { await env.close(); });

const clones = resources.virtualMachineClones;

function cloneManifest(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'clone.kubevirt.io/v1beta1', kind: 'VirtualMachineClone', metadata: { name, namespace: 'default' }, spec };
}

function cloneWhere(name: string, probe: (c: KObject) => boolean, what: string): Promise<KObject> {
  return eventually(async () => {
    const c = await read(env.client, clones, name);
    return c !== undefined && probe(c) ? c : undefined;
  }, { what: `clone ${name}: ${what}`, timeoutMs: 15_000 });
}

test('a clone of a VM: snapshot, restore, a new VM with its own MAC, serial and UUID; the temporary objects go once its claims are bound', async () => {
  await boundClaim(env, 'src-data');
  await env.client.create(resources.virtualMachines, vmWithClaim('src', 'src-data'));
  // The snapshot controller first says which volumes can be snapshotted.
  await eventually(async () => recordsAt(await env.client.get(resources.virtualMachines, 'default', 'src'), 'status', 'volumeSnapshotStatuses').length === 3, { what: 'volumeSnapshotStatuses' });
  const clone = await env.client.create(clones, cloneManifest('copy', {
    source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'src' },
    target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'copy-vm' },
    labelFilters: ['*', '!team'],
    annotationFilters: ['example.com/keep'],
    newSMBiosSerial: 'serial-copy',
  }));
  const snapshotName = `tmp-snapshot-${clone.metadata.uid ?? ''}`;
  const inSnapshot = await cloneWhere('copy', (c) => stringAt(c, 'status', 'snapshotName') === snapshotName, 'snapshotting');
  assert.equal(stringAt(inSnapshot, 'status', 'phase'), 'SnapshotInProgress');
  const snapshot = await env.client.get(resources.virtualMachineSnapshots, 'default', snapshotName);
  assert.deepEqual(snapshot.metadata.ownerReferences?.map((r) => [r.kind, r.name]), [['VirtualMachineClone', 'copy']]);

  await cut(env.client, `vmsnapshot-${snapshot.metadata.uid ?? ''}-volume-data`, true);
  const done = await cloneWhere('copy', (c) => stringAt(c, 'status', 'phase') === 'Succeeded', 'Succeeded');
  assert.equal(stringAt(done, 'status', 'targetName'), 'copy-vm');
  assert.deepEqual([condition(done, 'Ready')?.status, condition(done, 'Ready')?.reason], ['True', 'Ready']);
  const restoreName = `tmp-restore-${clone.metadata.uid ?? ''}`;
  assert.equal(stringAt(done, 'status', 'restoreName'), restoreName);

  const vm = await env.client.get(resources.virtualMachines, 'default', 'copy-vm');
  const domain = recordAt(vm, 'spec', 'template', 'spec', 'domain');
  assert.equal(recordsAt(domain, 'devices', 'interfaces')[0]?.macAddress, undefined, 'the MAC is dropped, so a new one is generated');
  assert.deepEqual(recordAt(domain, 'firmware'), { serial: 'serial-copy' }, 'a new serial; the firmware UUID is derived from the new name');
  assert.deepEqual(vm.metadata.labels, { app: 'src' }, 'the label filters dropped team');
  assert.equal(vm.metadata.annotations?.['example.com/keep'], 'yes');
  assert.equal(vm.metadata.annotations?.['example.com/drop'], undefined);
  assert.equal(stringAt(vm, 'spec', 'runStrategy'), 'Halted');
  const restore = await env.client.get(resources.virtualMachineRestores, 'default', restoreName);
  const claimName = stringAt(recordsAt(restore, 'status', 'restores')[0], 'persistentVolumeClaim') ?? '';
  assert.deepEqual(recordsAt(vm, 'spec', 'template', 'spec', 'volumes').find((v) => v.name === 'data'), { name: 'data', persistentVolumeClaim: { claimName } });
  const pvc = await env.client.get(resources.persistentVolumeClaims, 'default', claimName);
  assert.equal(pvc.metadata.ownerReferences, undefined, 'as in KubeVirt, the new VM owns a restored claim only when the source VM owned the original');

  // The new claim binds (when the clone first runs, for a WaitForFirstConsumer class): the temporaries go.
  await bind(env.client, claimName);
  const cleaned = await cloneWhere('copy', (c) => stringAt(c, 'status', 'restoreName') === undefined, 'cleaned up');
  assert.equal(stringAt(cleaned, 'status', 'snapshotName'), undefined);
  await eventually(async () => (await read(env.client, resources.virtualMachineRestores, restoreName)) === undefined, { what: 'the temporary restore to go' });
  await eventually(async () => (await read(env.client, resources.virtualMachineSnapshots, snapshotName)) === undefined, { what: 'the temporary snapshot to go' });
  const reasons = await eventually(async () => {
    const list = (await eventsFor(env.client, 'copy')).map((e) => stringAt(e, 'reason'));
    return list.includes('PVCBound') ? list : undefined;
  }, { what: 'the clone Events' });
  for (const reason of ['SnapshotCreated', 'SnapshotReady', 'RestoreCreated', 'RestoreReady', 'TargetVMCreated', 'PVCBound']) assert.ok(reasons.includes(reason), `Event ${reason} in ${reasons.join(', ')}`);

  // A Succeeded clone whose VM is deleted goes too.
  await env.client.delete(resources.virtualMachines, 'default', 'copy-vm');
  await eventually(async () => (await read(env.client, clones, 'copy')) === undefined, { what: 'the clone to go with its VM' });
});

test('a clone of a snapshot restores it into a new VM, with new MACs as given and a default target name', async () => {
  await boundClaim(env, 'gold-data');
  await env.client.create(resources.virtualMachines, vmWithClaim('gold', 'gold-data'));
  await readySnapshot(env, 'gold-snap', 'gold');
  const clone = await env.client.create(clones, cloneManifest('from-snap', {
    source: { apiGroup: 'snapshot.kubevirt.io', kind: 'VirtualMachineSnapshot', name: 'gold-snap' },
    newMacAddresses: { default: '02:00:00:00:00:99' },
  }));
  const done = await cloneWhere('from-snap', (c) => stringAt(c, 'status', 'phase') === 'Succeeded', 'Succeeded');
  const target = stringAt(done, 'status', 'targetName') ?? '';
  assert.equal(target, `gold-snap-clone-${(clone.metadata.uid ?? '').replace(/-/g, '').slice(0, 5)}`);
  const vm = await env.client.get(resources.virtualMachines, 'default', target);
  assert.equal(recordsAt(vm, 'spec', 'template', 'spec', 'domain', 'devices', 'interfaces')[0]?.macAddress, '02:00:00:00:00:99');
  assert.deepEqual(recordAt(vm, 'spec', 'template', 'spec', 'domain', 'firmware'), {}, 'serial and UUID dropped');
  assert.ok((await read(env.client, resources.virtualMachineSnapshots, 'gold-snap')) !== undefined, 'a source snapshot is not the clone\'s to delete');
});

test('a clone of a VM that does not exist yet waits for it', async () => {
  await env.client.create(clones, cloneManifest('early', { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'later' }, target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'later-copy' } }));
  const pending = await cloneWhere('early', (c) => condition(c, 'Progressing')?.reason === 'Pending', 'pending');
  assert.equal(stringAt(pending, 'status', 'phase'), undefined);
  assert.match(condition(pending, 'Ready')?.reason as string, /Source doesnt exist: VirtualMachine default\/later/);
  await eventually(async () => (await eventsFor(env.client, 'early')).some((e) => stringAt(e, 'reason') === 'SourceDoesNotExist'), { what: 'the SourceDoesNotExist Event' });
});

test('admission refuses bad clones', async () => {
  const post = async (spec: Record<string, unknown>): Promise<string> => {
    const res = await env.server.fetch('POST', '/apis/clone.kubevirt.io/v1beta1/namespaces/default/virtualmachineclones', { body: JSON.stringify(cloneManifest('bad', spec)), headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 422, res.body);
    return res.body;
  };
  assert.match(await post({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachineInstance', name: 'x' } }), /Source kind \\"VirtualMachineInstance\\" is not supported/);
  assert.match(await post({ source: { kind: 'VirtualMachine', name: 'x' } }), /APIGroup cannot be empty/);
  assert.match(await post({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'x' }, target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'x' } }), /Target name cannot be equal to source name/);
  assert.match(await post({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'x' }, target: { kind: 'DataVolume', name: 'y' } }), /Target kind is not supported/);
  assert.match(await post({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'x' }, newMacAddresses: { default: 'nope' } }), /malformed MAC address/);
  assert.match(await post({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'x' }, labelFilters: ['a*b', '!'] }), /WildcardChar can be only at the end.*negation character is not a valid filter|negation character is not a valid filter/s);
  assert.match(await post({ source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'x' }, patches: ['{not json'] }), /patch is not valid JSON/);
});
