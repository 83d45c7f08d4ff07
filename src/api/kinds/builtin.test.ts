import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { hasModel } from '../models.js';
import { buildTable } from '../table.js';
import { builtinResources } from './builtin.js';
import type { BuiltinResourceDef } from './builtin-def.js';

const now = new Date('2025-01-01T12:00:00Z');
const fiveMinutesAgo = '2025-01-01T11:55:00Z';

function def(kind: string): BuiltinResourceDef {
  const found = builtinResources().find((d) => d.kind === kind);
  assert.ok(found, `no built-in ${kind}`);
  return found;
}

function obj(apiVersion: string, kind: string, fields: Record<string, unknown>, metadata: KObject['metadata'] = {}): KObject {
  return { apiVersion, kind, metadata: { name: 'x', creationTimestamp: fiveMinutesAgo, ...metadata }, ...fields };
}

/** The cells after Name, keyed by column name, as the table shows them. */
function cells(kind: string, o: KObject): Record<string, unknown> {
  const d = def(kind);
  const row = d.printRow(o, now);
  assert.equal(row.length, d.printerColumns.length, `${kind}: one cell per column`);
  return Object.fromEntries(d.printerColumns.map((c, i) => [c.name, row[i]]));
}

test('built-in kinds have Kubernetes names, scopes, short names and categories', () => {
  const expected: [string, string, string, boolean, string[], string[], boolean][] = [
    ['', 'Namespace', 'namespaces', false, ['ns'], [], true],
    ['', 'Node', 'nodes', false, ['no'], [], true],
    ['', 'Event', 'events', true, ['ev'], [], false],
    ['', 'ConfigMap', 'configmaps', true, ['cm'], [], false],
    ['', 'Secret', 'secrets', true, [], [], false],
    ['', 'ServiceAccount', 'serviceaccounts', true, ['sa'], [], false],
    ['', 'Service', 'services', true, ['svc'], ['all'], true],
    ['', 'Endpoints', 'endpoints', true, ['ep'], [], false],
    ['discovery.k8s.io', 'EndpointSlice', 'endpointslices', true, [], [], false],
    ['', 'PersistentVolume', 'persistentvolumes', false, ['pv'], [], true],
    ['', 'PersistentVolumeClaim', 'persistentvolumeclaims', true, ['pvc'], [], true],
    ['storage.k8s.io', 'StorageClass', 'storageclasses', false, ['sc'], [], false],
    ['coordination.k8s.io', 'Lease', 'leases', true, [], [], false],
    ['apiextensions.k8s.io', 'CustomResourceDefinition', 'customresourcedefinitions', false, ['crd', 'crds'], ['api-extensions'], true],
    ['networking.k8s.io', 'NetworkPolicy', 'networkpolicies', true, ['netpol'], [], false],
    ['scheduling.k8s.io', 'PriorityClass', 'priorityclasses', false, ['pc'], [], false],
  ];
  const defs = builtinResources();
  assert.equal(defs.length, expected.length);
  for (const [group, kind, plural, namespaced, shortNames, categories, status] of expected) {
    const d = defs.find((x) => x.kind === kind);
    assert.ok(d, kind);
    assert.deepEqual(
      [d.group, d.version, d.plural, d.singular, d.listKind, d.namespaced, d.shortNames, d.categories, d.subresources.status, d.builtin],
      [group, 'v1', plural, kind.toLowerCase(), `${kind}List`, namespaced, shortNames, categories, status, true],
      kind,
    );
  }
});

