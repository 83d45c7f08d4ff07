/**
 * The service proxy's nftables program (kube-proxy's nftables mode, as a
 * pure function): one `inet` table, replaced whole in one transaction.
 *
 * - `nat-prerouting` and `nat-output` (so the node's own processes reach
 *   Services too) send `cluster IP . protocol . port` through the verdict
 *   maps `service-ips4`/`service-ips6` to a chain per Service port, and
 *   node ports on any local address (`fib daddr type local`, loopback
 *   excluded as kube-proxy's nftables mode does) through
 *   `service-nodeports4`/`6` to a chain that marks the connection for
 *   masquerade first.
 * - A Service port's chain picks an endpoint with `numgen random` over a
 *   verdict map (with `sessionAffinity: ClientIP`, a client found in an
 *   endpoint's affinity set goes back to it); an endpoint's chain marks
 *   hairpin traffic (the endpoint reaching itself) for masquerade and DNATs.
 * - `nat-postrouting` masquerades marked connections (bit 0x4000, as
 *   kube-proxy), so the replies of hairpin and node-port traffic come back
 *   through this node.
 * - Service ports without endpoints are in the `no-endpoint-*` maps, which
 *   the filter hooks (input, forward, output; before NAT, priority -110)
 *   answer with ICMP port unreachable for new connections.
 */
import { createHash } from 'node:crypto';
import type { AddressFamily, ProxiedPort, ProxyEndpoint } from './model.js';

export interface ServiceCompileOptions {
  /** The table (family `inet`). */
  tableName: string;
}

/** The connection mark bit of traffic to masquerade (kube-proxy's). */
export const masqueradeMark = '0x4000';

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 8);
}

function portId(port: ProxiedPort): string {
  return `${port.namespace}/${port.service}/${port.protocol}/${port.portName}`;
}

/** Chain and set names: a hash for uniqueness, the Service's name to be read by people (`nft list table`). */
function names(port: ProxiedPort): { service: string; external: string } {
  const id = portId(port);
  const tag = `${hash(`${id}/${port.family}`)}-${id}`;
  return { service: `svc${port.family}-${tag}`, external: `ext${port.family}-${tag}` };
}

function endpointNames(port: ProxiedPort, endpoint: ProxyEndpoint): { chain: string; affinity: string } {
  const tag = hash(`${portId(port)}/${port.family}/${endpoint.address}/${endpoint.port}`);
  return { chain: `ep${port.family}-${tag}-${port.namespace}/${port.service}/${port.portName}`, affinity: `aff${port.family}-${tag}` };
}

function ipKeyword(family: AddressFamily): string {
  return family === 4 ? 'ip' : 'ip6';
}

function addressLiteral(family: AddressFamily, address: string, port: number): string {
  return family === 4 ? `${address}:${port}` : `[${address}]:${port}`;
}

function map(name: string, type: string, elements: readonly string[]): string[] {
  const lines = [`  map ${name} {`, `    type ${type} : verdict`];
  if (elements.length > 0) lines.push(`    elements = { ${elements.join(',\n      ')} }`);
  lines.push('  }');
  return lines;
}

function chain(name: string, body: readonly string[]): string[] {
  return [`  chain ${name} {`, ...body.map((line) => `    ${line}`), '  }'];
}

/** The chains and sets of one Service port with endpoints. */
function portChains(port: ProxiedPort): string[] {
  const { service, external } = names(port);
  const ip = ipKeyword(port.family);
  const lines: string[] = [];
  const endpoints = port.endpoints.map((endpoint) => ({ endpoint, ...endpointNames(port, endpoint) }));
  const body: string[] = [`comment "${port.namespace}/${port.service}:${port.portName}"`];
  if (port.affinitySeconds !== undefined) {
    for (const e of endpoints) {
      lines.push(`  set ${e.affinity} {`, `    type ${port.family === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags dynamic,timeout; timeout ${port.affinitySeconds}s`, '  }');
      body.push(`${ip} saddr @${e.affinity} goto ${e.chain}`);
    }
  }
  const first = endpoints[0];
  if (endpoints.length === 1 && first !== undefined) body.push(`goto ${first.chain}`);
  else body.push(`numgen random mod ${endpoints.length} vmap { ${endpoints.map((e, i) => `${i} : goto ${e.chain}`).join(', ')} }`);
  lines.push(...chain(service, body));
  if (port.nodePort !== undefined) lines.push(...chain(external, ['jump mark-for-masquerade', `goto ${service}`]));
  for (const e of endpoints) {
    const epBody = [`${ip} saddr ${e.endpoint.address} jump mark-for-masquerade`];
    if (port.affinitySeconds !== undefined) epBody.push(`update @${e.affinity} { ${ip} saddr }`);
    epBody.push(`meta l4proto ${port.protocol} dnat ${ip} to ${addressLiteral(port.family, e.endpoint.address, e.endpoint.port)}`);
    lines.push(...chain(e.chain, epBody));
  }
  return lines;
}

