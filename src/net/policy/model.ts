/**
 * The policy compiler's model: the endpoints and namespaces it is given,
 * and policies of both kinds (Kubernetes NetworkPolicy, Calico
 * GlobalNetworkPolicy/NetworkPolicy) normalised into one shape of ordered
 * rules whose selectors are already resolved into address ranges.
 */
import type { AddressRange } from '../../api/ip-ranges.js';
import type { EndpointIndex } from './endpoint-index.js';

export type TransportProtocol = 'TCP' | 'UDP' | 'SCTP';

/** A port an endpoint declares by name (KubeVirt's `interfaces[].ports`). */
export interface NamedPort {
  name: string;
  port: number;
  protocol: TransportProtocol;
}

/**
 * A VMI as the policy engine sees it: who it is, its labels and addresses,
 * and, for the VMIs of this node, the host side of its sandbox's veth.
 */
export interface PolicyEndpoint {
  namespace: string;
  name: string;
  labels: Readonly<Record<string, string>>;
  /** IPv4 and IPv6 addresses of its pod interface. */
  ips: readonly string[];
  /** The host-side veth of its sandbox ('' for endpoints of other nodes). */
  hostInterface: string;
  ports?: readonly NamedPort[];
  /** True for the endpoints of this node: only they are filtered here. */
  local: boolean;
}

export interface PolicyNamespace {
  name: string;
  labels: Readonly<Record<string, string>>;
}

export type PolicyDirection = 'ingress' | 'egress';

/** A protocol by name or number (Calico allows numbers). */
export type Protocol = TransportProtocol | 'ICMP' | 'ICMPv6' | 'UDPLite' | number;

/** A port or range (`first` = `last` for one port), or a port name resolved per endpoint. */
export type PortSpec = { kind: 'range'; first: number; last: number } | { kind: 'named'; name: string };

/** Conditions on one side (source or destination) of a packet; all of them must hold. */
export interface Side {
  /** Each entry is a union of ranges the address must be in; entries are ANDed. */
  in: AddressRange[][];
  /** Each entry is a union of ranges the address must not be in. */
  notIn: AddressRange[][];
  /** Union; empty means any port. */
  ports: PortSpec[];
  notPorts: PortSpec[];
  /** The endpoints named ports resolve against: those the side's selectors match, all when unset. */
  portScope?: readonly PolicyEndpoint[];
}

export type RuleAction = 'Allow' | 'Deny' | 'Log' | 'Pass';

/** An ICMP type, and optionally code, a rule matches (Calico's `icmp`/`notICMP`). */
export interface IcmpMatch {
  type: number;
  code?: number;
}

export interface PolicyRule {
  action: RuleAction;
  protocol?: Protocol;
  notProtocol?: Protocol;
  /** With protocol ICMP or ICMPv6: the type (and code) that must match. */
  icmp?: IcmpMatch;
  /** With protocol ICMP or ICMPv6: the type (and code) that must not match. */
  notIcmp?: IcmpMatch;
  ipVersion?: 4 | 6;
  source: Side;
  destination: Side;
  /** Where the rule comes from, for the ruleset's comments and logs: `ns/name ingress[0]`. */
  origin: string;
}

/** A policy of either kind, ready to compile. */
export interface NormalizedPolicy {
  kind: 'kubernetes' | 'calico';
  /** `namespace/name` for namespaced policies, `name` for global ones. */
  id: string;
  /** Calico's order (lower first); Kubernetes policies are at 1000; none = last. */
  order: number | undefined;
  directions: ReadonlySet<PolicyDirection>;
  selects(endpoint: PolicyEndpoint): boolean;
  ingress: PolicyRule[];
  egress: PolicyRule[];
}

/** Where Calico puts Kubernetes NetworkPolicies among ordered policies. */
export const kubernetesPolicyOrder = 1000;

export function emptySide(): Side {
  return { in: [], notIn: [], ports: [], notPorts: [] };
}

/** A Calico GlobalNetworkSet or NetworkSet: labelled address ranges that Calico rule selectors match like endpoints. */
export interface PolicyNetworkSet {
  /** The NetworkSet's namespace; undefined for a GlobalNetworkSet. */
  namespace: string | undefined;
  name: string;
  labels: Readonly<Record<string, string>>;
  ranges: readonly AddressRange[];
}

/** The cluster as selectors see it. */
export interface PolicyCluster {
  endpoints: readonly PolicyEndpoint[];
  /** The same endpoints, indexed for selectors. */
  index: EndpointIndex;
  networkSets: readonly PolicyNetworkSet[];
  namespaceLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
}
