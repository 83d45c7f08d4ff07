/**
 * The host side of one node's pod network: the node bridge holding the
 * gateway address (the first address) of each of the node's pod subnets,
 * and an nftables table that lets traffic be forwarded to and from the
 * bridge and masquerades what leaves the node's pod subnets through any
 * other interface, except to the cluster's pod ranges (sets `pod_ranges4`
 * and `pod_ranges6`: every Node's pod range, which the routes to other
 * nodes carry): pod-to-pod traffic keeps its source address, so another
 * node's network policy sees the real peer. Made once per agent (idempotent: `addr replace`, the
 * table replaced whole in one `nft -f` transaction); removed when the
 * agent stops its guests.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../host/run-tool.js';
import type { Cidr } from './cidr.js';
import { addressAt, formatCidr } from './cidr.js';
import type { NetworkNames } from './names.js';

/** The gateway of `subnet` with its prefix, e.g. 10.244.0.1/24. */
export function gatewayOf(subnet: Cidr): string {
  return `${addressAt(subnet, 1n)}/${subnet.prefix}`;
}

/** The nftables program of the node's table: replaces it whole. `podRanges` are the cluster's pod ranges, reached without masquerade. */
export function nodeRuleset(names: NetworkNames, subnets: readonly Cidr[], podRanges: readonly Cidr[] = []): string {
  const masquerade = subnets.map((s) => `    ${s.family === 4 ? 'ip' : 'ip6'} saddr ${formatCidr(s)} oifname != "${names.bridge}" masquerade`);
  const rangeSet = (family: 4 | 6): string[] => {
    const elements = [...subnets, ...podRanges].filter((c) => c.family === family).map(formatCidr);
    return [
      `  set pod_ranges${family} {`,
      `    type ${family === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval; auto-merge;`,
      ...(elements.length === 0 ? [] : [`    elements = { ${[...new Set(elements)].join(', ')} }`]),
      '  }',
    ];
  };
  return [
    `table inet ${names.table} {}`,
    `delete table inet ${names.table}`,
    `table inet ${names.table} {`,
    ...rangeSet(4),
    ...rangeSet(6),
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${names.bridge}" accept`,
    `    oifname "${names.bridge}" accept`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    // Pod to pod, on this node or another: the source stays (the service proxy's own masquerade, for node ports and hairpin, is in its table).
    '    ip daddr @pod_ranges4 return',
    '    ip6 daddr @pod_ranges6 return',
    ...masquerade,
    // A migrated VMI here keeps an address of another node's range: what it sends beyond the pod ranges is masqueraded here too.
    `    iifname "${names.bridge}" ip saddr @pod_ranges4 oifname != "${names.bridge}" masquerade`,
    `    iifname "${names.bridge}" ip6 saddr @pod_ranges6 oifname != "${names.bridge}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Makes (or refreshes) the bridge and the table; `workDir` receives the batch files. */
export async function ensureNodeNetwork(names: NetworkNames, subnets: readonly Cidr[], options: { workDir: string; podRanges: readonly Cidr[]; signal: AbortSignal }): Promise<void> {
  const lines: string[] = [];
  if (!existsSync(`/sys/class/net/${names.bridge}`)) lines.push(`link add ${names.bridge} type bridge`);
  for (const subnet of subnets) lines.push(`addr replace ${gatewayOf(subnet)} dev ${names.bridge}${subnet.family === 6 ? ' nodad' : ''}`);
  lines.push(`link set ${names.bridge} up`);
  const batch = join(options.workDir, 'node.ip');
  await writeFile(batch, `${lines.join('\n')}\n`);
  await runTool('ip', ['-batch', batch], { signal: options.signal });
  await writeNodeRuleset(names, subnets, options);
}

/** Replaces the node's table (forwarding and masquerade) in one transaction. */
export async function writeNodeRuleset(names: NetworkNames, subnets: readonly Cidr[], options: { workDir: string; podRanges: readonly Cidr[]; signal: AbortSignal }): Promise<void> {
  const rules = join(options.workDir, 'node.nft');
  await writeFile(rules, nodeRuleset(names, subnets, options.podRanges));
  await runTool('nft', ['-f', rules], { signal: options.signal });
}

/** Removes the bridge and the table, whichever exists. */
export async function removeNodeNetwork(names: NetworkNames, signal: AbortSignal): Promise<void> {
  if (existsSync(`/sys/class/net/${names.bridge}`)) await runTool('ip', ['link', 'del', names.bridge], { signal });
  const tables = await runTool('nft', ['list', 'tables', 'inet'], { signal });
  if (tables.split('\n').some((l) => l.trim() === `table inet ${names.table}`)) await runTool('nft', ['delete', 'table', 'inet', names.table], { signal });
}

/** The gateway addresses of `subnets`, without prefix. */
export function gatewayAddresses(subnets: readonly Cidr[]): string[] {
  return subnets.map((subnet) => addressAt(subnet, 1n));
}

/** Sets the sysctl at `/proc/sys/<path>` to 1; false when it already was. */
export async function enableSysctl(path: string): Promise<boolean> {
  const file = `/proc/sys/${path}`;
  if ((await readFile(file, 'utf8')).trim() === '1') return false;
  await writeFile(file, '1\n');
  return true;
}