test('columns (after NAME, unless the kind prints the name itself) match kubectl get on a real cluster', () => {
  const expected: Record<string, [string[], string[]]> = {
    Namespace: [['Status', 'Age'], []],
    Node: [['Status', 'Roles', 'Age', 'Version'], ['Internal-IP', 'External-IP', 'OS-Image', 'Kernel-Version', 'Container-Runtime']],
    Event: [['Last Seen', 'Type', 'Reason', 'Object', 'Message'], ['Subobject', 'Source', 'First Seen', 'Count', 'Name']],
    ConfigMap: [['Data', 'Age'], []],
    Secret: [['Type', 'Data', 'Age'], []],
    ServiceAccount: [['Secrets', 'Age'], []],
    Service: [['Type', 'Cluster-IP', 'External-IP', 'Port(s)', 'Age'], ['Selector']],
    Endpoints: [['Endpoints', 'Age'], []],
    EndpointSlice: [['AddressType', 'Ports', 'Endpoints', 'Age'], []],
    PersistentVolume: [
      ['Capacity', 'Access Modes', 'Reclaim Policy', 'Status', 'Claim', 'StorageClass', 'VolumeAttributesClass', 'Reason', 'Age'],
      ['VolumeMode'],
    ],
    PersistentVolumeClaim: [['Status', 'Volume', 'Capacity', 'Access Modes', 'StorageClass', 'VolumeAttributesClass', 'Age'], ['VolumeMode']],
    StorageClass: [['Name', 'Provisioner', 'ReclaimPolicy', 'VolumeBindingMode', 'AllowVolumeExpansion', 'Age'], []],
    Lease: [['Holder', 'Age'], []],
    CustomResourceDefinition: [['Created At'], []],
    NetworkPolicy: [['Pod-Selector', 'Age'], []],
    PriorityClass: [['Value', 'Global-Default', 'Age', 'PreemptionPolicy'], []],
  };
  for (const d of builtinResources()) {
    const [normal, wide] = expected[d.kind] ?? [[], []];
    assert.deepEqual(d.printerColumns.filter((c) => (c.priority ?? 0) === 0).map((c) => c.name), normal, d.kind);
    assert.deepEqual(d.printerColumns.filter((c) => (c.priority ?? 0) > 0).map((c) => c.name), wide, `${d.kind} wide`);
  }
});

test('every printRow copes with an object that has nothing but metadata', () => {
  for (const d of builtinResources()) {
    const row = d.printRow({ apiVersion: 'v1', kind: d.kind, metadata: { name: 'bare' } }, now);
    assert.equal(row.length, d.printerColumns.length, d.kind);
  }
});

test('Namespace, ConfigMap, Secret and ServiceAccount rows', () => {
  assert.deepEqual(cells('Namespace', obj('v1', 'Namespace', { status: { phase: 'Active' } })), { Status: 'Active', Age: '5m' });
  assert.deepEqual(cells('ConfigMap', obj('v1', 'ConfigMap', { data: { a: '1', b: '2' }, binaryData: { c: 'AA==' } })), { Data: 3, Age: '5m' });
  assert.deepEqual(cells('Secret', obj('v1', 'Secret', { type: 'Opaque', data: { u: 'dQ==' } })), { Type: 'Opaque', Data: 1, Age: '5m' });
  assert.deepEqual(cells('ServiceAccount', obj('v1', 'ServiceAccount', { secrets: [{ name: 't' }] })), { Secrets: 1, Age: '5m' });
});

test('Node row: readiness, roles, scheduling and wide node info', () => {
  const node = obj(
    'v1',
    'Node',
    {
      spec: { unschedulable: true },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'Hostname', address: 'h1' }, { type: 'InternalIP', address: '10.0.0.5' }],
        nodeInfo: { kubeletVersion: 'v1.32.0', osImage: 'Debian GNU/Linux 13', kernelVersion: '6.12.0', containerRuntimeVersion: '' },
      },
    },
    { labels: { 'node-role.kubernetes.io/control-plane': '', 'node-role.kubernetes.io/worker': '', 'kubernetes.io/role': 'edge' } },
  );
  assert.deepEqual(cells('Node', node), {
    Status: 'Ready,SchedulingDisabled',
    Roles: 'control-plane,edge,worker',
    Age: '5m',
    Version: 'v1.32.0',
    'Internal-IP': '10.0.0.5',
    'External-IP': '<none>',
    'OS-Image': 'Debian GNU/Linux 13',
    'Kernel-Version': '6.12.0',
    'Container-Runtime': '<unknown>',
  });
  const notReady = cells('Node', obj('v1', 'Node', { status: { conditions: [{ type: 'Ready', status: 'Unknown' }] } }));
  assert.equal(notReady['Status'], 'NotReady');
  assert.equal(notReady['Roles'], '<none>');
  assert.equal(cells('Node', obj('v1', 'Node', {}))['Status'], 'Unknown');
});

