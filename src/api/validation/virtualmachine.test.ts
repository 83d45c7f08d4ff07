import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { validateKind } from './registry.js';

/** A VM as KubeVirt's documentation writes one; `change` edits its spec. */
function vm(change: (spec: VmSpec) => void = () => undefined): KObject {
  const spec: VmSpec = {
    runStrategy: 'Always',
    template: {
      metadata: { labels: { 'kubevirt.io/vm': 'demo' } },
      spec: {
        domain: {
          devices: {
            disks: [{ name: 'containerdisk', disk: { bus: 'virtio' } }, { name: 'cloudinitdisk', disk: { bus: 'virtio' } }],
            interfaces: [{ name: 'default', masquerade: {} }],
          },
          resources: { requests: { memory: '128Mi' } },
        },
        networks: [{ name: 'default', pod: {} }],
        volumes: [
          { name: 'containerdisk', containerDisk: { image: 'quay.io/kubevirt/cirros-container-disk-demo' } },
          { name: 'cloudinitdisk', cloudInitNoCloud: { userData: '#cloud-config\n' } },
        ],
      },
    },
  };
  change(spec);
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name: 'demo', namespace: 'default' }, spec };
}

interface VmSpec {
  [key: string]: unknown;
  template: { metadata: { labels: Record<string, string> }; spec: VmiSpec };
}

interface VmiSpec {
  [key: string]: unknown;
  domain: { devices: { disks: Record<string, unknown>[]; interfaces: Record<string, unknown>[] }; [key: string]: unknown };
  networks: Record<string, unknown>[];
  volumes: Record<string, unknown>[];
}

function errors(obj: KObject): [string, string][] {
  return validateKind('kubevirt.io', 'VirtualMachine', obj).map((e) => [e.field, e.reason]);
}

function messages(obj: KObject): string {
  return validateKind('kubevirt.io', 'VirtualMachine', obj)
    .map((e) => e.message)
    .join('\n');
}

test('a documented VM is admitted', () => {
  assert.deepEqual(errors(vm()), []);
  assert.deepEqual(errors(vm((s) => ((s['running'] = false), delete s['runStrategy']))), []);
});

test('running and runStrategy are mutually exclusive, and one of them is required', () => {
  assert.deepEqual(errors(vm((s) => (s['running'] = true))), [['spec.running', 'FieldValueInvalid']]);
  assert.match(messages(vm((s) => (s['running'] = true))), /mutually exclusive.*use RunStrategy/);
  assert.deepEqual(errors(vm((s) => delete s['runStrategy'])), [['spec.runStrategy', 'FieldValueRequired']]);
});

test('runStrategy must be a supported one', () => {
  assert.deepEqual(errors(vm((s) => (s['runStrategy'] = 'Sometimes'))), [['spec.runStrategy', 'FieldValueInvalid']]);
  assert.match(messages(vm((s) => (s['runStrategy'] = 'Sometimes'))), /Invalid RunStrategy \(Sometimes\); use one of Always, RerunOnFailure, Manual, Halted, Once/);
  assert.match(messages(vm((s) => (s['runStrategy'] = 'WaitAsReceiver'))), /decentralized/);
  for (const strategy of ['Always', 'RerunOnFailure', 'Manual', 'Halted', 'Once']) assert.deepEqual(errors(vm((s) => (s['runStrategy'] = strategy))), []);
});

test('a template is required', () => {
  const obj = vm();
  delete (obj['spec'] as Record<string, unknown>)['template'];
  assert.deepEqual(errors(obj), [['spec.template', 'FieldValueRequired']]);
});

test('every disk names an existing volume', () => {
  const obj = vm((s) => s.template.spec.volumes.splice(1, 1));
  assert.deepEqual(errors(obj), [['spec.template.spec.domain.devices.disks[1].name', 'FieldValueInvalid']]);
  assert.match(messages(obj), /disk "cloudinitdisk" has no volume: .*spec\.template\.spec\.volumes; add a volume named "cloudinitdisk" or rename the disk/);
});

