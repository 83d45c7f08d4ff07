/**
 * Resource and naming checks of a VirtualMachineInstance spec, as KubeVirt's
 * `vmi-create-admitter.go` makes them: memory and CPU requests and limits,
 * the guest memory size, and the DNS rules for hostname/subdomain.
 */
import type { FieldError } from '../errors.js';
import { isDNS1123Label, isDNS1123Subdomain, quote } from '../names.js';
import { at, has, stringAt } from '../kinds/read.js';
import { invalid, required } from './field-error.js';
import { parseQuantity, showQuantity } from './quantity.js';

const oneMegabyte = 1e6;

/** Checks requests, limits and guest memory under `<path>.domain`. */
export function validateResources(path: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const resources = `${path}.domain.resources`;
  const read = (kind: 'requests' | 'limits', resource: 'memory' | 'cpu'): { raw: unknown; value: number | undefined } => {
    const raw = at(spec, 'domain', 'resources', kind, resource);
    return { raw, value: parseQuantity(raw) };
  };
  for (const resource of ['memory', 'cpu'] as const) {
    const request = read('requests', resource);
    const limit = read('limits', resource);
    for (const [kind, q] of [['requests', request], ['limits', limit]] as const) {
      const field = `${resources}.${kind}.${resource}`;
      if (q.raw !== undefined && q.value === undefined) {
        errors.push(invalid(field, `${field} ${quote(showQuantity(q.raw))} is not a quantity: write it as e.g. ${resource === 'memory' ? '"1Gi" or "512Mi"' : '"2" or "500m"'}`));
      } else if (q.value !== undefined && q.value < 0) {
        errors.push(invalid(field, `${field} '${showQuantity(q.raw)}': must be greater than or equal to 0.`));
      }
    }
    if (resource === 'memory' && request.value !== undefined && request.value > 0 && request.value < oneMegabyte) {
      errors.push(invalid(`${resources}.requests.memory`, `${resources}.requests.memory '${showQuantity(request.raw)}': must be greater than or equal to 1M, or the guest cannot boot.`));
    }
    if (request.value !== undefined && limit.value !== undefined && limit.value > 0 && request.value > limit.value) {
      errors.push(
        invalid(`${resources}.requests.${resource}`, `${resources}.requests.${resource} '${showQuantity(request.raw)}' is greater than ${resources}.limits.${resource} '${showQuantity(limit.raw)}': a request cannot exceed its limit; lower the request or raise the limit`),
      );
    }
  }
  // KubeVirt skips the guest-versus-limit check under its default LiveUpdate rollout strategy, so Vireo does too.
  const guest = at(spec, 'domain', 'memory', 'guest');
  if (guest !== undefined && parseQuantity(guest) === undefined) {
    errors.push(invalid(`${path}.domain.memory.guest`, `${path}.domain.memory.guest ${quote(showQuantity(guest))} is not a quantity: write it as e.g. "1Gi"`));
  }
  return errors;
}

/** `hostname` must be a DNS label and `subdomain` a DNS subdomain, since both end up in the guest's DNS name. */
export function validateHostnames(path: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const hostname = stringAt(spec, 'hostname') ?? '';
  if (hostname !== '') {
    const problems = isDNS1123Label(hostname);
    if (problems.length > 0) {
      errors.push(invalid(`${path}.hostname`, `${path}.hostname does not conform to the kubernetes DNS_LABEL rules : ${problems.join(', ')}`));
    }
  }
  const subdomain = stringAt(spec, 'subdomain') ?? '';
  if (subdomain !== '') {
    const problems = isDNS1123Subdomain(subdomain);
    if (problems.length > 0) {
      errors.push(invalid(`${path}.subdomain`, `${path}.subdomain does not conform to the kubernetes DNS_SUBDOMAIN rules : ${problems.join(', ')}`));
    }
  }
  return errors;
}

/**
 * A VMI must say how much memory its guest gets (KubeVirt checks this only
 * on VMIs themselves, after instancetypes and presets are applied).
 */
export function validateMemoryIsRequested(path: string, spec: Record<string, unknown>): FieldError[] {
  const positive = (value: unknown): boolean => (parseQuantity(value) ?? 0) > 0;
  if (
    positive(at(spec, 'domain', 'resources', 'requests', 'memory')) ||
    positive(at(spec, 'domain', 'resources', 'limits', 'memory')) ||
    positive(at(spec, 'domain', 'memory', 'guest')) ||
    has(spec, 'domain', 'memory', 'hugepages')
  ) {
    return [];
  }
  return [
    required(
      `${path}.domain.memory.guest`,
      `no memory requested, at least one of '${path}.domain.memory.guest', '${path}.domain.memory.hugepages.pageSize' or '${path}.domain.resources.requests.memory' must be set: the guest's RAM size comes from them`,
    ),
  ];
}