test('Service rows per type', () => {
  const clusterIP = cells(
    'Service',
    obj('v1', 'Service', {
      spec: { type: 'ClusterIP', clusterIPs: ['10.96.0.10'], ports: [{ port: 53, protocol: 'UDP' }, { port: 443 }], selector: { b: '2', a: '1' } },
    }),
  );
  assert.deepEqual(clusterIP, {
    Type: 'ClusterIP',
    'Cluster-IP': '10.96.0.10',
    'External-IP': '<none>',
    'Port(s)': '53/UDP,443/TCP',
    Age: '5m',
    Selector: 'a=1,b=2',
  });
  const nodePort = cells('Service', obj('v1', 'Service', { spec: { type: 'NodePort', clusterIP: 'None', ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] } }));
  assert.equal(nodePort['Cluster-IP'], 'None');
  assert.equal(nodePort['Port(s)'], '80:30080/TCP');
  assert.equal(nodePort['Selector'], '<none>');
  const pending = cells('Service', obj('v1', 'Service', { spec: { type: 'LoadBalancer' } }));
  assert.equal(pending['External-IP'], '<pending>');
  assert.equal(pending['Port(s)'], '<none>');
  const lb = cells(
    'Service',
    obj('v1', 'Service', { spec: { type: 'LoadBalancer', externalIPs: ['1.1.1.1'] }, status: { loadBalancer: { ingress: [{ ip: '9.9.9.9' }, { hostname: 'lb.example' }] } } }),
  );
  assert.equal(lb['External-IP'], '9.9.9.9,lb.example,1.1.1.1');
  assert.equal(cells('Service', obj('v1', 'Service', { spec: { type: 'ExternalName', externalName: 'db.example' } }))['External-IP'], 'db.example');
});

test('Event row: ages, target, source and count as kubectl get events shows them', () => {
  const event = obj('v1', 'Event', {
    type: 'Warning',
    reason: 'FailedScheduling',
    message: '  0/1 nodes are available \n',
    involvedObject: { kind: 'VirtualMachineInstance', name: 'vmi1', fieldPath: 'spec' },
    source: { component: 'scheduler', host: '' },
    reportingInstance: 'node1',
    firstTimestamp: '2025-01-01T11:00:00Z',
    lastTimestamp: '2025-01-01T11:58:00Z',
  });
  assert.deepEqual(cells('Event', event), {
    'Last Seen': '2m',
    Type: 'Warning',
    Reason: 'FailedScheduling',
    Object: 'virtualmachineinstance/vmi1',
    Subobject: 'spec',
    Source: 'scheduler, node1',
    Message: '0/1 nodes are available',
    'First Seen': '60m',
    Count: 1,
    Name: event.metadata.name,
  });
  const series = cells('Event', obj('v1', 'Event', { eventTime: '2025-01-01T11:00:00.000000Z', series: { count: 7, lastObservedTime: '2025-01-01T11:59:30.000000Z' } }));
  assert.equal(series['Last Seen'], '30s');
  assert.equal(series['First Seen'], '60m');
  assert.equal(series['Count'], 7);
  assert.equal(cells('Event', obj('v1', 'Event', {}))['Last Seen'], '<unknown>');
});

