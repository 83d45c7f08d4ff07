/**
 * One normalised policy rule → nftables rule lines (statement text inside
 * a chain). Address conditions become named interval sets (shared between
 * rules with the same addresses), named ports become anonymous
 * `address . port` sets of the endpoints that declare them, and a rule
 * that needs both families is written once per family.
 */
import type { AddressRange, IpFamily } from '../../api/ip-ranges.js';
import { addressText, parseAddressOrCidr, rangeElement } from '../../api/ip-ranges.js';
import type { PolicyEndpoint, PolicyRule, PortSpec, Protocol, Side } from './model.js';

/** Named sets of the table, deduplicated by content. */
export class AddressSets {
  private readonly byContent = new Map<string, string>();
  private readonly declarations: string[] = [];

  /** The name of the set holding `ranges` (all of one family). */
  nameFor(family: IpFamily, ranges: readonly AddressRange[]): string {
    const elements = ranges.map(rangeElement);
    const key = `${family}|${elements.join(',')}`;
    const known = this.byContent.get(key);
    if (known !== undefined) return known;
    const name = `peers_${this.byContent.size}_v${family}`;
    this.byContent.set(key, name);
    const body = elements.length === 0 ? '' : ` elements = { ${elements.join(', ')} };`;
    this.declarations.push(`  set ${name} { type ${family === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags interval;${body} }`);
    return name;
  }

  /** The `set …` lines of the table. */
  lines(): readonly string[] {
    return this.declarations;
  }
}

const protocolNumbers: Record<string, number> = { TCP: 6, UDP: 17, SCTP: 132, ICMP: 1, ICMPv6: 58, UDPLite: 136 };

function protocolNumber(protocol: Protocol): number {
  return typeof protocol === 'number' ? protocol : (protocolNumbers[protocol] ?? 0);
}

function familyKeyword(family: IpFamily): string {
  return family === 4 ? 'ip' : 'ip6';
}

function portRanges(ports: readonly PortSpec[]): string[] {
  const ranges = ports.flatMap((port) => (port.kind === 'range' ? [[Math.min(port.first, port.last), Math.max(port.first, port.last)] as const] : []));
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [first, last] of sorted) {
    const previous = merged[merged.length - 1];
    if (previous !== undefined && first <= previous[1] + 1) previous[1] = Math.max(previous[1], last);
    else merged.push([first, last]);
  }
  return merged.map(([first, last]) => (first === last ? String(first) : `${first}-${last}`));
}

/** `address . port` pairs of the endpoints in scope that declare one of the named ports for `protocol`. */
function namedPairs(ports: readonly PortSpec[], scope: readonly PolicyEndpoint[], family: IpFamily, protocol: Protocol | undefined): string[] {
  const names = new Set(ports.flatMap((port) => (port.kind === 'named' ? [port.name] : [])));
  if (names.size === 0) return [];
  const pairs = new Set<string>();
  for (const endpoint of scope) {
    const declared = (endpoint.ports ?? []).filter((port) => names.has(port.name) && (protocol === undefined || protocolNumber(port.protocol) === protocolNumber(protocol)));
    if (declared.length === 0) continue;
    for (const ip of endpoint.ips) {
      const range = parseAddressOrCidr(ip);
      if (range?.family !== family) continue;
      for (const port of declared) pairs.add(`${addressText(range)} . ${port.port}`);
    }
  }
  return [...pairs].sort();
}

interface RenderContext {
  sets: AddressSets;
  allEndpoints: readonly PolicyEndpoint[];
}

/**
 * The alternative term lists (ORed) that express one side in one family;
 * an empty list means the side cannot match in that family.
 */