/** The whole table: deletes the previous one and makes the new one in the same transaction. */
export function compileServices(ports: readonly ProxiedPort[], options: ServiceCompileOptions): string {
  const table = options.tableName;
  const elements = { ips4: [] as string[], ips6: [] as string[], nodePorts4: [] as string[], nodePorts6: [] as string[], noEndpoints4: [] as string[], noEndpoints6: [] as string[], noEndpointNodePorts4: [] as string[], noEndpointNodePorts6: [] as string[] };
  const chains: string[] = [];
  const seenNodePorts = new Set<string>();
  for (const port of ports) {
    const { service, external } = names(port);
    const v4 = port.family === 4;
    const hasEndpoints = port.endpoints.length > 0;
    for (const clusterIp of port.clusterIps) {
      const key = `${clusterIp} . ${port.protocol} . ${port.port}`;
      if (hasEndpoints) (v4 ? elements.ips4 : elements.ips6).push(`${key} : goto ${service}`);
      else (v4 ? elements.noEndpoints4 : elements.noEndpoints6).push(`${key} : goto reject-chain`);
    }
    if (port.nodePort !== undefined) {
      const key = `${port.protocol} . ${port.nodePort}`;
      // Admission keeps node ports unique; a duplicate (two Services from a broken store) would fail the whole transaction.
      if (!seenNodePorts.has(`${port.family}/${key}`)) {
        seenNodePorts.add(`${port.family}/${key}`);
        if (hasEndpoints) (v4 ? elements.nodePorts4 : elements.nodePorts6).push(`${key} : goto ${external}`);
        else (v4 ? elements.noEndpointNodePorts4 : elements.noEndpointNodePorts6).push(`${key} : goto reject-chain`);
      }
    }
    if (hasEndpoints) chains.push(...portChains(port));
  }
  const serviceLookup = [
    'ip daddr . meta l4proto . th dport vmap @service-ips4',
    'ip6 daddr . meta l4proto . th dport vmap @service-ips6',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports4',
    'fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @service-nodeports6',
  ];
  const endpointsCheck = [
    'ip daddr . meta l4proto . th dport vmap @no-endpoint-services4',
    'ip6 daddr . meta l4proto . th dport vmap @no-endpoint-services6',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports4',
    'fib daddr type local ip6 daddr != ::1 meta l4proto . th dport vmap @no-endpoint-nodeports6',
  ];
  const filterHook = (hook: string): string[] => chain(`filter-${hook}`, [`type filter hook ${hook} priority -110; policy accept;`, 'ct state new jump endpoints-check']);
  const natHook = (name: string, hook: string, priority: string, rule: string): string[] => chain(name, [`type nat hook ${hook} priority ${priority}; policy accept;`, rule]);
  return [
    `table inet ${table} {}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    ...map('service-ips4', 'ipv4_addr . inet_proto . inet_service', elements.ips4),
    ...map('service-ips6', 'ipv6_addr . inet_proto . inet_service', elements.ips6),
    ...map('service-nodeports4', 'inet_proto . inet_service', elements.nodePorts4),
    ...map('service-nodeports6', 'inet_proto . inet_service', elements.nodePorts6),
    ...map('no-endpoint-services4', 'ipv4_addr . inet_proto . inet_service', elements.noEndpoints4),
    ...map('no-endpoint-services6', 'ipv6_addr . inet_proto . inet_service', elements.noEndpoints6),
    ...map('no-endpoint-nodeports4', 'inet_proto . inet_service', elements.noEndpointNodePorts4),
    ...map('no-endpoint-nodeports6', 'inet_proto . inet_service', elements.noEndpointNodePorts6),
    ...chain('reject-chain', ['reject']),
    ...chain('endpoints-check', endpointsCheck),
    ...filterHook('input'),
    ...filterHook('forward'),
    ...filterHook('output'),
    ...chain('mark-for-masquerade', [`meta mark set meta mark | ${masqueradeMark}`]),
    ...chain('services', serviceLookup),
    ...natHook('nat-prerouting', 'prerouting', 'dstnat', 'jump services'),
    // -100 is dstnat's value; nft 1.0.6 accepts the name only on prerouting.
    ...natHook('nat-output', 'output', '-100', 'jump services'),
    ...chain('nat-postrouting', ['type nat hook postrouting priority srcnat; policy accept;', `meta mark & ${masqueradeMark} == 0 return`, `meta mark set meta mark ^ ${masqueradeMark}`, 'masquerade fully-random']),
    ...chains,
    '}',
    '',
  ].join('\n');
}

/** The program that removes the table; no error when it is already gone. */
export function removeServicesProgram(tableName: string): string {
  return `table inet ${tableName} {}\ndelete table inet ${tableName}\n`;
}
