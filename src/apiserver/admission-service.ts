/**
 * Cluster IPs and node ports of Services, allocated as kube-apiserver's
 * service registry does before a Service is stored: a requested address or
 * port is honoured or refused ("provided IP is already allocated", "not in
 * the valid range"), others are picked at random (cluster IPs from the upper
 * band of the range first, leaving the lower band to static requests).
 *
 * What is allocated is derived from the stored Services on every write, so
 * a deleted Service frees its addresses at once, a restart loses nothing,
 * and nothing leaks. Service writes in this process are serialised: the
 * lock taken here is released once the write is stored or refused.
 */
import { randomInt } from 'node:crypto';
import { invalid } from '../api/errors.js';
import type { FieldError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import type { Cidr, IpFamily } from '../api/ip.js';
import { canonicalIp, cidrAddress, cidrContains, cidrSize, ipFamilyOf, parseCidr } from '../api/ip.js';
import { defaultService, isHeadless, keepAllocatedValues, needsNodePorts, serviceClusterIps, serviceSelector, serviceSpec, serviceType } from '../api/kinds/service.js';
import { recordsAt, stringAt } from '../api/kinds/read.js';
import type { Store } from '../store/types.js';

/** The service network of a cluster, fully resolved. */
export interface ServiceNetwork {
  /** One range, or two of different families (dual stack); the first is the primary family. */
  ranges: Cidr[];
  nodePorts: { first: number; last: number };
}

export const defaultServiceClusterIpRange = '10.96.0.0/12';
export const defaultNodePortRange = '30000-32767';

/** Parses `--service-cluster-ip-range` (`CIDR[,CIDR]`) and `--service-node-port-range` (`FIRST-LAST`); throws an Error that says what is wrong. */
export function parseServiceNetwork(ipRange: string, portRange: string): ServiceNetwork {
  const ranges = ipRange.split(',').map((text) => {
    const cidr = parseCidr(text.trim());
    if (cidr === undefined) throw new Error(`service cluster IP range ${JSON.stringify(text)} is not a CIDR: use e.g. 10.96.0.0/12 or fd00:10:96::/108`);
    const bits = cidr.family === 'IPv4' ? 32 : 128;
    if (bits - cidr.prefix < 3 || bits - cidr.prefix > 20) {
      throw new Error(`service cluster IP range ${cidr.text} has ${bits - cidr.prefix} host bits: use between 3 and 20 (e.g. /12 for IPv4, /108 for IPv6)`);
    }
    return cidr;
  });
  if (ranges.length > 2 || (ranges.length === 2 && ranges[0]?.family === ranges[1]?.family)) {
    throw new Error(`service cluster IP range ${ipRange} must be one CIDR, or two of different families (dual stack)`);
  }
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(portRange);
  const first = Number(m?.[1]);
  const last = Number(m?.[2]);
  if (m === null || first < 1 || last > 65535 || first > last) throw new Error(`service node port range ${JSON.stringify(portRange)} is not valid: use FIRST-LAST, e.g. 30000-32767`);
  return { ranges, nodePorts: { first, last } };
}

const servicePrefix = '/registry/core/services/';

/** True for the writes this module admits. */
export function isService(def: ResourceDef): boolean {
  return def.group === '' && def.kind === 'Service';
}

interface InUse {
  ips: Set<string>;
  nodePorts: Set<number>;
}

/** The allocators of one API server. */
export class ServiceAllocator {
  private lock: Promise<void> = Promise.resolve();

  constructor(private readonly network: ServiceNetwork) {}

  /**
   * Defaults, keeps allocated values on update, and allocates; throws a 422
   * ApiError for a refused request. Returns the release of the allocation
   * lock, to call once the write is stored or refused.
   */
  async admit(svc: KObject, old: KObject | undefined, store: Store): Promise<(() => void) | undefined> {
    // A spec that is not an object is the schema's to refuse, with its own message.
    if (svc.spec !== undefined && !isPlainObject(svc.spec)) return undefined;
    defaultService(svc);
    if (old !== undefined) keepAllocatedValues(svc, old);
    const spec = serviceSpec(svc);
    // kube fills clusterIPs from clusterIP before it validates, so errors name clusterIPs[0].
    if ((!Array.isArray(spec.clusterIPs) || spec.clusterIPs.length === 0) && typeof spec.clusterIP === 'string' && spec.clusterIP !== '') spec.clusterIPs = [spec.clusterIP];
    const release = await this.acquire();
    try {
      const inUse = await this.inUse(store, svc, old);
      const errors = [...this.allocateClusterIps(svc, old, inUse), ...this.allocateNodePorts(svc, inUse)];
      if (errors.length > 0) throw invalid('Service', '', svc.metadata.name ?? '', errors);
      return release;
    } catch (err) {
      release();
      throw err;
    }
  }

  private async acquire(): Promise<() => void> {
    let release = (): void => {};
    const previous = this.lock;
    this.lock = new Promise<void>((resolve) => { release = resolve; });
    await previous;
    return release;
  }

  private async inUse(store: Store, svc: KObject, old: KObject | undefined): Promise<InUse> {
    const self = `${svc.metadata.namespace ?? ''}/${svc.metadata.name ?? ''}`;
    const ips = new Set<string>();
    const nodePorts = new Set<number>();
    for (const kv of (await store.list(servicePrefix)).items) {
      const other = JSON.parse(kv.value) as KObject;
      if (old !== undefined && `${other.metadata.namespace ?? ''}/${other.metadata.name ?? ''}` === self) continue;
      for (const ip of serviceClusterIps(other)) ips.add(canonicalIp(ip) ?? ip);
      for (const port of recordsAt(other, 'spec', 'ports')) if (typeof port.nodePort === 'number') nodePorts.add(port.nodePort);
    }
    return { ips, nodePorts };
  }

  private rangeText(): string {
    return this.network.ranges.map((r) => r.text).join(',');
  }

  private allocateClusterIps(svc: KObject, old: KObject | undefined, inUse: InUse): FieldError[] {
    const spec = serviceSpec(svc);
    if (serviceType(svc) === 'ExternalName') return [];
    const configured = this.network.ranges.map((r) => r.family);
    const primary = configured[0] ?? 'IPv4';
    const requested = requestedIps(spec);
    const families = requestedFamilies(spec, requested);
    const policy = typeof spec.ipFamilyPolicy === 'string' && spec.ipFamilyPolicy !== '' ? spec.ipFamilyPolicy : undefined;
    const errors: FieldError[] = [];
    if (policy === 'RequireDualStack' && configured.length < 2) {
      errors.push({ field: 'spec.ipFamilyPolicy', reason: 'FieldValueInvalid', message: `Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services (the service range is ${this.rangeText()}); use SingleStack or PreferDualStack` });
    }
    families.forEach((family, i) => {
      if (!configured.includes(family)) {
        errors.push({ field: `spec.ipFamilies[${i}]`, reason: 'FieldValueInvalid', message: `Invalid value: "${family}": not configured on this cluster (the service range is ${this.rangeText()})` });
      }
    });
    if (errors.length > 0) return errors;

    if (isHeadless(svc)) {
      // Headless: no address; one family, or every configured one when it has no selector (its endpoints may be of any family).
      const selectorless = Object.keys(serviceSelector(svc)).length === 0;
      spec.ipFamilyPolicy = policy ?? (selectorless ? 'RequireDualStack' : 'SingleStack');
      spec.ipFamilies = familiesFor(spec.ipFamilyPolicy as string, families, configured, primary);
      spec.clusterIPs = ['None'];
      return [];
    }
    const chosenPolicy = policy ?? (requested.length > 1 ? 'RequireDualStack' : 'SingleStack');
    spec.ipFamilyPolicy = chosenPolicy;
    const wanted = familiesFor(chosenPolicy, families, configured, primary);
    spec.ipFamilies = wanted;
    const oldIps = old === undefined ? [] : serviceClusterIps(old).map((ip) => canonicalIp(ip) ?? ip);
    const ips: string[] = [];
    let malformed = false;
    wanted.forEach((family, i) => {
      const range = this.network.ranges.find((r) => r.family === family);
      if (range === undefined) return;
      const asked = requested[i];
      if (asked === undefined) {
        const ip = pickIp(range, inUse.ips);
        if (ip === undefined) {
          errors.push({ field: 'spec.clusterIPs', reason: 'FieldValueInvalid', message: `Invalid value: []string{}: failed to allocate a service IP: range is full (${range.text}); delete unused Services or widen --service-cluster-ip-range` });
          return;
        }
        ips.push(ip);
        return;
      }
      const ip = canonicalIp(asked);
      if (ip === undefined) {
        malformed = true; // validation reports it, on the spec as written
        return;
      }
      if (oldIps.includes(ip)) {
        ips.push(ip);
        return;
      }
      const shown = `[]string{${requested.map((r) => JSON.stringify(r)).join(', ')}}`;
      if (!cidrContains(range, ip)) {
        errors.push({ field: 'spec.clusterIPs', reason: 'FieldValueInvalid', message: `Invalid value: ${shown}: failed to allocate IP ${asked}: the provided IP (${asked}) is not in the valid range. The range of valid IPs is ${range.text}` });
      } else if (inUse.ips.has(ip)) {
        errors.push({ field: 'spec.clusterIPs', reason: 'FieldValueInvalid', message: `Invalid value: ${shown}: failed to allocate IP ${asked}: provided IP is already allocated` });
      } else {
        ips.push(ip);
      }
    });
    if (errors.length > 0 || malformed) return errors;
    spec.clusterIPs = ips;
    if (ips[0] !== undefined) spec.clusterIP = ips[0];
    return [];
  }

  private allocateNodePorts(svc: KObject, inUse: InUse): FieldError[] {
    if (!needsNodePorts(svc)) return [];
    const { first, last } = this.network.nodePorts;
    const errors: FieldError[] = [];
    // One node port may serve the same port number over several protocols (DNS over TCP and UDP).
    const mine = new Map<number, number>();
    recordsAt(svc, 'spec', 'ports').forEach((port, i) => {
      const number = typeof port.port === 'number' ? port.port : 0;
      const asked = port.nodePort;
      if (typeof asked === 'number' && asked !== 0) {
        if (mine.get(number) === asked) return;
        if (asked < first || asked > last) {
          errors.push({ field: `spec.ports[${i}].nodePort`, reason: 'FieldValueInvalid', message: `Invalid value: ${asked}: provided port is not in the valid range. The range of valid ports is ${first}-${last}` });
        } else if (inUse.nodePorts.has(asked)) {
          errors.push({ field: `spec.ports[${i}].nodePort`, reason: 'FieldValueInvalid', message: `Invalid value: ${asked}: provided port is already allocated` });
        } else {
          inUse.nodePorts.add(asked);
          mine.set(number, asked);
        }
        return;
      }
      const reuse = mine.get(number);
      const picked = reuse ?? pickPort(first, last, inUse.nodePorts);
      if (picked === undefined) {
        errors.push({ field: `spec.ports[${i}].nodePort`, reason: 'FieldValueInvalid', message: `Invalid value: 0: failed to allocate a port: range ${first}-${last} is full; delete unused NodePort Services` });
        return;
      }
      port.nodePort = picked;
      inUse.nodePorts.add(picked);
      mine.set(number, picked);
    });
    return errors;
  }
}

function requestedIps(spec: Record<string, unknown>): string[] {
  const list = Array.isArray(spec.clusterIPs) ? spec.clusterIPs.filter((ip): ip is string => typeof ip === 'string' && ip !== '') : [];
  if (list.length > 0) return list.filter((ip) => ip !== 'None');
  const single = stringAt(spec, 'clusterIP');
  return single === undefined || single === '' || single === 'None' ? [] : [single];
}

function requestedFamilies(spec: Record<string, unknown>, requested: string[]): IpFamily[] {
  const listed = Array.isArray(spec.ipFamilies) ? spec.ipFamilies.filter((f): f is IpFamily => f === 'IPv4' || f === 'IPv6') : [];
  if (listed.length > 0) return listed;
  return requested.map((ip) => ipFamilyOf(ip)).filter((f): f is IpFamily => f !== undefined);
}

function familiesFor(policy: string, asked: IpFamily[], configured: IpFamily[], primary: IpFamily): IpFamily[] {
  const first = asked[0] ?? primary;
  if (policy === 'SingleStack') return [first];
  const second = asked[1] ?? configured.find((f) => f !== first);
  return second === undefined ? [first] : [first, second];
}

/**
 * A free address of `range`, neither the network nor (IPv4) the broadcast
 * address. As kube's allocator, random picks come from above the band kept
 * for static requests (min(max(16, size/16), 256) addresses), then anywhere.
 */
function pickIp(range: Cidr, inUse: Set<string>): string | undefined {
  const size = cidrSize(range);
  const lastUsable = range.family === 'IPv4' ? size - 2n : size - 1n;
  let band = size / 16n;
  if (band < 16n) band = 16n;
  if (band > 256n) band = 256n;
  const bands: Array<[bigint, bigint]> = band < lastUsable ? [[band, lastUsable], [1n, band - 1n]] : [[1n, lastUsable]];
  for (const [low, high] of bands) {
    const span = high - low + 1n;
    if (span <= 0n) continue;
    const start = randomOffset(span);
    const tries = span < 4096n ? span : 4096n;
    for (let i = 0n; i < tries; i++) {
      const ip = cidrAddress(range, low + ((start + i) % span));
      if (!inUse.has(ip)) return ip;
    }
  }
  return undefined;
}

function randomOffset(span: bigint): bigint {
  return span > 0xffffffffn ? BigInt(randomInt(0, 0xffffffff)) : BigInt(randomInt(0, Number(span)));
}

function pickPort(first: number, last: number, inUse: Set<number>): number | undefined {
  const span = last - first + 1;
  const start = randomInt(0, span);
  for (let i = 0; i < span; i++) {
    const port = first + ((start + i) % span);
    if (!inUse.has(port)) return port;
  }
  return undefined;
}
