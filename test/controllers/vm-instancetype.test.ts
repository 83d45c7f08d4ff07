import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { at, recordAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { VirtualMachineController } from '../../src/controllers/vm/index.js';
import type { Env } from './support.js';
import { condition, eventually, printable, read, startEnv, vmiAppears, vmManifest } from './support.js';

let env: Env;
let controller: VirtualMachineController;

before(async () => {
  env = await startEnv();
  controller = new VirtualMachineController(env.client, silentLogger);
  await controller.start();
  await env.client.create(resources.clusterInstancetypes, {
    apiVersion: 'instancetype.kubevirt.io/v1beta1',
    kind: 'VirtualMachineClusterInstancetype',
    metadata: { name: 'u1.small' },
    spec: { cpu: { guest: 4 }, memory: { guest: '512Mi' }, annotations: { 'example.com/size': 'small' } },
  });
  await env.client.create(resources.preferences, {
    apiVersion: 'instancetype.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePreference',
    metadata: { name: 'linux', namespace: 'default' },
    spec: {
      cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'SocketsCores', ratio: 2 } },
      devices: { preferredDiskBus: 'sata', preferredAutoattachSerialConsole: true, preferredInterfaceModel: 'e1000e' },
      machine: { preferredMachineType: 'q35' },
      preferredTerminationGracePeriodSeconds: 30,
    },
  });
});
after(async () => {
  await controller.stop();
  await env.close();
});

/** A template without memory or CPU, and a disk without a bus: the instancetype and preference fill them. */
function sized(name: string, matchers: Record<string, unknown>): ReturnType<typeof vmManifest> {
  const vm = vmManifest(name, { runStrategy: 'Always', ...matchers });
  const template = recordAt(vm, 'spec', 'template');
  if (template !== undefined) template.spec = { domain: { devices: { disks: [{ name: 'root', disk: {} }] } }, volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }] };
  return vm;
}

test('the instancetype and preference are expanded into the VMI at start', async () => {
  await env.client.create(resources.virtualMachines, sized('sized', { instancetype: { name: 'u1.small' }, preference: { kind: 'VirtualMachinePreference', name: 'linux' } }));
  const vmi = await vmiAppears(env.client, 'sized');
  assert.deepEqual(at(vmi, 'spec', 'domain', 'cpu'), { sockets: 2, cores: 2, threads: 1 });
  assert.equal(at(vmi, 'spec', 'domain', 'memory', 'guest'), '512Mi');
  const disks = at(vmi, 'spec', 'domain', 'devices', 'disks');
  assert.deepEqual(Array.isArray(disks) ? disks[0] : undefined, { name: 'root', disk: { bus: 'sata' } });
  assert.equal(at(vmi, 'spec', 'domain', 'devices', 'autoattachSerialConsole'), true);
  // The template names no network: the pod network is defaulted before the preference applies, as KubeVirt expands a VM.
  assert.deepEqual(at(vmi, 'spec', 'domain', 'devices', 'interfaces'), [{ name: 'default', bridge: {}, model: 'e1000e' }]);
  assert.deepEqual(at(vmi, 'spec', 'networks'), [{ name: 'default', pod: {} }]);
  assert.equal(at(vmi, 'spec', 'domain', 'machine', 'type'), 'q35');
  assert.equal(at(vmi, 'spec', 'terminationGracePeriodSeconds'), 30);
  assert.equal(vmi.metadata.annotations?.['kubevirt.io/cluster-instancetype-name'], 'u1.small');
  assert.equal(vmi.metadata.annotations?.['kubevirt.io/preference-name'], 'linux');
  assert.equal(vmi.metadata.annotations?.['example.com/size'], 'small');
  await eventually(async () => at(await read(env.client, resources.virtualMachines, 'sized'), 'status', 'instancetypeRef', 'name') === 'u1.small', { what: 'instancetypeRef' });
  const vm = await read(env.client, resources.virtualMachines, 'sized');
  assert.deepEqual(at(vm, 'status', 'instancetypeRef'), { kind: 'VirtualMachineClusterInstancetype', name: 'u1.small' });
  assert.deepEqual(at(vm, 'status', 'preferenceRef'), { kind: 'VirtualMachinePreference', name: 'linux' });
});

test('a missing instancetype is a Failure condition and no VMI, until it exists', async () => {
  await env.client.create(resources.virtualMachines, sized('unsized', { instancetype: { name: 'u1.huge' } }));
  await eventually(async () => condition(await read(env.client, resources.virtualMachines, 'unsized'), 'Failure')?.reason === 'FailedFindInstancetype', { what: 'the Failure condition' });
  const failure = condition(await read(env.client, resources.virtualMachines, 'unsized'), 'Failure');
  assert.match(String(failure?.message), /virtualmachineclusterinstancetypes\.instancetype\.kubevirt\.io "u1\.huge" not found/);
  assert.equal(await printable(env.client, 'unsized'), 'Stopped', 'KubeVirt shows such a VM as Stopped, with the Failure condition saying why');
  assert.equal(await read(env.client, resources.virtualMachineInstances, 'unsized'), undefined);
  await env.client.create(resources.clusterInstancetypes, {
    apiVersion: 'instancetype.kubevirt.io/v1beta1',
    kind: 'VirtualMachineClusterInstancetype',
    metadata: { name: 'u1.huge' },
    spec: { cpu: { guest: 1 }, memory: { guest: '1Gi' } },
  });
  const vmi = await vmiAppears(env.client, 'unsized');
  assert.deepEqual(at(vmi, 'spec', 'domain', 'cpu'), { sockets: 1, cores: 1, threads: 1 });
  await eventually(async () => condition(await read(env.client, resources.virtualMachines, 'unsized'), 'Failure') === undefined, { what: 'the Failure condition to clear' });
});

test('a template that sets what the instancetype owns is refused with the conflicting fields', async () => {
  const vm = sized('clash', { instancetype: { name: 'u1.small' } });
  const template = recordAt(vm, 'spec', 'template', 'spec', 'domain');
  if (template !== undefined) template.cpu = { sockets: 2 };
  await env.client.create(resources.virtualMachines, vm);
  await eventually(async () => condition(await read(env.client, resources.virtualMachines, 'clash'), 'Failure')?.reason === 'FailedCreate', { what: 'the conflict' });
  assert.match(String(condition(await read(env.client, resources.virtualMachines, 'clash'), 'Failure')?.message), /spec\.template\.spec\.domain\.cpu\.sockets conflicts with selected instance type/);
  assert.equal(await read(env.client, resources.virtualMachineInstances, 'clash'), undefined);
});
