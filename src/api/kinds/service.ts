/**
 * The `v1 Service` as kube-apiserver shapes it before it is stored: the
 * defaults of `SetDefaults_Service` (type, protocol, targetPort, session
 * affinity, traffic policies), the fields an update may leave out that keep
 * their allocated values (clusterIPs, nodePorts), and the readers the
 * allocators, the endpoints controller and the cluster DNS share.
 */
import type { KObject } from '../object.js';
import { asRecord, booleanAt, numberAt, recordsAt, stringAt, stringMapAt } from './read.js';

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
export const serviceTypes: readonly ServiceType[] = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];

/** The port of a Service, read leniently (validation reports what is wrong). */
export interface ServicePort {
  name: string;
  protocol: string;
  port: number;
  /** A number, or the name of a port on the endpoints. */
  targetPort: number | string;
  nodePort: number | undefined;
  appProtocol: string | undefined;
}

/** `spec` of a Service as a record, created when absent. */
export function serviceSpec(svc: KObject): Record<string, unknown> {
  const spec = asRecord(svc.spec);
  if (spec !== undefined) return spec;
  const created: Record<string, unknown> = {};
  svc.spec = created;
  return created;
}

export function serviceType(svc: KObject): string {
  return stringAt(svc, 'spec', 'type') ?? 'ClusterIP';
}

/** True for the types that publish a port on every node. */
export function needsNodePorts(svc: KObject): boolean {
  const type = serviceType(svc);
  if (type === 'NodePort') return true;
  return type === 'LoadBalancer' && booleanAt(svc, 'spec', 'allocateLoadBalancerNodePorts') !== false;
}

/** True for `clusterIP: None`. */
export function isHeadless(svc: KObject): boolean {
  return stringAt(svc, 'spec', 'clusterIP') === 'None';
}

/** The Service's ports. */
export function servicePorts(svc: KObject): ServicePort[] {
  return recordsAt(svc, 'spec', 'ports').map((port) => {
    const number = numberAt(port, 'port') ?? 0;
    const target = port.targetPort;
    return {
      name: stringAt(port, 'name') ?? '',
      protocol: stringAt(port, 'protocol') ?? 'TCP',
      port: number,
      targetPort: typeof target === 'number' || (typeof target === 'string' && target !== '') ? target : number,
      nodePort: numberAt(port, 'nodePort'),
      appProtocol: stringAt(port, 'appProtocol'),
    };
  });
}

/** The cluster IPs a Service holds (`clusterIPs`, else `clusterIP`), without `None` and empty ones. */
export function serviceClusterIps(svc: KObject): string[] {
  const list = recordsOrStrings(svc);
  return list.filter((ip) => ip !== '' && ip !== 'None');
}

function recordsOrStrings(svc: KObject): string[] {
  const spec = asRecord(svc.spec) ?? {};
  const ips = Array.isArray(spec.clusterIPs) ? spec.clusterIPs.filter((ip): ip is string => typeof ip === 'string') : [];
  if (ips.length > 0) return ips;
  const single = stringAt(spec, 'clusterIP');
  return single === undefined ? [] : [single];
}

/** The Service's selector; an empty map means "no selector": its endpoints are managed by someone else. */
export function serviceSelector(svc: KObject): Record<string, string> {
  return stringMapAt(svc, 'spec', 'selector');
}

