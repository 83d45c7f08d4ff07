/**
 * kube-apiserver's validation of `networking.k8s.io/v1` NetworkPolicy
 * (`ValidateNetworkPolicySpec`): label selectors, ports (protocol, port
 * numbers and names, `endPort` only with a numeric `port` and not below
 * it), peers (at least one selector or an ipBlock alone), ipBlock CIDRs
 * with every `except` strictly inside, and `policyTypes`, with kube's
 * field paths and messages.
 */
import type { FieldError } from '../errors.js';
import type { AddressRange } from '../ip-ranges.js';
import { parseAddressOrCidr, rangeContains } from '../ip-ranges.js';
import { ApiError } from '../errors.js';
import { labelSelectorFromObject } from '../labels.js';
import { asRecord, at, recordsAt } from '../kinds/read.js';
import type { KObject } from '../object.js';
import { forbidden, invalid, notSupported, required } from './field-error.js';

const protocols = ['SCTP', 'TCP', 'UDP'];
const supportedProtocols = protocols.map((p) => `"${p}"`).join(', ');

function validateSelector(value: unknown, path: string): FieldError[] {
  if (value === undefined || value === null) return [];
  try {
    labelSelectorFromObject(value);
    return [];
  } catch (err) {
    return [invalid(path, err instanceof ApiError ? err.message.replace(/^invalid label selector: /, '') : String(err))];
  }
}

/** `validation.IsValidPortName`: IANA_SVC_NAME. */
function portNameProblem(name: string): string | undefined {
  if (name.length > 15) return 'must be no more than 15 characters';
  if (!/^[a-z0-9-]+$/.test(name)) return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
  if (name.includes('--')) return 'must not contain consecutive hyphens';
  if (!/[a-z]/.test(name)) return 'must contain at least one letter (a-z)';
  if (name.startsWith('-') || name.endsWith('-')) return 'must not begin or end with a hyphen';
  return undefined;
}

const portRange = 'must be between 1 and 65535, inclusive';

function validatePort(port: Record<string, unknown>, path: string): FieldError[] {
  const errors: FieldError[] = [];
  const protocol = port.protocol;
  if (protocol !== undefined && (typeof protocol !== 'string' || !protocols.includes(protocol))) {
    errors.push(notSupported(`${path}.protocol`, `Unsupported value: ${JSON.stringify(protocol)}: supported values: ${supportedProtocols}`));
  }
  const value = port.port;
  const endPort = port.endPort;
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 1 || value > 65535) errors.push(invalid(`${path}.port`, `Invalid value: ${value}: ${portRange}`));
    if (typeof endPort === 'number') {
      if (!Number.isInteger(endPort) || endPort < 1 || endPort > 65535) errors.push(invalid(`${path}.endPort`, `Invalid value: ${endPort}: ${portRange}`));
      else if (endPort < value) errors.push(invalid(`${path}.endPort`, `Invalid value: ${endPort}: must be greater than or equal to \`port\``));
    }
  } else if (typeof value === 'string') {
    const problem = portNameProblem(value);
    if (problem !== undefined) errors.push(invalid(`${path}.port`, `Invalid value: ${JSON.stringify(value)}: ${problem}`));
    if (endPort !== undefined && endPort !== null) errors.push(invalid(`${path}.endPort`, `Invalid value: ${JSON.stringify(endPort)}: may not be specified when \`port\` is non-numeric`));
  } else if (endPort !== undefined && endPort !== null) {
    errors.push(invalid(`${path}.endPort`, `Invalid value: ${JSON.stringify(endPort)}: may not be specified when \`port\` is not specified`));
  }
  return errors;
}

/** A CIDR with its prefix length (kube requires one), or undefined. */
function parseCidr(text: string): { range: AddressRange; prefix: number } | undefined {
  const prefix = /\/(\d{1,3})$/.exec(text)?.[1];
  const range = prefix === undefined ? undefined : parseAddressOrCidr(text);
  return range === undefined || prefix === undefined ? undefined : { range, prefix: Number(prefix) };
}

function validateIpBlock(block: Record<string, unknown>, path: string): FieldError[] {
  const cidrText = block.cidr;
  if (typeof cidrText !== 'string' || cidrText === '') return [required(`${path}.cidr`, 'Required value')];
  const cidr = parseCidr(cidrText);
  if (cidr === undefined) return [invalid(`${path}.cidr`, `Invalid value: ${JSON.stringify(cidrText)}: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`)];
  const errors: FieldError[] = [];
  const except = Array.isArray(block.except) ? (block.except as unknown[]) : [];
  except.forEach((text, i) => {
    const field = `${path}.except[${i}]`;
    const inner = typeof text === 'string' ? parseCidr(text) : undefined;
    if (inner === undefined) {
      errors.push(invalid(field, `Invalid value: ${JSON.stringify(text)}: must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)`));
      return;
    }
    const inside = inner.prefix > cidr.prefix && rangeContains(cidr.range, inner.range);
    if (!inside) errors.push(invalid(field, `Invalid value: ${JSON.stringify(text)}: must be a strict subset of \`cidr\``));
  });
  return errors;
}

function validatePeer(peer: Record<string, unknown>, path: string): FieldError[] {
  const errors: FieldError[] = [];
  let count = 0;
  if (peer.podSelector !== undefined && peer.podSelector !== null) {
    count++;
    errors.push(...validateSelector(peer.podSelector, `${path}.podSelector`));
  }
  if (peer.namespaceSelector !== undefined && peer.namespaceSelector !== null) {
    count++;
    errors.push(...validateSelector(peer.namespaceSelector, `${path}.namespaceSelector`));
  }
  const block = asRecord(peer.ipBlock);
  if (block !== undefined) {
    count++;
    errors.push(...validateIpBlock(block, `${path}.ipBlock`));
  }
  if (count === 0) errors.push(required(path, 'must specify a peer'));
  else if (block !== undefined && count > 1) errors.push(forbidden(path, 'may not specify both ipBlock and another peer'));
  return errors;
}

/** The admission errors of a NetworkPolicy; empty when kube-apiserver would accept it. */
export function validateNetworkPolicy(policy: KObject): FieldError[] {
  const errors: FieldError[] = [...validateSelector(at(policy, 'spec', 'podSelector'), 'spec.podSelector')];
  for (const [direction, peersField] of [
    ['ingress', 'from'],
    ['egress', 'to'],
  ] as const) {
    recordsAt(policy, 'spec', direction).forEach((rule, i) => {
      const path = `spec.${direction}[${i}]`;
      recordsAt(rule, 'ports').forEach((port, j) => errors.push(...validatePort(port, `${path}.ports[${j}]`)));
      recordsAt(rule, peersField).forEach((peer, j) => errors.push(...validatePeer(peer, `${path}.${peersField}[${j}]`)));
    });
  }
  const types = at(policy, 'spec', 'policyTypes');
  if (Array.isArray(types)) {
    types.forEach((type, i) => {
      if (type !== 'Ingress' && type !== 'Egress') errors.push(notSupported(`spec.policyTypes[${i}]`, `Unsupported value: ${JSON.stringify(type)}: supported values: "Egress", "Ingress"`));
    });
    if (types.length > 2) errors.push(invalid('spec.policyTypes', `Invalid value: ${JSON.stringify(types)}: may not specify more than two policyTypes`));
  }
  return errors;
}
