/**
 * `v1 Endpoints` and `discovery.k8s.io/v1 EndpointSlice`, the addresses
 * behind a Service, printed as Kubernetes' printers print them
 * (`formatEndpoints`, `formatDiscoveryPorts`, `formatDiscoveryEndpoints`).
 * Vireo's endpoints controller writes them for Services with a selector.
 */
import type { KObject } from '../object.js';
import type { BuiltinResourceDef } from './builtin-def.js';
import { ageCell, ageColumn, builtinResource, column } from './builtin-def.js';
import { arrayAt, numberAt, recordsAt, stringAt } from './read.js';

/** At most this many addresses or ports in a cell, then "+ N more...". */
const shownInCell = 3;

/** `v1 Endpoints`: NAME ENDPOINTS AGE. */
export function endpointsResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'Endpoints',
    plural: 'endpoints',
    namespaced: true,
    shortNames: ['ep'],
    model: 'IoK8sApiCoreV1Endpoints',
    columns: [column('Endpoints', '.subsets', 'Endpoints of the service.'), ageColumn],
    printRow: (obj, now) => [endpointsCell(obj), ageCell(obj, now)],
  });
}

/** `discovery.k8s.io/v1 EndpointSlice`: NAME ADDRESSTYPE PORTS ENDPOINTS AGE. */
export function endpointSliceResource(): BuiltinResourceDef {
  return builtinResource({
    group: 'discovery.k8s.io',
    version: 'v1',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    namespaced: true,
    model: 'IoK8sApiDiscoveryV1EndpointSlice',
    columns: [
      column('AddressType', '.addressType', 'The type of addresses the slice holds.'),
      column('Ports', '.ports', 'Ports of the endpoints.'),
      column('Endpoints', '.endpoints', 'Addresses of the endpoints.'),
      ageColumn,
    ],
    printRow: (obj, now) => [stringAt(obj, 'addressType') ?? '', slicePortsCell(obj), sliceEndpointsCell(obj), ageCell(obj, now)],
  });
}

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

function endpointsCell(obj: KObject): string {
  const subsets = recordsAt(obj, 'subsets');
  if (subsets.length === 0) return '<none>';
  const list: string[] = [];
  let count = 0;
  for (const subset of subsets) {
    const ips = recordsAt(subset, 'addresses').map((a) => stringAt(a, 'ip') ?? '');
    const ports = recordsAt(subset, 'ports');
    if (ports.length === 0) {
      count += ips.length;
      for (const ip of ips) if (list.length < shownInCell) list.push(ip);
      continue;
    }
    for (const port of ports) {
      count += ips.length;
      for (const ip of ips) if (list.length < shownInCell) list.push(hostPort(ip, numberAt(port, 'port') ?? 0));
    }
  }
  return withMore(list, count, '');
}

function slicePortsCell(obj: KObject): string {
  const list = recordsAt(obj, 'ports').map((port) => {
    const number = numberAt(port, 'port');
    return number !== undefined ? String(number) : (stringAt(port, 'name') ?? '*');
  });
  return withMore(list.slice(0, shownInCell), list.length, '<unset>');
}

function sliceEndpointsCell(obj: KObject): string {
  const list = recordsAt(obj, 'endpoints').flatMap((endpoint) => arrayAt(endpoint, 'addresses').filter((a): a is string => typeof a === 'string'));
  return withMore(list.slice(0, shownInCell), list.length, '<unset>');
}

function withMore(list: string[], count: number, empty: string): string {
  const text = list.join(',');
  if (count > list.length) return `${text} + ${count - list.length} more...`;
  return text === '' ? empty : text;
}