/** kube-apiserver's defaults for a Service (`pkg/apis/core/v1/defaults.go`). Mutates `svc`. */
export function defaultService(svc: KObject): void {
  const spec = serviceSpec(svc);
  if (spec.type === undefined || spec.type === null || spec.type === '') spec.type = 'ClusterIP';
  if (spec.sessionAffinity === undefined || spec.sessionAffinity === null || spec.sessionAffinity === '') spec.sessionAffinity = 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    const config = asRecord(spec.sessionAffinityConfig) ?? {};
    const clientIP = asRecord(config.clientIP) ?? {};
    clientIP.timeoutSeconds ??= 10800;
    config.clientIP = clientIP;
    spec.sessionAffinityConfig = config;
  }
  for (const port of recordsAt(spec, 'ports')) {
    if (port.protocol === undefined || port.protocol === null || port.protocol === '') port.protocol = 'TCP';
    const target = port.targetPort;
    if (target === undefined || target === null || target === 0 || target === '') {
      if (typeof port.port === 'number') port.targetPort = port.port;
    }
  }
  const type = spec.type;
  if ((type === 'NodePort' || type === 'LoadBalancer') && (spec.externalTrafficPolicy === undefined || spec.externalTrafficPolicy === '')) {
    spec.externalTrafficPolicy = 'Cluster';
  }
  if (type !== 'ExternalName' && (spec.internalTrafficPolicy === undefined || spec.internalTrafficPolicy === '')) spec.internalTrafficPolicy = 'Cluster';
  if (type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts === undefined) spec.allocateLoadBalancerNodePorts = true;
  if (type === 'ExternalName') {
    // An ExternalName Service is a DNS alias: it has no cluster IP and no families.
    delete spec.ipFamilyPolicy;
    delete spec.ipFamilies;
  }
}

/**
 * What an update may leave out and keeps from the stored Service, as
 * kube-apiserver's `patchAllocatedValues`: the cluster IPs (unless the type
 * changes to or from ExternalName), the families, and the node port of each
 * port that still has the same number and protocol. Node ports and traffic
 * policies left over from a type that had them are dropped when the new
 * type has none (`dropTypeDependentFields`).
 */
export function keepAllocatedValues(svc: KObject, old: KObject): void {
  const spec = serviceSpec(svc);
  const oldSpec = asRecord(old.spec) ?? {};
  const bothHaveIps = serviceType(svc) !== 'ExternalName' && serviceType(old) !== 'ExternalName';
  if (bothHaveIps) {
    const noIps = (spec.clusterIP === undefined || spec.clusterIP === '') && (!Array.isArray(spec.clusterIPs) || spec.clusterIPs.length === 0);
    if (noIps) {
      if (oldSpec.clusterIP !== undefined) spec.clusterIP = oldSpec.clusterIP;
      if (oldSpec.clusterIPs !== undefined) spec.clusterIPs = oldSpec.clusterIPs;
    } else if ((!Array.isArray(spec.clusterIPs) || spec.clusterIPs.length === 0) && spec.clusterIP === oldSpec.clusterIP) {
      spec.clusterIPs = oldSpec.clusterIPs;
    }
    if (spec.ipFamilies === undefined && oldSpec.ipFamilies !== undefined) spec.ipFamilies = oldSpec.ipFamilies;
    if (spec.ipFamilyPolicy === undefined && oldSpec.ipFamilyPolicy !== undefined) spec.ipFamilyPolicy = oldSpec.ipFamilyPolicy;
  }
  if (serviceType(svc) === 'ExternalName' && serviceType(old) !== 'ExternalName' && (spec.clusterIP === undefined || spec.clusterIP === oldSpec.clusterIP)) {
    for (const field of ['clusterIP', 'clusterIPs', 'ipFamilies', 'ipFamilyPolicy']) delete spec[field];
  }
  const oldPorts = servicePorts(old);
  if (needsNodePorts(svc)) {
    for (const port of recordsAt(spec, 'ports')) {
      if (port.nodePort !== undefined && port.nodePort !== 0) continue;
      const match = oldPorts.find((p) => p.port === port.port && p.protocol === (port.protocol ?? 'TCP') && p.nodePort !== undefined);
      if (match?.nodePort !== undefined) port.nodePort = match.nodePort;
    }
  } else if (needsNodePorts(old)) {
    for (const port of recordsAt(spec, 'ports')) {
      if (oldPorts.some((p) => p.nodePort !== undefined && p.nodePort === port.nodePort)) delete port.nodePort;
    }
  }
  const external = (type: string): boolean => type === 'NodePort' || type === 'LoadBalancer';
  if (external(serviceType(old)) && !external(serviceType(svc)) && spec.externalTrafficPolicy === oldSpec.externalTrafficPolicy) delete spec.externalTrafficPolicy;
  if (serviceType(old) === 'LoadBalancer' && serviceType(svc) !== 'LoadBalancer' && spec.allocateLoadBalancerNodePorts === oldSpec.allocateLoadBalancerNodePorts) {
    delete spec.allocateLoadBalancerNodePorts;
  }
}
