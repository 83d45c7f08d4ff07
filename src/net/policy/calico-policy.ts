/**
 * Calico's `crd.projectcalico.org/v1` GlobalNetworkPolicy and
 * NetworkPolicy → the compiler's normalised policy: `order`, `selector`
 * and `namespaceSelector` (Calico's expression language, with the
 * `projectcalico.org/namespace` label Calico adds to every endpoint),
 * `types` defaulted as Calico does, and rules with their action, protocol,
 * ICMP type/code and source/destination (nets, notNets, selector,
 * notSelector, namespaceSelector, ports, notPorts). Rule selectors also
 * match GlobalNetworkSets and NetworkSets, where Calico counts them in.
 */
import type { CalicoSelector } from '../../api/calico-selector.js';
import { parseCalicoSelector } from '../../api/calico-selector.js';
import { arrayAt, asRecord, at, numberAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import type { KObject } from '../../api/object.js';
import type { AddressRange } from '../../api/ip-ranges.js';
import { mergeRanges, parseAddressOrCidr } from '../../api/ip-ranges.js';
import { endpointRanges } from './endpoint-addresses.js';
import type { IcmpMatch, NormalizedPolicy, PolicyCluster, PolicyDirection, PolicyEndpoint, PolicyNetworkSet, PolicyRule, PortSpec, Protocol, RuleAction, Side } from './model.js';

/** The labels Calico's selectors see on an endpoint: its own plus its namespace and orchestrator. */
export function calicoEndpointLabels(endpoint: PolicyEndpoint): Record<string, string> {
  return { ...endpoint.labels, 'projectcalico.org/namespace': endpoint.namespace, 'projectcalico.org/orchestrator': 'k8s' };
}

function namespaceMatches(selector: CalicoSelector, namespace: string, cluster: PolicyCluster): boolean {
  return selector.matches({ ...(cluster.namespaceLabels.get(namespace) ?? {}), 'projectcalico.org/name': namespace });
}

/** Parses Calico port text: 80, "80", "8000:8080", or a port name. */
export function parseCalicoPort(value: unknown): PortSpec | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return { kind: 'range', first: value, last: value };
  if (typeof value !== 'string' || value === '') return undefined;
  const range = /^(\d+)(?::(\d+))?$/.exec(value);
  if (range !== null) {
    const first = Number(range[1]);
    return { kind: 'range', first, last: range[2] === undefined ? first : Number(range[2]) };
  }
  return { kind: 'named', name: value };
}

function protocolOf(value: unknown): Protocol | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const known: Record<string, Protocol> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP', icmp: 'ICMP', icmpv6: 'ICMPv6', udplite: 'UDPLite' };
  return known[value.toLowerCase()] ?? (/^\d+$/.test(value) ? Number(value) : undefined);
}

function netsOf(value: unknown): AddressRange[] {
  return mergeRanges(
    (Array.isArray(value) ? value : []).flatMap((text: unknown) => {
      const range = typeof text === 'string' ? parseAddressOrCidr(text) : undefined;
      return range === undefined ? [] : [range];
    }),
  );
}

interface Scope {
  /** The namespace rule selectors are confined to when they name no namespaceSelector (Calico NetworkPolicy). */
  namespace: string | undefined;
  cluster: PolicyCluster;
}

/** What a rule side's selectors match: endpoints, and the addresses of those and of the network sets Calico counts in. */
interface Matched {
  endpoints: PolicyEndpoint[];
  ranges: AddressRange[];
}

/** Calico's `namespaceSelector: global()`: non-namespaced resources only (the GlobalNetworkSets). */
function selectsGlobalOnly(namespaceSelectorText: string | undefined): boolean {
  return namespaceSelectorText?.replace(/\s+/g, '') === 'global()';
}

function endpointsMatching(selectorText: string | undefined, namespaceSelectorText: string | undefined, scope: Scope): PolicyEndpoint[] {
  if (selectsGlobalOnly(namespaceSelectorText)) return [];
  const selector = selectorText === undefined ? undefined : parseCalicoSelector(selectorText);
  const namespaceSelector = namespaceSelectorText === undefined ? undefined : parseCalicoSelector(namespaceSelectorText);
  return scope.cluster.endpoints.filter((endpoint) => {
    if (namespaceSelector !== undefined) {
      if (!namespaceMatches(namespaceSelector, endpoint.namespace, scope.cluster)) return false;
    } else if (scope.namespace !== undefined && endpoint.namespace !== scope.namespace) {
      return false;
    }
    return selector === undefined || selector.matches(calicoEndpointLabels(endpoint));
  });
}

/**
 * The network sets a rule side's selectors match, as Calico counts them in:
 * `namespaceSelector: global()` matches GlobalNetworkSets only; a
 * namespaceSelector, the NetworkSets of those namespaces; none, in a
 * namespaced policy, the NetworkSets of its namespace, and in a
 * GlobalNetworkPolicy every set, global or namespaced.
 */
function networkSetsMatching(selectorText: string | undefined, namespaceSelectorText: string | undefined, scope: Scope): PolicyNetworkSet[] {
  const selector = parseCalicoSelector(selectorText ?? 'all()');
  const globalOnly = selectsGlobalOnly(namespaceSelectorText);
  const namespaceSelector = namespaceSelectorText === undefined || globalOnly ? undefined : parseCalicoSelector(namespaceSelectorText);
  return scope.cluster.networkSets.filter((set) => {
    if (globalOnly) {
      if (set.namespace !== undefined) return false;
    } else if (namespaceSelector !== undefined) {
      if (set.namespace === undefined || !namespaceMatches(namespaceSelector, set.namespace, scope.cluster)) return false;
    } else if (scope.namespace !== undefined && set.namespace !== scope.namespace) {
      return false;
    }
    const labels = set.namespace === undefined ? set.labels : { ...set.labels, 'projectcalico.org/namespace': set.namespace };
    return selector.matches(labels);
  });
}

