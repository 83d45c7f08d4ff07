/**
 * `networking.k8s.io/v1` NetworkPolicy → the compiler's normalised policy:
 * who it selects, which directions it isolates (`policyTypes`, defaulted
 * as kube-apiserver does), and one Allow rule per rule and protocol with
 * its peers (pod/namespace selectors, ipBlocks minus `except`) resolved
 * into address ranges.
 */
import { labelSelectorFromObject } from '../../api/labels.js';
import type { LabelSelector } from '../../api/labels.js';
import { asRecord, at, recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import type { KObject } from '../../api/object.js';
import type { AddressRange } from '../../api/ip-ranges.js';
import { mergeRanges, parseAddressOrCidr, subtractRanges } from '../../api/ip-ranges.js';
import { endpointRanges } from './endpoint-addresses.js';
import type { NormalizedPolicy, PolicyCluster, PolicyDirection, PolicyEndpoint, PolicyRule, PortSpec, Side, TransportProtocol } from './model.js';
import { emptySide, kubernetesPolicyOrder } from './model.js';

function selector(value: unknown): LabelSelector {
  const record = asRecord(value);
  // An absent selector inside a peer is "not this condition"; callers decide. Here `{}` and absent mean all.
  return labelSelectorFromObject((record ?? {}));
}

/** The policy types the policy isolates, defaulted like kube-apiserver: Ingress, plus Egress when it has egress rules. */
export function policyDirections(policy: KObject): Set<PolicyDirection> {
  const types = at(policy, 'spec', 'policyTypes');
  const directions = new Set<PolicyDirection>();
  if (Array.isArray(types) && types.length > 0) {
    for (const type of types) {
      if (type === 'Ingress') directions.add('ingress');
      if (type === 'Egress') directions.add('egress');
    }
    return directions;
  }
  directions.add('ingress');
  const egress = at(policy, 'spec', 'egress');
  if (Array.isArray(egress) && egress.length > 0) directions.add('egress');
  return directions;
}

interface Peers {
  /** Address ranges of all peers; undefined when the rule names no peers (any address). */
  ranges: AddressRange[] | undefined;
  /** The endpoints selected by pod/namespace selector peers (for named ports). */
  endpoints: PolicyEndpoint[] | undefined;
}

function resolvePeers(peers: unknown, namespace: string, cluster: PolicyCluster): Peers {
  if (!Array.isArray(peers) || peers.length === 0) return { ranges: undefined, endpoints: undefined };
  const ranges: AddressRange[] = [];
  const endpoints = new Set<PolicyEndpoint>();
  for (const peer of recordsAt({ peers }, 'peers')) {
    const block = asRecord(peer.ipBlock);
    if (block !== undefined) {
      const cidr = parseAddressOrCidr(stringAt(block, 'cidr') ?? '');
      if (cidr === undefined) continue;
      const excepted = (Array.isArray(block.except) ? block.except : []).flatMap((text: unknown) => {
        const range = typeof text === 'string' ? parseAddressOrCidr(text) : undefined;
        return range === undefined ? [] : [range];
      });
      ranges.push(...subtractRanges([cidr], excepted));
      continue;
    }
    const podSelector = peer.podSelector === undefined ? undefined : selector(peer.podSelector);
    const namespaceSelector = peer.namespaceSelector === undefined ? undefined : selector(peer.namespaceSelector);
    if (podSelector === undefined && namespaceSelector === undefined) continue;
    const candidates = podSelector === undefined ? (namespaceSelector === undefined ? cluster.index.inNamespace(namespace) : cluster.endpoints) : cluster.index.candidates(podSelector, namespaceSelector === undefined ? namespace : undefined);
    for (const endpoint of candidates) {
      const inNamespace =
        namespaceSelector === undefined ? endpoint.namespace === namespace : namespaceSelector.matches(cluster.namespaceLabels.get(endpoint.namespace) ?? {});
      if (!inNamespace) continue;
      if (podSelector !== undefined && !podSelector.matches(endpoint.labels)) continue;
      endpoints.add(endpoint);
      ranges.push(...endpointRanges(endpoint));
    }
  }
  return { ranges: mergeRanges(ranges), endpoints: [...endpoints] };
}

const protocols: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);