test('volume names are unique and each volume has exactly one source', () => {
  assert.deepEqual(
    errors(vm((s) => s.template.spec.volumes.push({ name: 'containerdisk', emptyDisk: { capacity: '1Gi' } }))),
    [['spec.template.spec.volumes[2].name', 'FieldValueDuplicate']],
  );
  assert.deepEqual(
    errors(vm((s) => Object.assign(s.template.spec.volumes[0] ?? {}, { emptyDisk: { capacity: '1Gi' } }))),
    [['spec.template.spec.volumes[0]', 'FieldValueInvalid']],
  );
});

test('disk names are unique DNS labels with one target and a supported bus', () => {
  assert.deepEqual(
    errors(vm((s) => s.template.spec.domain.devices.disks.push({ name: 'containerdisk', cdrom: {} }))),
    [['spec.template.spec.domain.devices.disks[2].name', 'FieldValueDuplicate']],
  );
  const badName = vm((s) => {
    s.template.spec.domain.devices.disks[0] = { name: 'Container_Disk', disk: {} };
    (s.template.spec.volumes[0] ?? {})['name'] = 'Container_Disk';
  });
  assert.deepEqual(errors(badName), [['spec.template.spec.domain.devices.disks[0].name', 'FieldValueInvalid']]);
  assert.deepEqual(
    errors(vm((s) => (s.template.spec.domain.devices.disks[0] = { name: 'containerdisk', disk: {}, cdrom: {} }))),
    [['spec.template.spec.domain.devices.disks[0]', 'FieldValueInvalid']],
  );
  assert.deepEqual(
    errors(vm((s) => (s.template.spec.domain.devices.disks[0] = { name: 'containerdisk', disk: { bus: 'ide' } }))),
    [['spec.template.spec.domain.devices.disks[0].disk.bus', 'FieldValueInvalid']],
  );
  assert.deepEqual(
    errors(vm((s) => (s.template.spec.domain.devices.disks[0] = { name: 'containerdisk', cdrom: { bus: 'virtio' } }))),
    [['spec.template.spec.domain.devices.disks[0].cdrom.bus', 'FieldValueInvalid']],
  );
});

test('boot orders are positive and unique across disks and interfaces', () => {
  const obj = vm((s) => {
    Object.assign(s.template.spec.domain.devices.disks[0] ?? {}, { bootOrder: 1 });
    Object.assign(s.template.spec.domain.devices.interfaces[0] ?? {}, { bootOrder: 1 });
    Object.assign(s.template.spec.domain.devices.disks[1] ?? {}, { bootOrder: 0 });
  });
  assert.deepEqual(errors(obj), [
    ['spec.template.spec.domain.devices.interfaces[0].bootOrder', 'FieldValueInvalid'],
    ['spec.template.spec.domain.devices.disks[1].bootOrder', 'FieldValueInvalid'],
  ]);
});

test('dataVolumeTemplates are named, valid and used by a volume', () => {
  const dvt = { metadata: { name: 'rootdisk' }, spec: { storage: { resources: { requests: { storage: '1Gi' } } }, source: { blank: {} } } };
  const used = vm((s) => {
    s['dataVolumeTemplates'] = [dvt];
    s.template.spec.volumes[0] = { name: 'containerdisk', dataVolume: { name: 'rootdisk' } };
  });
  assert.deepEqual(errors(used), []);
  assert.deepEqual(errors(vm((s) => (s['dataVolumeTemplates'] = [dvt]))), [['spec.dataVolumeTemplates[0]', 'FieldValueRequired']]);
  assert.deepEqual(errors(vm((s) => (s['dataVolumeTemplates'] = [{ spec: dvt.spec }]))), [['spec.dataVolumeTemplates[0].metadata.name', 'FieldValueRequired']]);
  assert.deepEqual(
    errors(vm((s) => (s['dataVolumeTemplates'] = [{ metadata: { name: 'rootdisk' }, spec: { source: { blank: {} } } }]))),
    [['spec.dataVolumeTemplates[0].spec.storage', 'FieldValueRequired']],
  );
});

