/**
 * The policy compiler: every NetworkPolicy and Calico policy of the
 * cluster, its namespaces and endpoints → one nftables `inet` table for
 * this node, replaced atomically by one `nft -f`.
 *
 * Where it filters: the node bridge's traffic reaches the `inet` forward
 * hook through br_netfilter (built into this kernel and on by default,
 * `bridge-nf-call-iptables`), which also gives it conntrack; the `bridge`
 * family would see the veths as `iifname`/`oifname` but has no conntrack
 * here (`nf_conntrack_bridge` is not built), so it could not keep
 * established connections. In the `inet` forward hook `iifname` is the
 * bridge itself, so endpoints are found by address: `ip saddr` for their
 * egress, `ip daddr` for their ingress, through verdict maps. Traffic
 * between an endpoint and its own node (input/output hooks) is not
 * filtered, as Kubernetes specifies.
 *
 * Two base chains on the forward hook, egress first, then ingress: an
 * `accept` ends only its own base chain, so a packet must pass both. Per
 * endpoint and direction a chain holds, in Calico's order, the Calico
 * rules (inline, so Pass can leave the Calico part), jumps to the shared
 * chain of each Kubernetes policy (order 1000: allows ending in accept),
 * and a final drop.
 */
import type { KObject } from '../../api/object.js';
import type { IpFamily } from '../../api/ip-ranges.js';
import { addressText, mergeRanges, parseAddressOrCidr } from '../../api/ip-ranges.js';
import { arrayAt } from '../../api/kinds/read.js';
import { normalizeCalicoPolicy } from './calico-policy.js';
import { EndpointIndex } from './endpoint-index.js';
import { normalizeNetworkPolicy } from './kubernetes-policy.js';
import type { NormalizedPolicy, PolicyCluster, PolicyDirection, PolicyEndpoint, PolicyNamespace, PolicyNetworkSet, PolicyRule } from './model.js';
import { kubernetesPolicyOrder } from './model.js';
import { AddressSets, nftQuoted, renderRule } from './rules.js';

/** What the compiler reads. */
export interface PolicyInput {
  /** `networking.k8s.io/v1` NetworkPolicies. */
  networkPolicies: readonly KObject[];
  /** `crd.projectcalico.org/v1` GlobalNetworkPolicies and NetworkPolicies. */
  calicoPolicies: readonly KObject[];
  /** `crd.projectcalico.org/v1` GlobalNetworkSets and NetworkSets, matched by Calico rule selectors. */
  networkSets: readonly KObject[];
  namespaces: readonly PolicyNamespace[];
  /** All endpoints of the cluster; those with `local` are filtered here. */
  endpoints: readonly PolicyEndpoint[];
}

export interface CompileOptions {
  /** The `inet` table this node's rules live in. */
  tableName: string;
  /** Calico `Log` rules log with this prefix (default `calico-packet`). */
  logPrefix?: string;
  /** When set, `Log` rules send to this nflog group instead of the kernel log. */
  logGroup?: number;
}

export interface CompiledRuleset {
  /** The `nft -f` input: creates, deletes and recreates the table in one transaction. */
  text: string;
  /** Policies that could not be compiled (skipped), with why. */
  warnings: string[];
  rules: number;
  /** Local endpoints isolated per direction. */
  isolated: { ingress: number; egress: number };
}

const directions: readonly PolicyDirection[] = ['egress', 'ingress'];

