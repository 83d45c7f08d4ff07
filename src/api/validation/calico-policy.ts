/**
 * Admission of Calico's `crd.projectcalico.org/v1` GlobalNetworkPolicy and
 * NetworkPolicy, as Calico's own validator checks them: selectors in
 * Calico's expression language, `types`, rule actions, protocols, ports
 * ("80", 80, "8000:8080" or a port name, only with TCP, UDP or SCTP),
 * `icmp`/`notICMP` (only with ICMP or ICMPv6), `nets`/`notNets` CIDRs and
 * `ipVersion`; and network sets' `nets`. What Vireo does not enforce
 * (tiers other than `default`, service accounts, services, doNotTrack,
 * preDNAT) is refused, never silently ignored.
 */
import { CalicoSelectorError, parseCalicoSelector } from '../calico-selector.js';
import type { FieldError } from '../errors.js';
import { parseAddressOrCidr } from '../ip-ranges.js';
import { arrayAt, asRecord, at, recordsAt } from '../kinds/read.js';
import type { KObject } from '../object.js';
import { invalid, notSupported, required } from './field-error.js';

function validateSelector(value: unknown, path: string): FieldError[] {
  if (value === undefined) return [];
  if (typeof value !== 'string') return [invalid(path, `Invalid value: ${JSON.stringify(value)}: a selector is a string such as "app == 'web'"`)];
  try {
    parseCalicoSelector(value);
    return [];
  } catch (err) {
    return [invalid(path, err instanceof CalicoSelectorError ? err.message : String(err))];
  }
}

const namedProtocols = ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'];
const portProtocols = new Set(['TCP', 'UDP', 'SCTP', 6, 17, 132]);

function protocolProblem(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 1 && value <= 255 ? undefined : 'a protocol number must be between 1 and 255';
  if (typeof value === 'string' && namedProtocols.includes(value)) return undefined;
  return `supported values: ${namedProtocols.map((p) => `"${p}"`).join(', ')}, or a number 1-255`;
}

function portProblem(value: unknown): string | undefined {
  const valid = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;
  if (typeof value === 'number') return valid(value) ? undefined : 'a port must be between 0 and 65535';
  if (typeof value !== 'string' || value === '') return 'a port is a number, a range "first:last" or a port name';
  const range = /^(\d+)(?::(\d+))?$/.exec(value);
  if (range !== null) {
    const first = Number(range[1]);
    const last = range[2] === undefined ? first : Number(range[2]);
    if (!valid(first) || !valid(last)) return 'a port must be between 0 and 65535';
    if (last < first) return `the range ends (${last}) before it starts (${first}); write "first:last" with first <= last`;
    return undefined;
  }
  return /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/.test(value) && /[a-z]/.test(value) ? undefined : 'not a port, a "first:last" range or a valid port name (lowercase letters, digits and hyphens, at most 15)';
}

function cidrValid(text: unknown): boolean {
  return typeof text === 'string' && parseAddressOrCidr(text) !== undefined;
}

function validateEntity(value: unknown, path: string, protocol: unknown): FieldError[] {
  const entity = asRecord(value);
  if (entity === undefined) return [];
  const errors: FieldError[] = [];
  for (const field of ['selector', 'notSelector', 'namespaceSelector']) errors.push(...validateSelector(entity[field], `${path}.${field}`));
  for (const field of ['nets', 'notNets']) {
    arrayAt(entity, field).forEach((net, i) => {
      if (!cidrValid(net)) errors.push(invalid(`${path}.${field}[${i}]`, `Invalid value: ${JSON.stringify(net)}: must be an IP address or CIDR (e.g. 10.0.0.0/8 or fd00::/8)`));
    });
  }
  for (const field of ['serviceAccounts', 'services']) {
    if (entity[field] !== undefined) errors.push(notSupported(`${path}.${field}`, `Unsupported value: Vireo does not match ${field === 'services' ? 'Services' : 'service accounts'} in policy rules (VMIs have no service account identity here); match the VMIs by selector or their addresses by nets`));
  }
  for (const field of ['ports', 'notPorts']) {
    const ports = arrayAt(entity, field);
    if (ports.length > 0 && !portProtocols.has(protocol as string | number)) {
      errors.push(invalid(`${path}.${field}`, `Invalid value: ports are only allowed with protocol TCP, UDP or SCTP; set the rule's protocol`));
    }
    ports.forEach((port, i) => {
      const problem = portProblem(port);
      if (problem !== undefined) errors.push(invalid(`${path}.${field}[${i}]`, `Invalid value: ${JSON.stringify(port)}: ${problem}`));
    });
  }
  return errors;
}

const actions = ['Allow', 'Deny', 'Log', 'Pass'];

