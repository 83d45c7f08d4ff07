/**
 * Core `v1` kinds served by Vireo itself, with the columns and cells of
 * Kubernetes' printers (`pkg/printers/internalversion/printers.go`): what
 * `kubectl get` shows for them on a real cluster.
 */
import type { KObject } from '../object.js';
import type { BuiltinResourceDef } from './builtin-def.js';
import { ageCell, ageColumn, builtinResource, column, nameColumn, sinceCell } from './builtin-def.js';
import { formatLabels } from './format.js';
import { arrayAt, keyCountAt, numberAt, recordAt, recordsAt, stringAt, stringMapAt, booleanAt } from './read.js';

/** `v1 Namespace`: NAME STATUS AGE. */
export function namespaceResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'Namespace',
    plural: 'namespaces',
    namespaced: false,
    shortNames: ['ns'],
    status: true,
    model: 'IoK8sApiCoreV1Namespace',
    columns: [column('Status', '.status.phase', 'The status of the namespace'), ageColumn],
    printRow: (obj, now) => [stringAt(obj, 'status', 'phase') ?? '', ageCell(obj, now)],
  });
}

/** `v1 Node`: NAME STATUS ROLES AGE VERSION, wide adds addresses and node info. */
export function nodeResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'Node',
    plural: 'nodes',
    namespaced: false,
    shortNames: ['no'],
    status: true,
    model: 'IoK8sApiCoreV1Node',
    columns: [
      column('Status', ".status.conditions[?(@.type=='Ready')].status", 'The status of the node'),
      column('Roles', '.metadata.labels', 'The roles of the node'),
      ageColumn,
      column('Version', '.status.nodeInfo.kubeletVersion', 'Kubelet version reported by the node.'),
      column('Internal-IP', '.status.addresses', 'First InternalIP address of the node.', 1),
      column('External-IP', '.status.addresses', 'First ExternalIP address of the node.', 1),
      column('OS-Image', '.status.nodeInfo.osImage', 'OS image reported by the node.', 1),
      column('Kernel-Version', '.status.nodeInfo.kernelVersion', 'Kernel version reported by the node.', 1),
      column('Container-Runtime', '.status.nodeInfo.containerRuntimeVersion', 'Runtime version reported by the node.', 1),
    ],
    printRow: (obj, now) => [
      nodeStatus(obj),
      nodeRoles(obj),
      ageCell(obj, now),
      stringAt(obj, 'status', 'nodeInfo', 'kubeletVersion') ?? '',
      nodeAddress(obj, 'InternalIP'),
      nodeAddress(obj, 'ExternalIP'),
      nodeInfoOrUnknown(obj, 'osImage'),
      nodeInfoOrUnknown(obj, 'kernelVersion'),
      nodeInfoOrUnknown(obj, 'containerRuntimeVersion'),
    ],
  });
}

function nodeStatus(node: KObject): string {
  const ready = recordsAt(node, 'status', 'conditions').find((c) => c['type'] === 'Ready');
  const status = ready === undefined ? ['Unknown'] : [ready['status'] === 'True' ? 'Ready' : 'NotReady'];
  if (booleanAt(node, 'spec', 'unschedulable') === true) status.push('SchedulingDisabled');
  return status.join(',');
}

function nodeRoles(node: KObject): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/')) {
      const role = key.slice('node-role.kubernetes.io/'.length);
      if (role !== '') roles.add(role);
    } else if (key === 'kubernetes.io/role' && value !== '') {
      roles.add(value);
    }
  }
  return roles.size === 0 ? '<none>' : [...roles].sort().join(',');
}

function nodeAddress(node: KObject, type: string): string {
  const address = recordsAt(node, 'status', 'addresses').find((a) => a['type'] === type);
  const value = address?.['address'];
  return typeof value === 'string' ? value : '<none>';
}

function nodeInfoOrUnknown(node: KObject, field: string): string {
  const value = stringAt(node, 'status', 'nodeInfo', field);
  return value === undefined || value === '' ? '<unknown>' : value;
}

/**
 * `v1 Event`: LAST SEEN TYPE REASON OBJECT MESSAGE; wide adds SUBOBJECT
 * SOURCE FIRST SEEN COUNT. (Kubernetes lists NAME last and wide-only; the
 * table builder always puts it first.)
 */
export function eventResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'Event',
    plural: 'events',
    namespaced: true,
    shortNames: ['ev'],
    model: 'IoK8sApiCoreV1Event',
    columns: [
      column('Last Seen', '.lastTimestamp', 'Time since the event was last observed.'),
      column('Type', '.type', 'Type of this event (Normal, Warning).'),
      column('Reason', '.reason', 'Short, machine-understandable reason for the event.'),
      column('Object', '.involvedObject', 'The object this event is about.'),
      column('Subobject', '.involvedObject.fieldPath', 'Part of the object the event is about.', 1),
      column('Source', '.source', 'The component reporting this event.', 1),
      column('Message', '.message', 'Human-readable description of the event.'),
      column('First Seen', '.firstTimestamp', 'Time since the event was first observed.', 1),
      column('Count', '.count', 'Number of times this event has occurred.', 1),
      nameColumn(1),
    ],
    printsName: true,
    printRow: (obj, now) => {
      const firstSeen = nonEmpty(stringAt(obj, 'firstTimestamp')) ?? stringAt(obj, 'eventTime');
      const series = recordAt(obj, 'series');
      const lastSeen = series !== undefined ? stringAt(series, 'lastObservedTime') : (nonEmpty(stringAt(obj, 'lastTimestamp')) ?? firstSeen);
      // Events written through events.k8s.io carry no count when they happened once.
      const count = series !== undefined ? (numberAt(series, 'count') ?? 0) : numberAt(obj, 'count') || 1;
      return [
        sinceCell(lastSeen, now),
        stringAt(obj, 'type') ?? '',
        stringAt(obj, 'reason') ?? '',
        eventTarget(obj),
        stringAt(obj, 'involvedObject', 'fieldPath') ?? '',
        eventSource(obj),
        (stringAt(obj, 'message') ?? '').trim(),
        sinceCell(firstSeen, now),
        count,
        obj.metadata.name ?? '',
      ];
    },
  });
}