test('interfaces and networks match by name, with at most one pod network', () => {
  assert.deepEqual(errors(vm((s) => ((s.template.spec.networks[0] ?? {})['name'] = 'other'))), [
    ['spec.template.spec.networks[0].name', 'FieldValueRequired'],
    ['spec.template.spec.domain.devices.interfaces[0].name', 'FieldValueInvalid'],
  ]);
  const twoPods = vm((s) => {
    s.template.spec.networks.push({ name: 'second', pod: {} });
    s.template.spec.domain.devices.interfaces.push({ name: 'second', masquerade: {} });
  });
  assert.deepEqual(errors(twoPods), [['spec.template.spec.interfaces', 'FieldValueDuplicate']]);
  assert.deepEqual(
    errors(vm((s) => (s.template.spec.domain.devices.interfaces[0] = { name: 'default', masquerade: {}, bridge: {} }))),
    [['spec.template.spec.domain.devices.interfaces[0]', 'FieldValueInvalid']],
  );
});

test('memory and CPU requests are sane', () => {
  assert.deepEqual(
    errors(vm((s) => (s.template.spec.domain['resources'] = { requests: { memory: '2Gi' }, limits: { memory: '1Gi' } }))),
    [['spec.template.spec.domain.resources.requests.memory', 'FieldValueInvalid']],
  );
  assert.deepEqual(errors(vm((s) => (s.template.spec.domain['resources'] = { requests: { memory: '100k' } }))), [
    ['spec.template.spec.domain.resources.requests.memory', 'FieldValueInvalid'],
  ]);
  assert.deepEqual(errors(vm((s) => (s.template.spec.domain['resources'] = { requests: { cpu: '-1' } }))), [
    ['spec.template.spec.domain.resources.requests.cpu', 'FieldValueInvalid'],
  ]);
  assert.deepEqual(errors(vm((s) => (s.template.spec.domain['cpu'] = { sockets: 4, maxSockets: 2 }))), [
    ['spec.template.spec.domain.cpu.sockets', 'FieldValueInvalid'],
  ]);
});

test('a VM template needs no memory of its own when an instancetype provides it', () => {
  const obj = vm((s) => {
    s['instancetype'] = { name: 'u1.small' };
    delete s.template.spec.domain['resources'];
  });
  assert.deepEqual(errors(obj), []);
  assert.deepEqual(errors(vm((s) => (s['instancetype'] = { kind: 'VirtualMachineClusterInstancetype' }))), [['spec.instancetype', 'FieldValueRequired']]);
  assert.deepEqual(errors(vm((s) => (s['preference'] = { name: 'fedora', kind: 'Preference' }))), [['spec.preference.kind', 'FieldValueInvalid']]);
});

test('hostname and subdomain follow DNS rules', () => {
  assert.deepEqual(errors(vm((s) => (s.template.spec['hostname'] = 'My_Host'))), [['spec.template.spec.hostname', 'FieldValueInvalid']]);
  assert.deepEqual(errors(vm((s) => (s.template.spec['subdomain'] = 'a..b'))), [['spec.template.spec.subdomain', 'FieldValueInvalid']]);
});

test('a VirtualMachinePool checks its VM template and its selector', () => {
  const template = vm()['spec'];
  const pool = (selector: unknown): KObject => ({
    apiVersion: 'pool.kubevirt.io/v1beta1',
    kind: 'VirtualMachinePool',
    metadata: { name: 'pool' },
    spec: { replicas: 2, selector, virtualMachineTemplate: { metadata: { labels: { app: 'web' } }, spec: template } },
  });
  assert.deepEqual(validateKind('pool.kubevirt.io', 'VirtualMachinePool', pool({ matchLabels: { app: 'web' } })), []);
  assert.deepEqual(
    validateKind('pool.kubevirt.io', 'VirtualMachinePool', pool({ matchLabels: { app: 'db' } })).map((e) => e.field),
    ['spec.selector'],
  );
});
