/**
 * What a Service's `v1 Endpoints` and `discovery.k8s.io/v1 EndpointSlice`s
 * should say, as a pure function of the Service and the VMIs of its
 * namespace: the VMIs its selector picks that have a pod-network address
 * and are not finished, each with its conditions (ready: Running with
 * `Ready` True; terminating once deleted), node, `targetRef` and, for a VMI
 * whose `subdomain` names the Service, its `hostname`. Named target ports
 * resolve against the VMI's `interfaces[].ports[].name`; endpoints that
 * resolve to different ports go to different slices, as Kubernetes does.
 */
import { createHash } from 'node:crypto';
import type { KObject, OwnerReference } from '../../api/object.js';
import type { IpFamily } from '../../api/ip.js';
import { ipFamilyOf } from '../../api/ip.js';
import { labelSelectorFromObject } from '../../api/labels.js';
import { arrayAt, booleanAt, recordsAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import { servicePorts, serviceSelector } from '../../api/kinds/service.js';
import type { ServicePort } from '../../api/kinds/service.js';
import { podAddresses } from '../../api/kinds/vmi-addresses.js';
import { isFinal, isMarkedForDeletion, nodeNameOf, vmiPhase } from '../../api/kinds/vm-state.js';

export const serviceNameLabel = 'kubernetes.io/service-name';
export const managedByLabel = 'endpointslice.kubernetes.io/managed-by';
/** The value Kubernetes' own EndpointSlice controller uses: tools treat such slices as the Service's own. */
export const managedByValue = 'endpointslice-controller.k8s.io';
const headlessLabel = 'service.kubernetes.io/headless';

interface EndpointPort {
  name: string;
  port: number;
  protocol: string;
  appProtocol: string | undefined;
}

interface Endpoint {
  ip: string;
  family: IpFamily;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  vmi: KObject;
  ports: EndpointPort[];
  hostname: string | undefined;
}

/** The desired objects; the controller writes them and deletes managed slices not among them. */
export interface DesiredEndpoints {
  endpoints: KObject;
  slices: KObject[];
}

/** True for the VMIs `svc` selects (its namespace, its selector). */
export function selects(svc: KObject, vmi: KObject): boolean {
  const selector = serviceSelector(svc);
  if (Object.keys(selector).length === 0 || vmi.metadata.namespace !== svc.metadata.namespace) return false;
  return labelSelectorFromObject({ matchLabels: selector }).matches(vmi.metadata.labels ?? {});
}

/** Running with its `Ready` condition True (a terminating VMI may still serve). */
function isServing(vmi: KObject): boolean {
  if (vmiPhase(vmi) !== 'Running') return false;
  return recordsAt(vmi, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'True');
}

/** `targetPort` of `port` on this VMI: a number as is; a name looked up in its interfaces' ports (same protocol). */
function resolvePort(port: ServicePort, vmi: KObject): number | undefined {
  if (typeof port.targetPort === 'number') return port.targetPort;
  for (const iface of recordsAt(vmi, 'spec', 'domain', 'devices', 'interfaces')) {
    for (const p of recordsAt(iface, 'ports')) {
      if (stringAt(p, 'name') === port.targetPort && (stringAt(p, 'protocol') ?? 'TCP') === port.protocol && typeof p.port === 'number') return p.port;
    }
  }
  return undefined;
}

function endpointsOf(svc: KObject, vmis: KObject[]): Endpoint[] {
  const publishNotReady = booleanAt(svc, 'spec', 'publishNotReadyAddresses') === true;
  const ports = servicePorts(svc);
  const out: Endpoint[] = [];
  for (const vmi of vmis) {
    if (!selects(svc, vmi) || isFinal(vmi)) continue;
    const terminating = isMarkedForDeletion(vmi);
    const serving = publishNotReady || isServing(vmi);
    const ready = serving && !terminating;
    const resolved: EndpointPort[] = [];
    for (const port of ports) {
      const number = resolvePort(port, vmi);
      if (number !== undefined) resolved.push({ name: port.name, port: number, protocol: port.protocol, appProtocol: port.appProtocol });
    }
    const subdomain = stringAt(vmi, 'spec', 'subdomain');
    const hostname = subdomain === svc.metadata.name ? stringAt(vmi, 'spec', 'hostname') : undefined;
    for (const ip of podAddresses(vmi)) {
      const family = ipFamilyOf(ip);
      if (family === undefined) continue;
      out.push({ ip, family, ready, serving, terminating, vmi, ports: resolved, hostname });
    }
  }
  return out.sort((a, b) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : 0));
}