/** The rule's ports grouped by protocol; an empty map means any protocol and port. */
function portsByProtocol(ports: unknown): Map<TransportProtocol, PortSpec[] | 'any'> {
  const grouped = new Map<TransportProtocol, PortSpec[] | 'any'>();
  for (const entry of recordsAt({ ports }, 'ports')) {
    const protocolText = stringAt(entry, 'protocol') ?? 'TCP';
    if (!protocols.has(protocolText)) continue;
    const protocol = protocolText as TransportProtocol;
    const port = entry.port;
    const endPort = typeof entry.endPort === 'number' ? entry.endPort : undefined;
    const current = grouped.get(protocol);
    if (port === undefined || port === null) {
      grouped.set(protocol, 'any');
      continue;
    }
    if (current === 'any') continue;
    const list = current ?? [];
    if (typeof port === 'number') list.push({ kind: 'range', first: port, last: endPort ?? port });
    else if (typeof port === 'string' && /^\d+$/.test(port)) list.push({ kind: 'range', first: Number(port), last: Number(port) });
    else if (typeof port === 'string') list.push({ kind: 'named', name: port });
    grouped.set(protocol, list);
  }
  return grouped;
}

function rulesOf(policy: KObject, direction: PolicyDirection, selected: PolicyEndpoint[], cluster: PolicyCluster, id: string): PolicyRule[] {
  const namespace = policy.metadata.namespace ?? 'default';
  const rules: PolicyRule[] = [];
  recordsAt(policy, 'spec', direction).forEach((rule, index) => {
    const peers = resolvePeers(direction === 'ingress' ? rule.from : rule.to, namespace, cluster);
    const origin = `${id} ${direction}[${index}]`;
    const peerSide = (): Side => (peers.ranges === undefined ? emptySide() : { ...emptySide(), in: [peers.ranges] });
    const grouped = portsByProtocol(rule.ports);
    if (grouped.size === 0) {
      rules.push({ action: 'Allow', source: direction === 'ingress' ? peerSide() : emptySide(), destination: direction === 'egress' ? peerSide() : emptySide(), origin });
      return;
    }
    for (const [protocol, ports] of grouped) {
      // Named ports resolve against the destination: the selected VMIs for ingress, the peers for egress.
      const portScope = direction === 'ingress' ? selected : (peers.endpoints ?? cluster.endpoints);
      const destination: Side = direction === 'egress' ? peerSide() : emptySide();
      if (ports !== 'any') {
        destination.ports = ports;
        destination.portScope = portScope;
      }
      rules.push({ action: 'Allow', protocol, source: direction === 'ingress' ? peerSide() : emptySide(), destination, origin });
    }
  });
  return rules;
}

/** Normalises one NetworkPolicy against the cluster's endpoints and namespaces. */
export function normalizeNetworkPolicy(policy: KObject, cluster: PolicyCluster): NormalizedPolicy {
  const namespace = policy.metadata.namespace ?? 'default';
  const id = `${namespace}/${policy.metadata.name ?? ''}`;
  const podSelector = selector(recordAt(policy, 'spec', 'podSelector') ?? {});
  const selects = (endpoint: PolicyEndpoint): boolean => endpoint.namespace === namespace && podSelector.matches(endpoint.labels);
  const selected = cluster.index.candidates(podSelector, namespace).filter(selects);
  return {
    kind: 'kubernetes',
    id,
    order: kubernetesPolicyOrder,
    directions: policyDirections(policy),
    selects,
    ingress: rulesOf(policy, 'ingress', selected, cluster, id),
    egress: rulesOf(policy, 'egress', selected, cluster, id),
  };
}