/** A rule side's selectors: the endpoints they match, and their addresses with those of the network sets they match. */
function peersMatching(selectorText: string | undefined, namespaceSelectorText: string | undefined, scope: Scope): Matched {
  const endpoints = endpointsMatching(selectorText, namespaceSelectorText, scope);
  const ranges = endpoints.flatMap(endpointRanges);
  for (const set of networkSetsMatching(selectorText, namespaceSelectorText, scope)) ranges.push(...set.ranges);
  return { endpoints, ranges: mergeRanges(ranges) };
}

function sideOf(value: unknown, scope: Scope): Side {
  const side: Side = { in: [], notIn: [], ports: [], notPorts: [] };
  const record = asRecord(value) ?? {};
  if (Array.isArray(record.nets)) side.in.push(netsOf(record.nets));
  if (Array.isArray(record.notNets)) side.notIn.push(netsOf(record.notNets));
  const selector = stringAt(record, 'selector');
  const namespaceSelector = stringAt(record, 'namespaceSelector');
  if (selector !== undefined || namespaceSelector !== undefined) {
    const matched = peersMatching(selector, namespaceSelector, scope);
    side.in.push(matched.ranges);
    side.portScope = matched.endpoints;
  }
  const notSelector = stringAt(record, 'notSelector');
  if (notSelector !== undefined) side.notIn.push(peersMatching(notSelector, namespaceSelector, scope).ranges);
  side.ports = arrayAt(record, 'ports').flatMap((port) => parseCalicoPort(port) ?? []);
  side.notPorts = arrayAt(record, 'notPorts').flatMap((port) => parseCalicoPort(port) ?? []);
  return side;
}

function icmpOf(value: unknown): IcmpMatch | undefined {
  const record = asRecord(value);
  const type = numberAt(record, 'type');
  if (type === undefined) return undefined;
  const code = numberAt(record, 'code');
  return code === undefined ? { type } : { type, code };
}

const actions: ReadonlySet<string> = new Set(['Allow', 'Deny', 'Log', 'Pass']);

function rulesOf(policy: KObject, direction: PolicyDirection, scope: Scope, id: string): PolicyRule[] {
  return recordsAt(policy, 'spec', direction).flatMap((rule, index): PolicyRule[] => {
    const action = stringAt(rule, 'action') ?? '';
    if (!actions.has(action)) return [];
    const compiled: PolicyRule = {
      action: action as RuleAction,
      source: sideOf(rule.source, scope),
      destination: sideOf(rule.destination, scope),
      origin: `${id} ${direction}[${index}]`,
    };
    const protocol = protocolOf(rule.protocol);
    if (protocol !== undefined) compiled.protocol = protocol;
    const notProtocol = protocolOf(rule.notProtocol);
    if (notProtocol !== undefined) compiled.notProtocol = notProtocol;
    const icmp = icmpOf(rule.icmp);
    if (icmp !== undefined) compiled.icmp = icmp;
    const notIcmp = icmpOf(rule.notICMP);
    if (notIcmp !== undefined) compiled.notIcmp = notIcmp;
    const ipVersion = numberAt(rule, 'ipVersion');
    if (ipVersion === 4 || ipVersion === 6) compiled.ipVersion = ipVersion;
    return [compiled];
  });
}

/** Calico's default `types`: Ingress, plus Egress when there are egress rules (Egress alone when only egress rules). */
export function calicoDirections(policy: KObject): Set<PolicyDirection> {
  const types = at(policy, 'spec', 'types');
  if (Array.isArray(types) && types.length > 0) {
    return new Set(types.flatMap((type): PolicyDirection[] => (type === 'Ingress' ? ['ingress'] : type === 'Egress' ? ['egress'] : [])));
  }
  const hasIngress = arrayAt(policy, 'spec', 'ingress').length > 0;
  const hasEgress = arrayAt(policy, 'spec', 'egress').length > 0;
  const directions = new Set<PolicyDirection>();
  if (hasIngress || !hasEgress) directions.add('ingress');
  if (hasEgress) directions.add('egress');
  return directions;
}

/** Normalises a Calico GlobalNetworkPolicy (cluster-wide) or NetworkPolicy (confined to its namespace). */
export function normalizeCalicoPolicy(policy: KObject, cluster: PolicyCluster): NormalizedPolicy {
  const namespace = policy.kind === 'NetworkPolicy' ? (policy.metadata.namespace ?? 'default') : undefined;
  const name = policy.metadata.name ?? '';
  const id = namespace === undefined ? name : `${namespace}/${name}`;
  const scope: Scope = { namespace, cluster };
  const selectorText = stringAt(policy, 'spec', 'selector');
  const namespaceSelectorText = stringAt(policy, 'spec', 'namespaceSelector');
  const selected = new Set(endpointsMatching(selectorText ?? 'all()', namespaceSelectorText, scope));
  return {
    kind: 'calico',
    id,
    order: numberAt(policy, 'spec', 'order'),
    directions: calicoDirections(policy),
    selects: (endpoint) => selected.has(endpoint),
    ingress: rulesOf(policy, 'ingress', scope, id),
    egress: rulesOf(policy, 'egress', scope, id),
  };
}