function normalizeAll(input: PolicyInput, cluster: PolicyCluster, warnings: string[]): NormalizedPolicy[] {
  const policies: NormalizedPolicy[] = [];
  const attempt = (policy: KObject, normalize: (p: KObject, c: PolicyCluster) => NormalizedPolicy): void => {
    try {
      policies.push(normalize(policy, cluster));
    } catch (err) {
      const where = `${policy.kind ?? 'policy'} ${policy.metadata.namespace === undefined ? '' : `${policy.metadata.namespace}/`}${policy.metadata.name ?? ''}`;
      warnings.push(`${where} is skipped: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  for (const policy of input.networkPolicies) attempt(policy, normalizeNetworkPolicy);
  for (const policy of input.calicoPolicies) attempt(policy, normalizeCalicoPolicy);
  return policies;
}

function byOrder(a: NormalizedPolicy, b: NormalizedPolicy): number {
  const orderA = a.order ?? Number.POSITIVE_INFINITY;
  const orderB = b.order ?? Number.POSITIVE_INFINITY;
  return orderA === orderB ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : orderA - orderB;
}

/**
 * Policies match endpoints by address, so a sandbox must not send with
 * another's: a `bridge` table (same name) drops IP packets entering the
 * bridge from a local veth with a source that is not the endpoint's own
 * (link-local, unspecified and DHCP sources stay allowed for NDP, DAD and
 * address setup). No conntrack is needed there.
 */
function antiSpoofTable(tableName: string, locals: readonly PolicyEndpoint[]): string[] {
  const elements: string[] = [];
  const chains: string[] = [];
  locals.forEach((endpoint, index) => {
    if (endpoint.hostInterface === '') return;
    const own = endpoint.ips.flatMap((ip) => {
      const range = parseAddressOrCidr(ip);
      return range === undefined || range.first !== range.last ? [] : [range];
    });
    const v4 = ['0.0.0.0', ...own.filter((r) => r.family === 4).map(addressText)];
    const v6 = ['::', 'fe80::/10', ...own.filter((r) => r.family === 6).map(addressText)];
    const comment = nftQuoted(`${endpoint.namespace}/${endpoint.name}: not its address`);
    chains.push(`  chain source_${index} {\n    ip saddr != { ${v4.join(', ')} } counter drop comment ${comment}\n    ip6 saddr != { ${v6.join(', ')} } counter drop comment ${comment}\n  }`);
    elements.push(`${nftQuoted(endpoint.hostInterface)} : jump source_${index}`);
  });
  const table = `bridge ${tableName}`;
  return [
    `table ${table} {}`,
    `delete table ${table}`,
    `table ${table} {`,
    ...chains,
    `  map sources { type ifname : verdict;${elements.length === 0 ? '' : ` elements = { ${elements.join(', ')} };`} }`,
    '  chain prerouting {',
    '    type filter hook prerouting priority -200; policy accept;',
    '    iifname vmap @sources',
    '  }',
    '}',
  ];
}

/** A GlobalNetworkSet's or NetworkSet's labels and nets (entries that are not addresses or CIDRs, which admission refuses, are skipped). */
function networkSetOf(set: KObject): PolicyNetworkSet {
  const ranges = arrayAt(set, 'spec', 'nets').flatMap((net) => {
    const range = typeof net === 'string' ? parseAddressOrCidr(net) : undefined;
    return range === undefined ? [] : [range];
  });
  const namespace = set.kind === 'NetworkSet' ? (set.metadata.namespace ?? 'default') : undefined;
  return { namespace, name: set.metadata.name ?? '', labels: set.metadata.labels ?? {}, ranges: mergeRanges(ranges) };
}

/** Compiles the cluster's policies into this node's table. Pure. */
export function compilePolicies(input: PolicyInput, options: CompileOptions): CompiledRuleset {
  const warnings: string[] = [];
  const cluster: PolicyCluster = {
    endpoints: input.endpoints,
    index: new EndpointIndex(input.endpoints),
    networkSets: input.networkSets.map(networkSetOf),
    namespaceLabels: new Map(input.namespaces.map((namespace) => [namespace.name, namespace.labels])),
  };
  const policies = normalizeAll(input, cluster, warnings);
  const sets = new AddressSets();
  const context = { sets, allEndpoints: input.endpoints };
  const chains: string[] = [];
  const dispatch: Record<PolicyDirection, Record<IpFamily, string[]>> = { egress: { 4: [], 6: [] }, ingress: { 4: [], 6: [] } };
  const kubernetesChains = new Map<string, string>();
  const isolated = { ingress: 0, egress: 0 };
  let rules = 0;

  const chain = (name: string, lines: readonly string[]): void => {
    rules += lines.length;
    chains.push(`  chain ${name} {\n${lines.map((line) => `    ${line}\n`).join('')}  }`);
  };
  const kubernetesChain = (policy: NormalizedPolicy, direction: PolicyDirection): string => {
    const key = `${policy.id}|${direction}`;
    const known = kubernetesChains.get(key);
    if (known !== undefined) return known;
    const name = `knp_${kubernetesChains.size}_${direction}`;
    kubernetesChains.set(key, name);
    chain(name, policy[direction].flatMap((rule) => renderRule(rule, 'accept', context)));
    return name;
  };
  const logStatement = (rule: PolicyRule): string => {
    const prefix = nftQuoted(`${options.logPrefix ?? 'calico-packet'}: ${rule.origin.split(' ')[0] ?? ''} `);
    return options.logGroup === undefined ? `log prefix ${prefix} level info` : `log prefix ${prefix} group ${options.logGroup}`;
  };

  const locals = input.endpoints.filter((endpoint) => endpoint.local);
  locals.forEach((endpoint, index) => {
    for (const direction of directions) {
      const applying = policies.filter((policy) => policy.directions.has(direction) && policy.selects(endpoint)).sort(byOrder);
      if (applying.length === 0) continue;
      isolated[direction]++;
      const kubernetes = applying.filter((policy) => policy.kind === 'kubernetes');
      const before = applying.filter((policy) => policy.kind === 'calico' && policy.order !== undefined && policy.order <= kubernetesPolicyOrder);
      const after = applying.filter((policy) => policy.kind === 'calico' && !before.includes(policy));
      const name = `ep_${index}_${direction}`;
      const passChain = `${name}_pass`;
      // After a Pass the Kubernetes policies decide; with none selecting the endpoint, nothing isolates it (Calico's profile allows).
      const afterKubernetes = kubernetes.length > 0 ? 'drop' : 'accept';
      const jumps = kubernetes.map((policy) => `jump ${kubernetesChain(policy, direction)}`);
      let passUsed = false;
      const calicoLines = (policy: NormalizedPolicy, passVerdict: string): string[] =>
        policy[direction].flatMap((rule) => {
          if (rule.action === 'Pass' && passVerdict.startsWith('goto')) passUsed = true;
          const verdict = rule.action === 'Allow' ? 'accept' : rule.action === 'Deny' ? 'drop' : rule.action === 'Log' ? logStatement(rule) : passVerdict;
          return renderRule(rule, verdict, context);
        });
      const lines = [
        ...before.flatMap((policy) => calicoLines(policy, `goto ${passChain}`)),
        ...jumps,
        ...after.flatMap((policy) => calicoLines(policy, afterKubernetes)),
        `counter drop comment ${nftQuoted(`${endpoint.namespace}/${endpoint.name} ${direction}: no policy allows it`)}`,
      ];
      if (passUsed) chain(passChain, [...jumps, `counter ${afterKubernetes} comment ${nftQuoted(`${endpoint.namespace}/${endpoint.name} ${direction}: passed`)}`]);
      chain(name, lines);
      for (const ip of endpoint.ips) {
        const range = parseAddressOrCidr(ip);
        if (range === undefined || range.first !== range.last) continue;
        dispatch[direction][range.family].push(`${addressText(range)} : jump ${name}`);
      }
    }
  });

  const map = (name: string, family: IpFamily, elements: readonly string[]): string =>
    `  map ${name} { type ${family === 4 ? 'ipv4_addr' : 'ipv6_addr'} : verdict;${elements.length === 0 ? '' : ` elements = { ${elements.join(', ')} };`} }`;
  const base = (direction: PolicyDirection, priority: number): string => {
    const field = direction === 'egress' ? 'saddr' : 'daddr';
    return [
      `  chain ${direction} {`,
      `    type filter hook forward priority ${priority}; policy accept;`,
      // Established packets, nearly all of them, leave at the first rule.
      '    ct state established,related accept',
      '    ct state invalid counter drop',
      `    ip ${field} vmap @${direction}_v4`,
      `    ip6 ${field} vmap @${direction}_v6`,
      '  }',
    ].join('\n');
  };
  const table = `inet ${options.tableName}`;
  const text = [
    `table ${table} {}`,
    `delete table ${table}`,
    `table ${table} {`,
    ...sets.lines(),
    // Chains before the maps whose elements jump to them.
    ...chains,
    map('egress_v4', 4, dispatch.egress[4]),
    map('egress_v6', 6, dispatch.egress[6]),
    map('ingress_v4', 4, dispatch.ingress[4]),
    map('ingress_v6', 6, dispatch.ingress[6]),
    base('egress', 0),
    base('ingress', 1),
    '}',
    ...antiSpoofTable(options.tableName, locals),
    '',
  ].join('\n');
  return { text, warnings, rules, isolated };
}