function sideAlternatives(side: Side, role: 's' | 'd', family: IpFamily | undefined, protocol: Protocol | undefined, context: RenderContext): string[][] {
  const base: string[] = [];
  for (const ranges of side.in) {
    if (family === undefined) return [];
    const ofFamily = ranges.filter((range) => range.family === family);
    if (ofFamily.length === 0) return [];
    base.push(`${familyKeyword(family)} ${role}addr @${context.sets.nameFor(family, ofFamily)}`);
  }
  for (const ranges of side.notIn) {
    if (family === undefined) return [];
    const ofFamily = ranges.filter((range) => range.family === family);
    if (ofFamily.length > 0) base.push(`${familyKeyword(family)} ${role}addr != @${context.sets.nameFor(family, ofFamily)}`);
  }
  const scope = side.portScope ?? context.allEndpoints;
  const notNumeric = portRanges(side.notPorts);
  if (notNumeric.length > 0) base.push(`th ${role}port != { ${notNumeric.join(', ')} }`);
  if (side.notPorts.some((port) => port.kind === 'named') && family !== undefined) {
    const pairs = namedPairs(side.notPorts, scope, family, protocol);
    if (pairs.length > 0) base.push(`${familyKeyword(family)} ${role}addr . th ${role}port != { ${pairs.join(', ')} }`);
  }
  if (side.ports.length === 0) return [base];
  const alternatives: string[][] = [];
  const numeric = portRanges(side.ports);
  if (numeric.length > 0) alternatives.push([...base, `th ${role}port { ${numeric.join(', ')} }`]);
  if (family !== undefined) {
    const pairs = namedPairs(side.ports, scope, family, protocol);
    if (pairs.length > 0) alternatives.push([...base, `${familyKeyword(family)} ${role}addr . th ${role}port { ${pairs.join(', ')} }`]);
  }
  return alternatives;
}

/** `icmp type 8 icmp code 0`-style terms of a rule's `icmp` and `notICMP` (ICMPv6 with protocol ICMPv6). */
function icmpTerms(rule: PolicyRule): string[] {
  const keyword = rule.protocol !== undefined && protocolNumber(rule.protocol) === 58 ? 'icmpv6' : 'icmp';
  const terms: string[] = [];
  if (rule.icmp !== undefined) {
    terms.push(`${keyword} type ${rule.icmp.type}`);
    if (rule.icmp.code !== undefined) terms.push(`${keyword} code ${rule.icmp.code}`);
  }
  if (rule.notIcmp !== undefined) {
    // Not (type and code): one concatenated match, so the rule stays one rule (a Log verdict logs once).
    terms.push(rule.notIcmp.code === undefined ? `${keyword} type != ${rule.notIcmp.type}` : `${keyword} type . ${keyword} code != { ${rule.notIcmp.type} . ${rule.notIcmp.code} }`);
  }
  return terms;
}

function needsFamily(rule: PolicyRule): boolean {
  const sideNeeds = (side: Side): boolean => side.in.length > 0 || side.notIn.length > 0 || [...side.ports, ...side.notPorts].some((port) => port.kind === 'named');
  return rule.ipVersion !== undefined || sideNeeds(rule.source) || sideNeeds(rule.destination);
}

function quoted(text: string): string {
  const clean = text.replace(/["\\]/g, '');
  return `"${clean.length > 120 ? `${clean.slice(0, 117)}...` : clean}"`;
}

/** The rule lines for `rule` ending in `verdict` (`accept`, `drop`, `goto x`, or a `log …` statement that continues). */
export function renderRule(rule: PolicyRule, verdict: string, context: RenderContext): string[] {
  // ICMP is IPv4's, ICMPv6 IPv6's: the other family's copy could never match.
  const protocolFamily = rule.protocol === undefined ? undefined : protocolNumber(rule.protocol) === 1 ? 4 : protocolNumber(rule.protocol) === 58 ? 6 : undefined;
  const families: (IpFamily | undefined)[] = needsFamily(rule) ? ([4, 6] as const).filter((f) => (rule.ipVersion === undefined || rule.ipVersion === f) && (protocolFamily === undefined || protocolFamily === f)) : [undefined];
  const lines: string[] = [];
  for (const family of families) {
    const head: string[] = [];
    if (family !== undefined) head.push(`meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`);
    if (rule.protocol !== undefined) head.push(`meta l4proto ${protocolNumber(rule.protocol)}`);
    if (rule.notProtocol !== undefined) head.push(`meta l4proto != ${protocolNumber(rule.notProtocol)}`);
    head.push(...icmpTerms(rule));
    for (const source of sideAlternatives(rule.source, 's', family, rule.protocol, context)) {
      for (const destination of sideAlternatives(rule.destination, 'd', family, rule.protocol, context)) {
        lines.push([...head, ...source, ...destination, 'counter', verdict, `comment ${quoted(rule.origin)}`].join(' '));
      }
    }
  }
  return lines;
}

export { quoted as nftQuoted };