function eventTarget(event: KObject): string {
  const kind = (stringAt(event, 'involvedObject', 'kind') ?? '').toLowerCase();
  const name = stringAt(event, 'involvedObject', 'name') ?? '';
  return name === '' ? kind : `${kind}/${name}`;
}

function eventSource(event: KObject): string {
  const component = nonEmpty(stringAt(event, 'source', 'component')) ?? stringAt(event, 'reportingComponent') ?? '';
  const instance = nonEmpty(stringAt(event, 'source', 'host')) ?? stringAt(event, 'reportingInstance') ?? '';
  return instance === '' ? component : `${component}, ${instance}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === '' ? undefined : value;
}

/** `v1 ConfigMap`: NAME DATA AGE (DATA counts `data` and `binaryData` keys). */
export function configMapResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'ConfigMap',
    plural: 'configmaps',
    namespaced: true,
    shortNames: ['cm'],
    model: 'IoK8sApiCoreV1ConfigMap',
    columns: [column('Data', '.data', 'Number of data and binaryData entries.'), ageColumn],
    printRow: (obj, now) => [keyCountAt(obj, 'data') + keyCountAt(obj, 'binaryData'), ageCell(obj, now)],
  });
}

/** `v1 Secret`: NAME TYPE DATA AGE. */
export function secretResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'Secret',
    plural: 'secrets',
    namespaced: true,
    model: 'IoK8sApiCoreV1Secret',
    columns: [
      column('Type', '.type', 'Used to facilitate programmatic handling of secret data.'),
      column('Data', '.data', 'Number of data entries.'),
      ageColumn,
    ],
    printRow: (obj, now) => [stringAt(obj, 'type') ?? '', keyCountAt(obj, 'data'), ageCell(obj, now)],
  });
}

/** `v1 ServiceAccount`: NAME SECRETS AGE. */
export function serviceAccountResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'ServiceAccount',
    plural: 'serviceaccounts',
    namespaced: true,
    shortNames: ['sa'],
    model: 'IoK8sApiCoreV1ServiceAccount',
    columns: [column('Secrets', '.secrets', 'Number of secrets listed on the account.'), ageColumn],
    printRow: (obj, now) => [arrayAt(obj, 'secrets').length, ageCell(obj, now)],
  });
}

/** `v1 Service`: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE, wide adds SELECTOR. */
export function serviceResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'Service',
    plural: 'services',
    namespaced: true,
    shortNames: ['svc'],
    categories: ['all'],
    status: true,
    model: 'IoK8sApiCoreV1Service',
    columns: [
      column('Type', '.spec.type', 'How the Service is exposed.'),
      column('Cluster-IP', '.spec.clusterIPs', 'The cluster-internal IP of the Service.'),
      column('External-IP', '.spec.externalIPs', 'Addresses the Service is reachable on from outside the cluster.'),
      column('Port(s)', '.spec.ports', 'Ports the Service exposes.'),
      ageColumn,
      column('Selector', '.spec.selector', 'Labels of the endpoints the Service routes to.', 1),
    ],
    printRow: (obj, now) => {
      const ports = servicePorts(obj);
      return [
        stringAt(obj, 'spec', 'type') ?? '',
        serviceClusterIP(obj),
        serviceExternalIP(obj),
        ports === '' ? '<none>' : ports,
        ageCell(obj, now),
        formatLabels(stringMapAt(obj, 'spec', 'selector')),
      ];
    },
  });
}

function serviceClusterIP(svc: KObject): string {
  const first = arrayAt(svc, 'spec', 'clusterIPs')[0];
  if (typeof first === 'string') return first;
  return stringAt(svc, 'spec', 'clusterIP') ?? '<none>';
}

function serviceExternalIP(svc: KObject): string {
  const externalIPs = arrayAt(svc, 'spec', 'externalIPs').filter((ip): ip is string => typeof ip === 'string');
  switch (stringAt(svc, 'spec', 'type')) {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length > 0 ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      const ingress = new Set<string>();
      for (const entry of recordsAt(svc, 'status', 'loadBalancer', 'ingress')) {
        const address = nonEmpty(stringAt(entry, 'ip')) ?? nonEmpty(stringAt(entry, 'hostname'));
        if (address !== undefined) ingress.add(address);
      }
      const all = [...[...ingress].sort(), ...externalIPs];
      return all.length > 0 ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return stringAt(svc, 'spec', 'externalName') ?? '';
    default:
      return '<unknown>';
  }
}

function servicePorts(svc: KObject): string {
  return recordsAt(svc, 'spec', 'ports')
    .map((port) => {
      const number = numberAt(port, 'port') ?? 0;
      const protocol = stringAt(port, 'protocol') ?? 'TCP';
      const nodePort = numberAt(port, 'nodePort') ?? 0;
      return nodePort > 0 ? `${number}:${nodePort}/${protocol}` : `${number}/${protocol}`;
    })
    .join(',');
}
