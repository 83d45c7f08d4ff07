/**
 * Admission for the kinds that stamp out VMs or VMIs from a template:
 * VirtualMachineInstanceReplicaSet (`vmirs-admitter.go`) and
 * VirtualMachinePool (`vmpool-admitter.go`). The template is checked like a
 * VMI spec or a VM spec, and the selector must select the template's labels.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import type { LabelSelector } from '../labels.js';
import { labelSelectorFromObject } from '../labels.js';
import { asRecord, at, recordAt, stringMapAt } from '../kinds/read.js';
import { invalid, required } from './field-error.js';
import type { WriterOptions } from './virtualmachine.js';
import { validateVirtualMachineSpec } from './virtualmachine.js';
import { validateVmiSpec } from './vmi-spec.js';

/** Validates a VirtualMachineInstanceReplicaSet. */
export function validateReplicaSet(rs: KObject): FieldError[] {
  const spec = recordAt(rs, 'spec') ?? {};
  const template = recordAt(spec, 'template');
  if (template === undefined) return [required('spec.template', 'missing virtual machine template: spec.template describes the VirtualMachineInstances to run')];
  return [
    ...validateVmiSpec('spec.template.spec', recordAt(template, 'spec') ?? {}),
    ...validateSelectorMatches('spec.selector', spec['selector'], stringMapAt(template, 'metadata', 'labels'), 'spec.template.metadata.labels'),
  ];
}

/** Validates a VirtualMachinePool on create, or on update when `old` is given. */
export function validatePool(pool: KObject, old?: KObject, options: WriterOptions = {}): FieldError[] {
  const spec = recordAt(pool, 'spec') ?? {};
  const template = recordAt(spec, 'virtualMachineTemplate');
  if (template === undefined) {
    return [required('spec.virtualMachineTemplate', 'missing virtual machine template: spec.virtualMachineTemplate describes the VirtualMachines of the pool')];
  }
  const errors = [
    ...validateVirtualMachineSpec('spec.virtualMachineTemplate.spec', recordAt(template, 'spec') ?? {}, options),
    ...validateSelectorMatches('spec.selector', spec['selector'], stringMapAt(template, 'metadata', 'labels'), 'spec.virtualMachineTemplate.metadata.labels'),
    ...validateMaxUnavailable(spec['maxUnavailable']),
  ];
  if (old !== undefined && !isDeepStrictEqual(spec['selector'], at(old, 'spec', 'selector'))) {
    errors.push(invalid('spec.selector', 'selector is immutable after creation: the pool would lose track of its VMs; create a new pool instead'));
  }
  return errors;
}

function validateMaxUnavailable(value: unknown): FieldError[] {
  if (value === undefined || value === null) return [];
  const field = 'spec.maxUnavailable';
  if (typeof value === 'number') return value > 0 ? [] : [invalid(field, 'maxUnavailable must be greater than 0')];
  if (typeof value !== 'string' || !value.endsWith('%')) return [invalid(field, 'maxUnavailable percentage must end with %, or be a whole number of VMs')];
  const percent = Number(value.slice(0, -1));
  if (!Number.isInteger(percent)) return [invalid(field, `maxUnavailable percentage value ${JSON.stringify(value.slice(0, -1))} is invalid: use a whole number`)];
  if (percent <= 0 || percent > 100) return [invalid(field, `maxUnavailable percentage value ${percent} must be between 1 and 100`)];
  return [];
}

/** The selector must be valid and select the template's labels, or the controller would never find what it creates. */
function validateSelectorMatches(field: string, selector: unknown, labels: Record<string, string>, labelsPath: string): FieldError[] {
  const record = asRecord(selector);
  if (record === undefined) return [required(field, `a selector is required: set matchLabels that also appear in ${labelsPath}`)];
  let compiled: LabelSelector;
  try {
    // labelSelectorFromObject checks the shape at run time and throws a message naming the bad part.
    compiled = labelSelectorFromObject(record);
  } catch (err) {
    return [invalid(field, err instanceof Error ? err.message : 'invalid label selector')];
  }
  return compiled.matches(labels) ? [] : [mismatch(field, labelsPath)];
}

function mismatch(field: string, labelsPath: string): FieldError {
  return invalid(field, `selector does not match labels: the selector must select ${labelsPath}, or the controller cannot find what it creates`);
}
