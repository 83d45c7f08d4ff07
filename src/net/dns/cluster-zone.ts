/**
 * The answers of the cluster DNS, as Kubernetes' DNS specification and
 * CoreDNS's kubernetes plugin give them, from Services and EndpointSlices:
 *
 * - `<svc>.<ns>.svc.<domain>` A/AAAA: the cluster IPs; for a headless
 *   Service, the ready endpoints' addresses; ExternalName: a CNAME.
 * - `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for named ports: the
 *   Service's name (ClusterIP) or one record per endpoint (headless).
 * - `<hostname>.<svc>.<ns>.svc.<domain>` A/AAAA: an endpoint whose VMI set
 *   `hostname` with `subdomain` naming the headless Service.
 * - PTR for cluster IPs and for those hostnames.
 *
 * Unknown names in the cluster domain (and the reverse zones) are
 * NXDOMAIN, with the zone's SOA; names that exist without records of the
 * asked type are NODATA; anything else is REFUSED: there is no upstream to
 * forward to.
 */
import type { KObject } from '../../api/object.js';
import { ipFamilyOf, reverseName } from '../../api/ip.js';
import { arrayAt, booleanAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { serviceClusterIps, servicePorts } from '../../api/kinds/service.js';
import type { Question, ResourceRecord, Response } from './wire.js';
import { rcodes, recordTypes } from './wire.js';

/** What the zone reads: the watch-driven caches of Services and EndpointSlices. */
export interface ZoneSource {
  service(namespace: string, name: string): KObject | undefined;
  services(): Iterable<KObject>;
  /** The EndpointSlices of a Service (label `kubernetes.io/service-name`). */
  slicesOf(namespace: string, service: string): KObject[];
}

export interface ClusterZoneOptions {
  /** Default `cluster.local`. */
  domain?: string;
  /** Default 5 s, CoreDNS's. */
  ttl?: number;
}

interface Endpoint {
  address: string;
  hostname: string | undefined;
  ports: { name: string; port: number; protocol: string }[];
}

export class ClusterZone {
  readonly domain: string;
  private readonly ttl: number;
  private reverse: Map<string, string> | undefined;

  constructor(
    private readonly source: ZoneSource,
    options: ClusterZoneOptions = {},
  ) {
    this.domain = (options.domain ?? 'cluster.local').toLowerCase();
    this.ttl = options.ttl ?? 5;
  }

  /** Call when Services or slices changed: the reverse index is rebuilt on the next PTR query. */
  invalidate(): void {
    this.reverse = undefined;
  }

  answer(question: Question): Response {
    const name = question.name;
    if (question.class !== 1 && question.class !== 255) return this.refused();
    if (name.endsWith('.in-addr.arpa') || name.endsWith('.ip6.arpa')) return this.answerReverse(question);
    if (name !== this.domain && !name.endsWith(`.${this.domain}`)) return this.refused();
    const labels = name.slice(0, Math.max(0, name.length - this.domain.length - 1)).split('.').filter((l) => l !== '');
    // <svc>.<ns>.svc | <hostname>.<svc>.<ns>.svc | _<port>._<proto>.<svc>.<ns>.svc
    if (labels.length === 0) return this.nodata();
    if (labels[labels.length - 1] !== 'svc') return this.nxdomain();
    const rest = labels.slice(0, -1);
    // `svc.<domain>` and `<ns>.svc.<domain>` exist as names, without records.
    if (rest.length <= 1) return this.nodata();
    if (rest.length === 2) return this.answerService(question, rest[1] ?? '', rest[0] ?? '');
    if (rest.length === 3) return this.answerHostname(question, rest[2] ?? '', rest[1] ?? '', rest[0] ?? '');
    if (rest.length === 4 && rest[0]?.startsWith('_') === true && rest[1]?.startsWith('_') === true) {
      return this.answerSrv(question, rest[3] ?? '', rest[2] ?? '', rest[0].slice(1), rest[1].slice(1));
    }
    return this.nxdomain();
  }

  private serviceName(namespace: string, service: string): string {
    return `${service}.${namespace}.svc.${this.domain}`;
  }

  private answerService(question: Question, namespace: string, name: string): Response {
    const svc = this.source.service(namespace, name);
    if (svc === undefined) return this.nxdomain();
    const fqdn = question.name;
    const type = stringAt(svc, 'spec', 'type') ?? 'ClusterIP';
    if (type === 'ExternalName') {
      const target = (stringAt(svc, 'spec', 'externalName') ?? '').replace(/\.$/, '').toLowerCase();
      return this.ok([{ name: fqdn, ttl: this.ttl, data: { type: 'CNAME', target } }]);
    }
    const addresses = serviceClusterIps(svc).length > 0 ? serviceClusterIps(svc) : this.endpoints(namespace, name).map((e) => e.address);
    return this.ok(this.addressRecords(fqdn, question.type, [...new Set(addresses)]));
  }

  private answerHostname(question: Question, namespace: string, service: string, hostname: string): Response {
    if (this.source.service(namespace, service) === undefined) return this.nxdomain();
    const matching = this.endpoints(namespace, service).filter((e) => e.hostname === hostname || dashed(e.address) === hostname);
    if (matching.length === 0) return this.nxdomain();
    return this.ok(this.addressRecords(question.name, question.type, matching.map((e) => e.address)));
  }

  private answerSrv(question: Question, namespace: string, service: string, portName: string, protocol: string): Response {
    const svc = this.source.service(namespace, service);
    if (svc === undefined) return this.nxdomain();
    const port = servicePorts(svc).find((p) => p.name !== '' && p.name === portName && p.protocol.toLowerCase() === protocol);
    if (port === undefined) return this.nxdomain();
    if (question.type !== recordTypes.SRV && question.type !== recordTypes.ANY) return this.nodata();
    const fqdn = question.name;
    const base = this.serviceName(namespace, service);
    if (serviceClusterIps(svc).length > 0) {
      const additional = this.addressRecords(base, recordTypes.ANY, serviceClusterIps(svc));
      return this.ok([{ name: fqdn, ttl: this.ttl, data: { type: 'SRV', priority: 0, weight: 100, port: port.port, target: base } }], additional);
    }
    const answers: ResourceRecord[] = [];
    const additional: ResourceRecord[] = [];
    for (const e of this.endpoints(namespace, service)) {
      const endpointPort = e.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
      if (endpointPort === undefined) continue;
      const target = `${e.hostname ?? dashed(e.address)}.${base}`;
      answers.push({ name: fqdn, ttl: this.ttl, data: { type: 'SRV', priority: 0, weight: 100, port: endpointPort.port, target } });
      additional.push(...this.addressRecords(target, recordTypes.ANY, [e.address]));
    }
    return this.ok(answers, additional);
  }

  private answerReverse(question: Question): Response {
    this.reverse ??= this.buildReverse();
    const target = this.reverse.get(question.name);
    if (target === undefined) return this.nxdomain();
    if (question.type !== recordTypes.PTR && question.type !== recordTypes.ANY) return this.nodata();
    return this.ok([{ name: question.name, ttl: this.ttl, data: { type: 'PTR', target } }]);
  }

  private buildReverse(): Map<string, string> {
    const map = new Map<string, string>();
    for (const svc of this.source.services()) {
      const namespace = svc.metadata.namespace ?? '';
      const name = svc.metadata.name ?? '';
      for (const ip of serviceClusterIps(svc)) {
        const reversed = reverseName(ip);
        if (reversed !== undefined) map.set(reversed, this.serviceName(namespace, name));
      }
      for (const e of this.endpoints(namespace, name)) {
        const reversed = reverseName(e.address);
        if (reversed !== undefined && e.hostname !== undefined) map.set(reversed, `${e.hostname}.${this.serviceName(namespace, name)}`);
      }
    }
    return map;
  }

  /** Ready endpoints of a Service's slices. */
  private endpoints(namespace: string, service: string): Endpoint[] {
    const out: Endpoint[] = [];
    for (const slice of this.source.slicesOf(namespace, service)) {
      const ports = recordsAt(slice, 'ports').map((p) => ({ name: stringAt(p, 'name') ?? '', port: typeof p.port === 'number' ? p.port : 0, protocol: stringAt(p, 'protocol') ?? 'TCP' }));
      for (const endpoint of recordsAt(slice, 'endpoints')) {
        if (booleanAt(endpoint, 'conditions', 'ready') === false) continue;
        const hostname = stringAt(endpoint, 'hostname');
        for (const address of arrayAt(endpoint, 'addresses')) if (typeof address === 'string') out.push({ address, hostname, ports });
      }
    }
    return out;
  }

  private addressRecords(name: string, type: number, addresses: string[]): ResourceRecord[] {
    const records: ResourceRecord[] = [];
    for (const address of addresses) {
      const family = ipFamilyOf(address);
      if (family === 'IPv4' && (type === recordTypes.A || type === recordTypes.ANY)) records.push({ name, ttl: this.ttl, data: { type: 'A', address } });
      if (family === 'IPv6' && (type === recordTypes.AAAA || type === recordTypes.ANY)) records.push({ name, ttl: this.ttl, data: { type: 'AAAA', address } });
    }
    return records;
  }

  private soa(): ResourceRecord {
    return {
      name: this.domain,
      ttl: this.ttl,
      data: { type: 'SOA', primary: `ns.dns.${this.domain}`, mailbox: `hostmaster.${this.domain}`, serial: Math.floor(Date.now() / 1000), refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl },
    };
  }

  private ok(answers: ResourceRecord[], additional: ResourceRecord[] = []): Response {
    // A name that exists without records of the asked type: NODATA, with the SOA for negative caching.
    return { rcode: rcodes.NOERROR, authoritative: true, answers, authority: answers.length === 0 ? [this.soa()] : [], additional };
  }

  private nodata(): Response {
    return { rcode: rcodes.NOERROR, authoritative: true, answers: [], authority: [this.soa()], additional: [] };
  }

  private nxdomain(): Response {
    return { rcode: rcodes.NXDOMAIN, authoritative: true, answers: [], authority: [this.soa()], additional: [] };
  }

  private refused(): Response {
    return { rcode: rcodes.REFUSED, authoritative: false, answers: [], authority: [], additional: [] };
  }
}

/** CoreDNS's name for an endpoint without hostname: its address with dashes (`10-244-0-5`). */
function dashed(address: string): string {
  return address.replace(/[.:]/g, '-');
}
