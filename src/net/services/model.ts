/**
 * What the service proxy programs, as a pure function of the cluster's
 * Services and EndpointSlices (kube-proxy's view of them): one
 * {@link ProxiedPort} per Service port and IP family, with its cluster IPs
 * of that family, its node port, and the endpoints traffic goes to — the
 * ready ones, else (kube-proxy's fallback for a rolling restart) those
 * still serving while they terminate. ExternalName and headless Services
 * have nothing to proxy; a Service without endpoints keeps its port here
 * with none, and the compiler rejects its traffic.
 */
import type { KObject } from '../../api/object.js';
import { ipFamilyOf } from '../../api/ip.js';
import { arrayAt, booleanAt, numberAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { isHeadless, needsNodePorts, serviceClusterIps, servicePorts, serviceType } from '../../api/kinds/service.js';

export type ServiceProtocol = 'tcp' | 'udp' | 'sctp';
export type AddressFamily = 4 | 6;

/** An address and port traffic is sent to. */
export interface ProxyEndpoint {
  address: string;
  port: number;
}

/** One port of one Service in one family. */
export interface ProxiedPort {
  namespace: string;
  service: string;
  /** The Service port's name, or its number when unnamed. */
  portName: string;
  family: AddressFamily;
  protocol: ServiceProtocol;
  clusterIps: string[];
  port: number;
  nodePort?: number;
  /** Sorted by address and port, so equal inputs compile to equal rulesets. */
  endpoints: ProxyEndpoint[];
  /** `sessionAffinity: ClientIP`: how long a client sticks to its endpoint. */
  affinitySeconds?: number;
}

const serviceNameLabel = 'kubernetes.io/service-name';
/** kube-apiserver's default for `sessionAffinityConfig.clientIP.timeoutSeconds`. */
const defaultAffinitySeconds = 10_800;

interface SliceEndpoint {
  address: string;
  port: number;
  ready: boolean;
  servingTerminating: boolean;
}

function protocolOf(text: string): ServiceProtocol | undefined {
  const lower = text.toLowerCase();
  return lower === 'tcp' || lower === 'udp' || lower === 'sctp' ? lower : undefined;
}

/** The endpoints of one Service port (by name and protocol) in one family, from the Service's slices. */
function sliceEndpoints(slices: readonly KObject[], family: AddressFamily, portName: string, protocol: ServiceProtocol): SliceEndpoint[] {
  const out: SliceEndpoint[] = [];
  for (const slice of slices) {
    const addressType = stringAt(slice, 'addressType');
    if (addressType !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
    const port = recordsAt(slice, 'ports').find((p) => (stringAt(p, 'name') ?? '') === portName && protocolOf(stringAt(p, 'protocol') ?? 'TCP') === protocol);
    const number = numberAt(port, 'port');
    if (number === undefined) continue;
    for (const endpoint of recordsAt(slice, 'endpoints')) {
      const address = arrayAt(endpoint, 'addresses').find((a): a is string => typeof a === 'string');
      if (address === undefined || ipFamilyOf(address) !== (family === 4 ? 'IPv4' : 'IPv6')) continue;
      // EndpointSlice semantics: an unset `ready` means ready; `serving` defaults to `ready`.
      const ready = booleanAt(endpoint, 'conditions', 'ready') ?? true;
      const serving = booleanAt(endpoint, 'conditions', 'serving') ?? ready;
      const terminating = booleanAt(endpoint, 'conditions', 'terminating') ?? false;
      out.push({ address, port: number, ready, servingTerminating: serving && terminating });
    }
  }
  return out;
}

function uniqueSorted(endpoints: readonly ProxyEndpoint[]): ProxyEndpoint[] {
  const byKey = new Map(endpoints.map((e) => [`${e.address}|${e.port}`, e]));
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, e]) => e);
}

/** Groups slices by the Service they belong to (`namespace/name`). */
export function slicesByService(slices: Iterable<KObject>): Map<string, KObject[]> {
  const map = new Map<string, KObject[]>();
  for (const slice of slices) {
    const service = slice.metadata.labels?.[serviceNameLabel];
    if (service === undefined) continue;
    const key = `${slice.metadata.namespace ?? ''}/${service}`;
    const list = map.get(key) ?? [];
    list.push(slice);
    map.set(key, list);
  }
  return map;
}

/** Every port the proxy programs, sorted by namespace, Service, port name and family. */
export function proxiedPorts(services: Iterable<KObject>, slices: Iterable<KObject>): ProxiedPort[] {
  const grouped = slicesByService(slices);
  const out: ProxiedPort[] = [];
  for (const svc of services) {
    if (serviceType(svc) === 'ExternalName' || isHeadless(svc)) continue;
    const namespace = svc.metadata.namespace ?? 'default';
    const name = svc.metadata.name ?? '';
    const own = grouped.get(`${namespace}/${name}`) ?? [];
    const ips = serviceClusterIps(svc);
    const affinity = stringAt(svc, 'spec', 'sessionAffinity') === 'ClientIP' ? numberAt(svc, 'spec', 'sessionAffinityConfig', 'clientIP', 'timeoutSeconds') ?? defaultAffinitySeconds : undefined;
    for (const port of servicePorts(svc)) {
      const protocol = protocolOf(port.protocol);
      if (protocol === undefined || port.port <= 0) continue;
      for (const family of [4, 6] as const) {
        const clusterIps = ips.filter((ip) => ipFamilyOf(ip) === (family === 4 ? 'IPv4' : 'IPv6'));
        if (clusterIps.length === 0) continue;
        const candidates = sliceEndpoints(own, family, port.name, protocol);
        const ready = candidates.filter((e) => e.ready);
        const chosen = ready.length > 0 ? ready : candidates.filter((e) => e.servingTerminating);
        const proxied: ProxiedPort = {
          namespace,
          service: name,
          portName: port.name === '' ? String(port.port) : port.name,
          family,
          protocol,
          clusterIps,
          port: port.port,
          endpoints: uniqueSorted(chosen.map((e) => ({ address: e.address, port: e.port }))),
        };
        if (needsNodePorts(svc) && port.nodePort !== undefined) proxied.nodePort = port.nodePort;
        if (affinity !== undefined) proxied.affinitySeconds = affinity;
        out.push(proxied);
      }
    }
  }
  const key = (p: ProxiedPort): string => `${p.namespace}/${p.service}/${p.portName}/${p.protocol}/${p.family}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
