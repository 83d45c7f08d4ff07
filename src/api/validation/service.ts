/**
 * `v1 Service` validation as kube-apiserver's `ValidateService` and
 * `ValidateServiceUpdate` make it, with their field paths and messages:
 * type, ports (names, numbers, protocols, target ports, node ports),
 * cluster IPs (syntax, `None`, immutability), ExternalName, traffic
 * policies and session affinity. Allocation (ranges, conflicts) happens
 * before, in `src/apiserver/admission-service.ts`.
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { canonicalIp, ipFamilyOf } from '../ip.js';
import { isDNS1123Label, isDNS1123Subdomain, validateLabels } from '../names.js';
import { serviceClusterIps, serviceTypes } from '../kinds/service.js';
import { arrayAt, recordsAt, stringAt, stringMapAt } from '../kinds/read.js';

const protocols = ['SCTP', 'TCP', 'UDP'];

function supported(field: string, value: unknown, values: readonly string[]): FieldError {
  return { field, reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${values.map((v) => `"${v}"`).join(', ')}` };
}

function invalidValue(field: string, value: unknown, message: string): FieldError {
  return { field, reason: 'FieldValueInvalid', message: `Invalid value: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}: ${message}` };
}

function forbidden(field: string, message: string): FieldError {
  return { field, reason: 'FieldValueForbidden', message: `Forbidden: ${message}` };
}

function required(field: string, message = ''): FieldError {
  return { field, reason: 'FieldValueRequired', message: message === '' ? 'Required value' : `Required value: ${message}` };
}

/** IANA service names (`http`, `dns-tcp`), what a named targetPort must be (`validation.IsValidPortName`). */
export function isPortName(value: string): string[] {
  const errors: string[] = [];
  if (value.length > 15) errors.push('must be no more than 15 characters');
  if (!/^[-a-z0-9]+$/.test(value)) errors.push('must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)');
  if (value.includes('--')) errors.push('must not contain consecutive hyphens');
  if (!/[a-z]/.test(value)) errors.push('must contain at least one letter (a-z)');
  if (value.startsWith('-') || value.endsWith('-')) errors.push('must not begin or end with a hyphen');
  return errors;
}

/** The admission errors of a Service (on update, `old` is the stored one). */
export function validateService(svc: KObject, old: KObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const type = stringAt(svc, 'spec', 'type') ?? 'ClusterIP';
  if (!(serviceTypes as readonly string[]).includes(type)) errors.push(supported('spec.type', type, serviceTypes));
  const headless = stringAt(svc, 'spec', 'clusterIP') === 'None';
  errors.push(...validatePorts(svc, type, headless));
  errors.push(...validateClusterIps(svc, type));
  if (type === 'ExternalName') {
    const name = stringAt(svc, 'spec', 'externalName') ?? '';
    if (name === '') errors.push(required('spec.externalName', 'an ExternalName Service is a DNS alias: name the host it stands for'));
    else for (const msg of isDNS1123Subdomain(name.replace(/\.$/, ''))) errors.push(invalidValue('spec.externalName', name, msg));
  }
  const affinity = stringAt(svc, 'spec', 'sessionAffinity') ?? 'None';
  if (!['ClientIP', 'None'].includes(affinity)) errors.push(supported('spec.sessionAffinity', affinity, ['ClientIP', 'None']));
  const external = stringAt(svc, 'spec', 'externalTrafficPolicy');
  if (external !== undefined && external !== '') {
    if (type !== 'NodePort' && type !== 'LoadBalancer') {
      errors.push(invalidValue('spec.externalTrafficPolicy', external, "may only be set when `type` is 'NodePort' or 'LoadBalancer'"));
    } else if (!['Cluster', 'Local'].includes(external)) errors.push(supported('spec.externalTrafficPolicy', external, ['Cluster', 'Local']));
  }
  const internal = stringAt(svc, 'spec', 'internalTrafficPolicy');
  if (internal !== undefined && !['Cluster', 'Local'].includes(internal)) errors.push(supported('spec.internalTrafficPolicy', internal, ['Cluster', 'Local']));
  const policy = stringAt(svc, 'spec', 'ipFamilyPolicy');
  if (policy !== undefined && !['PreferDualStack', 'RequireDualStack', 'SingleStack'].includes(policy)) {
    errors.push(supported('spec.ipFamilyPolicy', policy, ['PreferDualStack', 'RequireDualStack', 'SingleStack']));
  }
  arrayAt(svc, 'spec', 'ipFamilies').forEach((family, i) => {
    if (family !== 'IPv4' && family !== 'IPv6') errors.push(supported(`spec.ipFamilies[${i}]`, family, ['IPv4', 'IPv6']));
  });
  errors.push(...validateLabels(stringMapAt(svc, 'spec', 'selector'), 'spec.selector'));
  if (old !== undefined) errors.push(...validateUpdate(svc, old));
  return errors;
}

