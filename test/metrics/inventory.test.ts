/**
 * virt-controller's inventory families on the server's `/metrics`
 * (`src/controllers/metrics/inventory-families.ts`): VMs, a VMI, claims and
 * an instancetype created through the API of an in-process server, the
 * scrape parsed, and each family's label sets and values checked against
 * what KubeVirt's collectors report for the same objects.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpClient, resources } from '../../src/client/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';
import { parseSamples } from '../../src/agent/metrics/index.js';
import type { ParsedSample } from '../../src/agent/metrics/index.js';
import type { KObject } from '../../src/api/object.js';

let server: TestServer;
let client: HttpClient;

before(async () => {
  server = await startTestServer({ controllers: true });
  client = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'inventory-metrics-test' });
});
after(async () => {
  client.close();
  await server.stop();
});

async function scrape(): Promise<ParsedSample[]> {
  const res = await server.fetch('GET', '/metrics');
  assert.equal(res.status, 200, res.body);
  return parseSamples(res.body);
}

/** The samples of `family` for the object `name`, as [labels without name/namespace, value], sorted. */
function series(samples: ParsedSample[], family: string, name: string): [Record<string, string>, number][] {
  return samples
    .filter((s) => s.name === family && s.labels.name === name)
    .map((s): [Record<string, string>, number] => {
      const { name: _name, namespace, ...rest } = s.labels;
      assert.equal(namespace, 'default');
      return [rest, s.value];
    })
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** A halted VM: `template` gives its devices, domain fields, networks and volumes (a container disk `root` by default). */
function vm(name: string, spec: Record<string, unknown>, template: { devices?: Record<string, unknown>; domain?: Record<string, unknown>; networks?: unknown[]; volumes?: unknown[] }): KObject {
  const { devices = { disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, domain = {}, volumes = [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }], networks } = template;
  return {
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', metadata: { name, namespace: 'default' },
    spec: { runStrategy: 'Halted', ...spec, template: { spec: { domain: { devices, ...domain }, volumes, ...(networks === undefined ? {} : { networks }) } } },
  };
}

const sorted = (rows: [Record<string, string>, number][]): [Record<string, string>, number][] => rows.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

test('a VM\'s vNICs, resource requests and limits, and the claims of its disks, as KubeVirt reports them', async () => {
  const claim = (name: string, size: string, volumeMode?: string): KObject => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'default' },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: size } }, ...(volumeMode === undefined ? {} : { volumeMode }) },
  });
  await client.create(resources.persistentVolumeClaims, claim('inv-data', '1Gi', 'Block'));
  // The DataVolume's claim is bigger than the VM's DataVolume template asks: KubeVirt reports the template's size (and the API defaults volumeMode to Filesystem, as Kubernetes does).
  await client.create(resources.persistentVolumeClaims, claim('inv-dv', '3Gi'));
  await client.create(resources.virtualMachines, vm('inv-full', {
    dataVolumeTemplates: [{ metadata: { name: 'inv-dv' }, spec: { storage: { resources: { requests: { storage: '2Gi' } } }, source: { blank: {} } } }],
  }, {
    devices: {
      disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }, { name: 'dv', disk: { bus: 'virtio' } }, { name: 'gone', disk: { bus: 'virtio' } }],
      interfaces: [{ name: 'default', masquerade: {} }, { name: 'blue', bridge: {}, model: 'e1000' }],
    },
    domain: {
      cpu: { cores: 2, sockets: 1, threads: 2 },
      memory: { guest: '200Mi' },
      resources: { requests: { memory: '256Mi', cpu: '500m' }, limits: { memory: '512Mi', cpu: '1500m' } },
    },
    networks: [{ name: 'default', pod: {} }, { name: 'blue', multus: { networkName: 'blue-net' } }],
    volumes: [
      { name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } },
      { name: 'data', persistentVolumeClaim: { claimName: 'inv-data' } },
      { name: 'dv', dataVolume: { name: 'inv-dv' } },
      // A claim that does not exist yet has no size to report: KubeVirt leaves it out.
      { name: 'gone', persistentVolumeClaim: { claimName: 'inv-missing' } },
    ],
  }));
  await client.create(resources.virtualMachines, vm('inv-bare', {}, { domain: { memory: { guest: '128Mi' } } }));
  await client.create(resources.clusterInstancetypes, { apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineClusterInstancetype', metadata: { name: 'inv-medium' }, spec: { cpu: { guest: 3 }, memory: { guest: '384Mi' } } });
  await client.create(resources.virtualMachines, vm('inv-typed', { instancetype: { name: 'inv-medium' } }, {}));

  const samples = await eventually(async () => {
    const scraped = await scrape();
    const seen = new Set(scraped.filter((s) => s.name === 'kubevirt_vm_resource_requests').map((s) => s.labels.name));
    return ['inv-full', 'inv-bare', 'inv-typed'].every((n) => seen.has(n)) && scraped.some((s) => s.name === 'kubevirt_vm_disk_allocated_size_bytes' && s.labels.name === 'inv-full') ? scraped : undefined;
  }, { what: 'the metrics informers saw the VMs and claims' });

  assert.deepEqual(series(samples, 'kubevirt_vm_vnic_info', 'inv-full'), sorted([
    [{ vnic_name: 'default', binding_type: 'core', network: 'pod networking', binding_name: 'masquerade', model: '<none>' }, 1],
    [{ vnic_name: 'blue', binding_type: 'core', network: 'blue-net', binding_name: 'bridge', model: 'e1000' }, 1],
  ]));
  const mi = 2 ** 20;
  assert.deepEqual(series(samples, 'kubevirt_vm_resource_requests', 'inv-full'), sorted([
    [{ resource: 'memory', unit: 'bytes', source: 'domain' }, 256 * mi],
    [{ resource: 'memory', unit: 'bytes', source: 'guest' }, 200 * mi],
    [{ resource: 'memory', unit: 'bytes', source: 'guest_effective' }, 200 * mi],
    [{ resource: 'cpu', unit: 'cores', source: 'domain' }, 2],
    [{ resource: 'cpu', unit: 'threads', source: 'domain' }, 2],
    [{ resource: 'cpu', unit: 'sockets', source: 'domain' }, 1],
    [{ resource: 'cpu', unit: 'cores', source: 'requests' }, 0.5],
    [{ resource: 'cpu', unit: 'cores', source: 'guest_effective' }, 4],
  ]));
  assert.deepEqual(series(samples, 'kubevirt_vm_resource_limits', 'inv-full'), sorted([
    [{ resource: 'memory', unit: 'bytes' }, 512 * mi],
    [{ resource: 'cpu', unit: 'cores' }, 1.5],
  ]));
  assert.deepEqual(series(samples, 'kubevirt_vm_disk_allocated_size_bytes', 'inv-full'), sorted([
    [{ persistentvolumeclaim: 'inv-data', volume_mode: 'Block', device: 'data' }, 2 ** 30],
    [{ persistentvolumeclaim: 'inv-dv', volume_mode: 'Filesystem', device: 'dv' }, 2 * 2 ** 30],
  ]));

  // Neither CPU requests nor a CPU topology: KubeVirt's 1/1/1 default; no limits at all.
  assert.deepEqual(series(samples, 'kubevirt_vm_resource_requests', 'inv-bare'), sorted([
    [{ resource: 'memory', unit: 'bytes', source: 'guest' }, 128 * mi],
    [{ resource: 'memory', unit: 'bytes', source: 'guest_effective' }, 128 * mi],
    [{ resource: 'cpu', unit: 'cores', source: 'default' }, 1],
    [{ resource: 'cpu', unit: 'threads', source: 'default' }, 1],
    [{ resource: 'cpu', unit: 'sockets', source: 'default' }, 1],
    [{ resource: 'cpu', unit: 'cores', source: 'guest_effective' }, 1],
  ]));
  assert.deepEqual(series(samples, 'kubevirt_vm_resource_limits', 'inv-bare'), []);
  assert.deepEqual(series(samples, 'kubevirt_vm_disk_allocated_size_bytes', 'inv-bare'), []);

  // The instancetype is applied first, as KubeVirt's collector does: its 3 vCPUs (as sockets) and its guest memory.
  const typed = series(samples, 'kubevirt_vm_resource_requests', 'inv-typed');
  assert.deepEqual(typed.filter(([l]) => l.source === 'guest_effective'), sorted([
    [{ resource: 'memory', unit: 'bytes', source: 'guest_effective' }, 384 * mi],
    [{ resource: 'cpu', unit: 'cores', source: 'guest_effective' }, 3],
  ]));
  assert.ok(typed.some(([l, v]) => l.source === 'guest' && v === 384 * mi), JSON.stringify(typed));

  // A claim deleted leaves the family.
  await client.delete(resources.persistentVolumeClaims, 'default', 'inv-data');
  await eventually(async () => series(await scrape(), 'kubevirt_vm_disk_allocated_size_bytes', 'inv-full').length === 1, { what: 'the deleted claim leaves kubevirt_vm_disk_allocated_size_bytes' });
});

