import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { validateKind } from './registry.js';
import type { WriterOptions } from './virtualmachine.js';

interface VmiSpec {
  [key: string]: unknown;
  domain: { [key: string]: unknown; devices: { [key: string]: unknown; disks: Record<string, unknown>[] } };
  volumes: Record<string, unknown>[];
}

function vmi(change: (spec: VmiSpec) => void = () => undefined, metadata: KObject['metadata'] = {}): KObject {
  const spec: VmiSpec = {
    domain: {
      devices: { disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }] },
      memory: { guest: '128Mi' },
      resources: {},
    },
    volumes: [{ name: 'containerdisk', containerDisk: { image: 'registry:5000/kubevirt/cirros-container-disk-demo:devel' } }],
  };
  change(spec);
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'vmi', namespace: 'default', ...metadata }, spec };
}

function errors(obj: KObject, old?: KObject, options?: WriterOptions): [string, string][] {
  return validateKind('kubevirt.io', 'VirtualMachineInstance', obj, old, options).map((e) => [e.field, e.reason]);
}

test('a documented VMI is admitted', () => {
  assert.deepEqual(errors(vmi()), []);
});

test('memory must be requested unless an instancetype provided it', () => {
  const noMemory = (s: VmiSpec): void => {
    delete s.domain['memory'];
  };
  assert.deepEqual(errors(vmi(noMemory)), [['spec.domain.memory.guest', 'FieldValueRequired']]);
  assert.match(validateKind('kubevirt.io', 'VirtualMachineInstance', vmi(noMemory))[0]?.message ?? '', /no memory requested/);
  const requested = vmi((s) => {
    noMemory(s);
    s.domain['resources'] = { requests: { memory: '64Mi' } };
  });
  assert.deepEqual(errors(requested), []);
  assert.deepEqual(errors(vmi((s) => (s.domain['memory'] = { hugepages: { pageSize: '2Mi' } }))), []);
  assert.deepEqual(errors(vmi(noMemory, { annotations: { 'kubevirt.io/cluster-instancetype-name': 'u1.small' } })), []);
});

test('a volume without a disk gets an implicit disk, so its name must be a valid disk name', () => {
  assert.deepEqual(errors(vmi((s) => s.volumes.push({ name: 'scratch', emptyDisk: { capacity: '1Gi' } }))), []);
  assert.deepEqual(errors(vmi((s) => s.volumes.push({ name: 'Scratch.Disk', emptyDisk: { capacity: '1Gi' } }))), [
    ['spec.volumes[1].name', 'FieldValueInvalid'],
  ]);
});

test('a disk without a volume is rejected, except an empty CD-ROM', () => {
  assert.deepEqual(errors(vmi((s) => s.domain.devices.disks.push({ name: 'data', disk: {} }))), [['spec.domain.devices.disks[1].name', 'FieldValueInvalid']]);
  assert.deepEqual(errors(vmi((s) => s.domain.devices.disks.push({ name: 'tray', cdrom: { bus: 'sata' } }))), []);
});

test('a LUN must be backed by a PVC or DataVolume', () => {
  const obj = vmi((s) => (s.domain.devices.disks[0] = { name: 'containerdisk', lun: {} }));
  assert.deepEqual(errors(obj), [['spec.domain.devices.disks[0].lun', 'FieldValueInvalid']]);
});

test('networks need a source, multus needs a network name, masquerade needs the pod network', () => {
  const multus = vmi((s) => {
    s['networks'] = [{ name: 'sec', multus: {} }];
    s.domain.devices['interfaces'] = [{ name: 'sec', masquerade: {} }];
  });
  assert.deepEqual(errors(multus), [
    ['spec.networks[0]', 'FieldValueRequired'],
    ['spec.domain.devices.interfaces[0].name', 'FieldValueInvalid'],
  ]);
  const none = vmi((s) => {
    s['networks'] = [{ name: 'n' }];
    s.domain.devices['interfaces'] = [{ name: 'n', bridge: {} }];
  });
  assert.deepEqual(errors(none), [['spec.networks[0]', 'FieldValueRequired']]);
  const badMac = vmi((s) => {
    s['networks'] = [{ name: 'default', pod: {} }];
    s.domain.devices['interfaces'] = [{ name: 'default', masquerade: {}, macAddress: 'zz:00', model: 'rtl9000' }];
  });
  assert.deepEqual(errors(badMac), [
    ['spec.domain.devices.interfaces[0].model', 'FieldValueNotSupported'],
    ['spec.domain.devices.interfaces[0].macAddress', 'FieldValueInvalid'],
  ]);
});