function validateIcmp(rule: Record<string, unknown>, path: string): FieldError[] {
  const errors: FieldError[] = [];
  for (const field of ['icmp', 'notICMP']) {
    const value = rule[field];
    if (value === undefined) continue;
    if (rule.protocol !== 'ICMP' && rule.protocol !== 'ICMPv6' && rule.protocol !== 1 && rule.protocol !== 58) {
      errors.push(invalid(`${path}.${field}`, `Invalid value: ICMP types are only allowed with protocol ICMP or ICMPv6; set the rule's protocol`));
      continue;
    }
    const match = asRecord(value) ?? {};
    const { type, code } = match;
    if (type === undefined) {
      if (code !== undefined) errors.push(required(`${path}.${field}.type`, 'Required value: a code needs its type (e.g. type 8, code 0 for an echo request)'));
      continue;
    }
    if (typeof type !== 'number' || !Number.isInteger(type) || type < 0 || type > 254) errors.push(invalid(`${path}.${field}.type`, `Invalid value: ${JSON.stringify(type)}: an ICMP type is between 0 and 254`));
    if (code !== undefined && (typeof code !== 'number' || !Number.isInteger(code) || code < 0 || code > 255)) errors.push(invalid(`${path}.${field}.code`, `Invalid value: ${JSON.stringify(code)}: an ICMP code is between 0 and 255`));
  }
  return errors;
}

function validateRules(policy: KObject, direction: 'ingress' | 'egress'): FieldError[] {
  const errors: FieldError[] = [];
  recordsAt(policy, 'spec', direction).forEach((rule, i) => {
    const path = `spec.${direction}[${i}]`;
    if (rule.action === undefined) errors.push(required(`${path}.action`, `Required value: one of ${actions.map((a) => `"${a}"`).join(', ')}`));
    else if (typeof rule.action !== 'string' || !actions.includes(rule.action)) {
      errors.push(notSupported(`${path}.action`, `Unsupported value: ${JSON.stringify(rule.action)}: supported values: ${actions.map((a) => `"${a}"`).join(', ')}`));
    }
    for (const field of ['protocol', 'notProtocol']) {
      if (rule[field] === undefined) continue;
      const problem = protocolProblem(rule[field]);
      if (problem !== undefined) errors.push(notSupported(`${path}.${field}`, `Unsupported value: ${JSON.stringify(rule[field])}: ${problem}`));
    }
    errors.push(...validateIcmp(rule, path));
    if (rule.ipVersion !== undefined && rule.ipVersion !== 4 && rule.ipVersion !== 6) errors.push(notSupported(`${path}.ipVersion`, `Unsupported value: ${JSON.stringify(rule.ipVersion)}: supported values: 4, 6`));
    errors.push(...validateEntity(rule.source, `${path}.source`, rule.protocol));
    errors.push(...validateEntity(rule.destination, `${path}.destination`, rule.protocol));
  });
  return errors;
}

/** The admission errors of a Calico GlobalNetworkPolicy or NetworkPolicy. */
export function validateCalicoPolicy(policy: KObject): FieldError[] {
  const errors: FieldError[] = [...validateSelector(at(policy, 'spec', 'selector'), 'spec.selector'), ...validateSelector(at(policy, 'spec', 'namespaceSelector'), 'spec.namespaceSelector')];
  arrayAt(policy, 'spec', 'types').forEach((type, i) => {
    if (type !== 'Ingress' && type !== 'Egress') errors.push(notSupported(`spec.types[${i}]`, `Unsupported value: ${JSON.stringify(type)}: supported values: "Egress", "Ingress"`));
  });
  const tier = at(policy, 'spec', 'tier');
  if (tier !== undefined && tier !== 'default') errors.push(notSupported('spec.tier', `Unsupported value: ${JSON.stringify(tier)}: Vireo has one tier, "default"; order the policy within it with spec.order`));
  if (at(policy, 'spec', 'serviceAccountSelector') !== undefined) errors.push(notSupported('spec.serviceAccountSelector', 'Unsupported value: VMIs have no service account identity here; select them by labels with spec.selector'));
  for (const field of ['doNotTrack', 'preDNAT']) {
    if (at(policy, 'spec', field) === true) errors.push(notSupported(`spec.${field}`, `Unsupported value: true: Vireo enforces policy on the forward path only; ${field} policies are not supported`));
  }
  errors.push(...validateRules(policy, 'ingress'), ...validateRules(policy, 'egress'));
  return errors;
}

/** The admission errors of a Calico GlobalNetworkSet or NetworkSet: every `nets` entry an address or CIDR. */
export function validateCalicoNetworkSet(set: KObject): FieldError[] {
  return arrayAt(set, 'spec', 'nets').flatMap((net, i) => (cidrValid(net) ? [] : [invalid(`spec.nets[${i}]`, `Invalid value: ${JSON.stringify(net)}: must be an IP address or CIDR (e.g. 198.51.100.0/28 or fd00::/8)`)]));
}