test('a VMI\'s status addresses and vNICs, as KubeVirt reports them', async () => {
  await client.create(resources.virtualMachineInstances, {
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'inv-vmi', namespace: 'default' },
    spec: {
      domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [{ name: 'default', masquerade: {}, model: 'virtio' }, { name: 'blue', binding: { name: 'passt' } }] }, memory: { guest: '128Mi' } },
      networks: [{ name: 'default', pod: {} }, { name: 'blue', multus: { networkName: 'blue-net' } }],
      volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
    },
  });
  await client.patch(resources.virtualMachineInstances, 'default', 'inv-vmi', 'merge', {
    status: {
      nodeName: 'node-a',
      interfaces: [
        { name: 'default', interfaceName: 'eth0', ipAddress: '10.244.0.5', ipAddresses: ['10.244.0.5', 'fd00::5'] },
        // No address yet: KubeVirt reports it as a SystemInterface.
        { name: 'blue', interfaceName: 'eth1' },
        // Neither a name nor an address: left out.
        { mac: '52:54:00:00:00:09' },
      ],
    },
  });
  const samples = await eventually(async () => {
    const scraped = await scrape();
    return scraped.filter((s) => s.name === 'kubevirt_vmi_status_addresses' && s.labels.name === 'inv-vmi').length === 2 ? scraped : undefined;
  }, { what: 'the VMI\'s interfaces show in kubevirt_vmi_status_addresses' });
  assert.deepEqual(series(samples, 'kubevirt_vmi_status_addresses', 'inv-vmi'), sorted([
    [{ node: 'node-a', vnic_name: 'default', interface_name: 'eth0', address: '10.244.0.5', type: 'ExternalInterface' }, 1],
    [{ node: 'node-a', vnic_name: 'blue', interface_name: 'eth1', address: '', type: 'SystemInterface' }, 1],
  ]));
  assert.deepEqual(series(samples, 'kubevirt_vmi_vnic_info', 'inv-vmi'), sorted([
    [{ vnic_name: 'default', binding_type: 'core', network: 'pod networking', binding_name: 'masquerade', model: 'virtio' }, 1],
    [{ vnic_name: 'blue', binding_type: 'plugin', network: 'blue-net', binding_name: 'passt', model: '<none>' }, 1],
  ]));
});