test('cloud-init data: one source, valid base64, inline size limited', () => {
  const cloudInit = (source: Record<string, unknown>): KObject =>
    vmi((s) => {
      s.volumes.push({ name: 'cloudinitdisk', cloudInitNoCloud: source });
      s.domain.devices.disks.push({ name: 'cloudinitdisk', disk: {} });
    });
  assert.deepEqual(errors(cloudInit({ userData: '#cloud-config\n', userDataBase64: 'I2Nsb3VkLWNvbmZpZwo=' })), [['spec.volumes[1].cloudInitNoCloud', 'FieldValueInvalid']]);
  assert.deepEqual(errors(cloudInit({ userDataBase64: 'not base64!' })), [['spec.volumes[1].cloudInitNoCloud.userDataBase64', 'FieldValueInvalid']]);
  assert.deepEqual(errors(cloudInit({ userData: 'x'.repeat(2049) })), [['spec.volumes[1].cloudInitNoCloud', 'FieldValueInvalid']]);
  assert.deepEqual(errors(cloudInit({ secretRef: { name: 'cloud-init' } })), []);
});

test('EFI Secure Boot with SMM turned off is rejected', () => {
  const obj = vmi((s) => {
    s.domain['firmware'] = { bootloader: { efi: {} } };
    s.domain['features'] = { smm: { enabled: false } };
  });
  assert.deepEqual(errors(obj), [['spec.domain', 'FieldValueInvalid']]);
  assert.deepEqual(errors(vmi((s) => (s.domain['firmware'] = { bootloader: { efi: { secureBoot: false } } }))), []);
});

test('reserved kubevirt.io labels are for KubeVirt\'s own components', () => {
  const labelled = vmi(undefined, { labels: { 'kubevirt.io/nodeName': 'node1' } });
  assert.deepEqual(errors(labelled, undefined, { writer: 'user' }), [['metadata.labels', 'FieldValueNotSupported']]);
  assert.deepEqual(errors(labelled, undefined, { writer: 'controller' }), []);
  assert.deepEqual(errors(labelled), []);
});

test('the spec of an existing VMI cannot change', () => {
  const old = vmi();
  const changed = vmi((s) => (s.domain['memory'] = { guest: '256Mi' }));
  assert.deepEqual(errors(changed, old), [['spec', 'FieldValueForbidden']]);
  assert.match(validateKind('kubevirt.io', 'VirtualMachineInstance', changed, old)[0]?.message ?? '', /update of VMI object is restricted/);
  assert.deepEqual(errors(changed, old, { writer: 'user' }), [['spec', 'FieldValueForbidden']]);
  // Status and labels may change; so may hotplug by KubeVirt's own components, but not the hotplug ceilings.
  assert.deepEqual(errors({ ...vmi(undefined, { labels: { app: 'x' } }), status: { phase: 'Running' } }, old), []);
  assert.deepEqual(errors(changed, old, { writer: 'controller' }), []);
  const moreSockets = vmi((s) => (s.domain['cpu'] = { sockets: 2, maxSockets: 8 }));
  const base = vmi((s) => (s.domain['cpu'] = { sockets: 1, maxSockets: 4 }));
  assert.deepEqual(errors(moreSockets, base, { writer: 'controller' }), [['spec.domain.cpu.maxSockets', 'FieldValueInvalid']]);
});

test('a user may not change reserved labels on an existing VMI', () => {
  const old = vmi(undefined, { labels: { 'kubevirt.io/nodeName': 'node1' } });
  const moved = vmi(undefined, { labels: { 'kubevirt.io/nodeName': 'node2' } });
  assert.deepEqual(errors(moved, old, { writer: 'user' }), [['metadata.labels', 'FieldValueNotSupported']]);
  assert.deepEqual(errors(moved, old, { writer: 'controller' }), []);
});

test('startStrategy and evictionStrategy take known values only', () => {
  assert.deepEqual(errors(vmi((s) => (s['startStrategy'] = 'Running'))), [['spec.startStrategy', 'FieldValueInvalid']]);
  assert.deepEqual(errors(vmi((s) => (s['evictionStrategy'] = 'Migrate'))), [['spec.evictionStrategy', 'FieldValueInvalid']]);
  assert.deepEqual(errors(vmi((s) => ((s['startStrategy'] = 'Paused'), (s['evictionStrategy'] = 'LiveMigrate')))), []);
});