function ownerRef(svc: KObject): OwnerReference {
  return { apiVersion: 'v1', kind: 'Service', name: svc.metadata.name ?? '', uid: svc.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}

function targetRef(vmi: KObject): Record<string, unknown> {
  return { kind: 'VirtualMachineInstance', apiVersion: 'kubevirt.io/v1', namespace: vmi.metadata.namespace ?? '', name: vmi.metadata.name ?? '', uid: vmi.metadata.uid ?? '' };
}

function portsKey(ports: EndpointPort[]): string {
  return ports.map((p) => `${p.name}/${p.protocol}/${p.port}`).join(',');
}

function labelsFor(svc: KObject): Record<string, string> {
  const labels: Record<string, string> = { ...stringMapAt(svc, 'metadata', 'labels') };
  if (stringAt(svc, 'spec', 'clusterIP') === 'None') labels[headlessLabel] = '';
  return labels;
}

/** The Endpoints and slices `svc` should have, given every VMI of its namespace. */
export function desiredEndpoints(svc: KObject, vmis: KObject[]): DesiredEndpoints {
  const namespace = svc.metadata.namespace ?? '';
  const name = svc.metadata.name ?? '';
  const all = endpointsOf(svc, vmis);
  const families = arrayAt(svc, 'spec', 'ipFamilies').filter((f): f is IpFamily => f === 'IPv4' || f === 'IPv6');
  const wanted: IpFamily[] = families.length > 0 ? families : ['IPv4'];
  return { endpoints: endpointsObject(svc, all.filter((e) => e.family === wanted[0] && !e.terminating)), slices: wanted.flatMap((family) => slicesFor(svc, family, all.filter((e) => e.family === family))) };

  function endpointsObject(service: KObject, list: Endpoint[]): KObject {
    const subsets = new Map<string, { ports: EndpointPort[]; ready: Endpoint[]; notReady: Endpoint[] }>();
    for (const e of list) {
      const key = portsKey(e.ports);
      const subset = subsets.get(key) ?? { ports: e.ports, ready: [], notReady: [] };
      (e.ready ? subset.ready : subset.notReady).push(e);
      subsets.set(key, subset);
    }
    const address = (e: Endpoint): Record<string, unknown> => ({
      ip: e.ip,
      ...(e.hostname === undefined ? {} : { hostname: e.hostname }),
      ...(nodeNameOf(e.vmi) === undefined ? {} : { nodeName: nodeNameOf(e.vmi) }),
      targetRef: targetRef(e.vmi),
    });
    const obj: KObject = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace, labels: labelsFor(service) } };
    const subsetList = [...subsets.values()].map((s) => ({
      ...(s.ready.length > 0 ? { addresses: s.ready.map(address) } : {}),
      ...(s.notReady.length > 0 ? { notReadyAddresses: s.notReady.map(address) } : {}),
      ...(s.ports.length > 0 ? { ports: s.ports.map(endpointPortJson) } : {}),
    }));
    if (subsetList.length > 0) obj.subsets = subsetList;
    return obj;
  }

  function slicesFor(service: KObject, family: IpFamily, list: Endpoint[]): KObject[] {
    const groups = new Map<string, { ports: EndpointPort[]; endpoints: Endpoint[] }>();
    for (const e of list) {
      const key = portsKey(e.ports);
      const group = groups.get(key) ?? { ports: e.ports, endpoints: [] };
      group.endpoints.push(e);
      groups.set(key, group);
    }
    // A Service without endpoints keeps one empty slice per family, as Kubernetes' placeholder.
    if (groups.size === 0) groups.set('', { ports: [], endpoints: [] });
    return [...groups.entries()].map(([key, group]) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: `${name}-${createHash('sha256').update(`${family}|${key}`).digest('hex').slice(0, 5)}`,
        namespace,
        labels: { ...labelsFor(service), [serviceNameLabel]: name, [managedByLabel]: managedByValue },
        ownerReferences: [ownerRef(service)],
      },
      addressType: family,
      endpoints: group.endpoints.map((e) => ({
        addresses: [e.ip],
        conditions: { ready: e.ready, serving: e.serving, terminating: e.terminating },
        ...(e.hostname === undefined ? {} : { hostname: e.hostname }),
        ...(nodeNameOf(e.vmi) === undefined ? {} : { nodeName: nodeNameOf(e.vmi) }),
        targetRef: targetRef(e.vmi),
      })),
      ports: group.ports.map(endpointPortJson),
    }));
  }
}

function endpointPortJson(p: EndpointPort): Record<string, unknown> {
  return { ...(p.name === '' ? {} : { name: p.name }), port: p.port, protocol: p.protocol, ...(p.appProtocol === undefined ? {} : { appProtocol: p.appProtocol }) };
}