test('PersistentVolume and PersistentVolumeClaim rows', () => {
  const pv = cells(
    'PersistentVolume',
    obj('v1', 'PersistentVolume', {
      spec: {
        capacity: { storage: '10Gi' },
        accessModes: ['ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Delete',
        claimRef: { namespace: 'default', name: 'data' },
        storageClassName: 'local',
        volumeMode: 'Block',
      },
      status: { phase: 'Bound' },
    }),
  );
  assert.deepEqual(pv, {
    Capacity: '10Gi',
    'Access Modes': 'RWO,RWX',
    'Reclaim Policy': 'Delete',
    Status: 'Bound',
    Claim: 'default/data',
    StorageClass: 'local',
    VolumeAttributesClass: '<unset>',
    Reason: '',
    Age: '5m',
    VolumeMode: 'Block',
  });
  const pending = cells('PersistentVolumeClaim', obj('v1', 'PersistentVolumeClaim', { spec: { storageClassName: 'local' }, status: { phase: 'Pending' } }));
  assert.deepEqual(pending, {
    Status: 'Pending',
    Volume: '',
    Capacity: '',
    'Access Modes': '',
    StorageClass: 'local',
    VolumeAttributesClass: '<unset>',
    Age: '5m',
    VolumeMode: '<unset>',
  });
  const bound = cells(
    'PersistentVolumeClaim',
    obj(
      'v1',
      'PersistentVolumeClaim',
      { spec: { volumeName: 'pv-1', storageClassName: 'ignored', volumeMode: 'Filesystem' }, status: { phase: 'Bound', capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOncePod'] } },
      { annotations: { 'volume.beta.kubernetes.io/storage-class': 'beta' }, deletionTimestamp: '2025-01-01T12:00:00Z' },
    ),
  );
  assert.equal(bound['Status'], 'Terminating');
  assert.equal(bound['Capacity'], '1Gi');
  assert.equal(bound['Access Modes'], 'RWOP');
  assert.equal(bound['StorageClass'], 'beta');
});

test('StorageClass, Lease, CRD, NetworkPolicy and PriorityClass rows', () => {
  const sc = obj('storage.k8s.io/v1', 'StorageClass', { provisioner: 'vireo.io/local' });
  assert.deepEqual(cells('StorageClass', sc), {
    Name: sc.metadata.name,
    Provisioner: 'vireo.io/local',
    ReclaimPolicy: 'Delete',
    VolumeBindingMode: 'Immediate',
    AllowVolumeExpansion: false,
    Age: '5m',
  });
  sc.metadata.annotations = { 'storageclass.kubernetes.io/is-default-class': 'true' };
  assert.equal(cells('StorageClass', sc)['Name'], `${sc.metadata.name ?? ''} (default)`);
  assert.deepEqual(cells('Lease', obj('coordination.k8s.io/v1', 'Lease', { spec: { holderIdentity: 'server-1' } })), { Holder: 'server-1', Age: '5m' });
  assert.deepEqual(cells('CustomResourceDefinition', obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition', {}, { creationTimestamp: '2025-01-01T11:55:00.123Z' })), {
    'Created At': '2025-01-01T11:55:00Z',
  });
  const everyPod = cells('NetworkPolicy', obj('networking.k8s.io/v1', 'NetworkPolicy', { spec: { podSelector: {} } }));
  assert.equal(everyPod['Pod-Selector'], '<none>');
  const selected = cells(
    'NetworkPolicy',
    obj('networking.k8s.io/v1', 'NetworkPolicy', {
      spec: { podSelector: { matchLabels: { tier: 'web' }, matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] } },
    }),
  );
  assert.equal(selected['Pod-Selector'], 'env in (dev,prod),tier=web');
  assert.deepEqual(cells('PriorityClass', obj('scheduling.k8s.io/v1', 'PriorityClass', { value: 1000, preemptionPolicy: 'Never' })), {
    Value: 1000,
    'Global-Default': false,
    Age: '5m',
    PreemptionPolicy: 'Never',
  });
});

test('the table builder renders built-in rows with NAME first', () => {
  const table = buildTable(def('ConfigMap'), [obj('v1', 'ConfigMap', { data: { k: 'v' } }, { name: 'settings' })], { now });
  assert.deepEqual(
    table.columnDefinitions?.map((c) => c.name),
    ['Name', 'Data', 'Age'],
  );
  assert.deepEqual(table.rows[0]?.cells, ['settings', 1, '5m']);
});

function modelsAvailable(): boolean {
  try {
    return hasModel('IoK8sApiCoreV1Service');
  } catch {
    return false;
  }
}

const models = modelsAvailable();
test(
  models ? 'built-in schemas are the Kubernetes models, built on first read' : 'built-in schemas (skipped: OpenAPI models not generated; run node scripts/gen-api.mjs)',
  { skip: !models },
  () => {
    for (const d of builtinResources()) {
      assert.equal(d.schema?.type, 'object', d.kind);
      assert.ok(d.schema.properties?.['metadata'], d.kind);
    }
    assert.ok(def('Service').schema?.properties?.['spec']?.properties?.['ports']);
  },
);