function validatePorts(svc: KObject, type: string, headless: boolean): FieldError[] {
  const errors: FieldError[] = [];
  const ports = recordsAt(svc, 'spec', 'ports');
  if (ports.length === 0 && type !== 'ExternalName' && !headless) errors.push(required('spec.ports', 'a Service needs at least one port (spec.ports[].port)'));
  const names = new Set<string>();
  const seen = new Set<string>();
  ports.forEach((port, i) => {
    const p = `spec.ports[${i}]`;
    const name = stringAt(port, 'name') ?? '';
    if (name === '' && ports.length > 1) errors.push(required(`${p}.name`, 'every port of a Service with several ports needs a name'));
    if (name !== '') {
      for (const msg of isDNS1123Label(name)) errors.push(invalidValue(`${p}.name`, name, msg));
      if (names.has(name)) errors.push({ field: `${p}.name`, reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(name)}` });
      names.add(name);
    }
    const number = port.port;
    if (typeof number !== 'number' || !Number.isInteger(number) || number < 1 || number > 65535) {
      errors.push(invalidValue(`${p}.port`, number ?? 0, 'must be between 1 and 65535, inclusive'));
    }
    const protocol = stringAt(port, 'protocol') ?? 'TCP';
    if (!protocols.includes(protocol)) errors.push(supported(`${p}.protocol`, protocol, protocols));
    const key = `${String(number)}/${protocol}`;
    if (seen.has(key)) errors.push({ field: p, reason: 'FieldValueDuplicate', message: `Duplicate value: {port: ${String(number)}, protocol: ${protocol}}: each port number may appear once per protocol` });
    seen.add(key);
    const target = port.targetPort;
    if (typeof target === 'number') {
      if (!Number.isInteger(target) || target < 1 || target > 65535) errors.push(invalidValue(`${p}.targetPort`, target, 'must be between 1 and 65535, inclusive'));
    } else if (typeof target === 'string') {
      for (const msg of isPortName(target)) errors.push(invalidValue(`${p}.targetPort`, target, msg));
    }
    const nodePort = port.nodePort;
    if (typeof nodePort === 'number' && nodePort !== 0) {
      if (type === 'ClusterIP' || type === 'ExternalName') errors.push(forbidden(`${p}.nodePort`, `may not be used when \`type\` is '${type}'`));
      else if (nodePort < 1 || nodePort > 65535) errors.push(invalidValue(`${p}.nodePort`, nodePort, 'must be between 1 and 65535, inclusive'));
    }
  });
  return errors;
}

function validateClusterIps(svc: KObject, type: string): FieldError[] {
  const errors: FieldError[] = [];
  const single = stringAt(svc, 'spec', 'clusterIP') ?? '';
  const list = arrayAt(svc, 'spec', 'clusterIPs').map((ip) => (typeof ip === 'string' ? ip : ''));
  if (type === 'ExternalName') {
    if (single !== '') errors.push(forbidden('spec.clusterIP', 'may not be set for ExternalName services'));
    if (list.length > 0) errors.push(forbidden('spec.clusterIPs', 'may not be set for ExternalName services'));
    return errors;
  }
  if (single !== '' && list.length > 0 && list[0] !== single) errors.push(invalidValue('spec.clusterIPs', list.join(','), 'element [0] must match `spec.clusterIP`'));
  if (list.length > 2) errors.push(invalidValue('spec.clusterIPs', list.join(','), 'may only hold up to 2 values'));
  list.forEach((ip, i) => {
    const field = `spec.clusterIPs[${i}]`;
    if (ip === 'None') {
      if (i > 0 || list.length > 1) errors.push(invalidValue(field, ip, "'None' must be the first and only value"));
      else if (type === 'NodePort' || type === 'LoadBalancer') errors.push(invalidValue(field, ip, "may not be set to 'None' for LoadBalancer or NodePort services"));
      return;
    }
    if (ipFamilyOf(ip) === undefined) errors.push(invalidValue(field, ip, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'));
  });
  if (list.length === 2 && ipFamilyOf(list[0] ?? '') !== undefined && ipFamilyOf(list[0] ?? '') === ipFamilyOf(list[1] ?? '')) {
    errors.push(invalidValue('spec.clusterIPs', list.join(','), 'may specify no more than one IP for each IP family'));
  }
  if (list.length === 0 && single !== '' && single !== 'None' && ipFamilyOf(single) === undefined) {
    errors.push(invalidValue('spec.clusterIP', single, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'));
  }
  return errors;
}

function validateUpdate(svc: KObject, old: KObject): FieldError[] {
  const oldType = stringAt(old, 'spec', 'type') ?? 'ClusterIP';
  const type = stringAt(svc, 'spec', 'type') ?? 'ClusterIP';
  if (oldType === 'ExternalName' || type === 'ExternalName') return [];
  const before = serviceClusterIps(old).map((ip) => canonicalIp(ip) ?? ip);
  const after = serviceClusterIps(svc).map((ip) => canonicalIp(ip) ?? ip);
  const wasHeadless = stringAt(old, 'spec', 'clusterIP') === 'None';
  const isHeadless = stringAt(svc, 'spec', 'clusterIP') === 'None';
  if (wasHeadless !== isHeadless || (before[0] !== undefined && before[0] !== after[0])) {
    const shown = `[]string{${arrayAt(svc, 'spec', 'clusterIPs').map((ip) => JSON.stringify(ip)).join(', ')}}`;
    return [{ field: 'spec.clusterIPs[0]', reason: 'FieldValueInvalid', message: `Invalid value: ${shown}: may not change once set; delete and re-create the Service to change its cluster IP` }];
  }
  return [];
}
