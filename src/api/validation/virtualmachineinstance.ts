/**
 * VirtualMachineInstance admission as KubeVirt's `vmi-create-admitter.go` and
 * `vmi-update-admitter.go` do it: the full spec check on create, and on
 * update a frozen spec, except the hotplug changes KubeVirt's own components
 * make, and untouched reserved labels.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { at, recordAt } from '../kinds/read.js';
import { forbidden, invalid, notSupported } from './field-error.js';
import type { WriterOptions } from './virtualmachine.js';
import { validateMemoryIsRequested } from './vmi-resources.js';
import { reservedVmiLabels, validateReservedLabels, validateVmiSpec } from './vmi-spec.js';

/** Annotations the VM controller puts on VMIs it expanded from an instancetype. */
const instancetypeAnnotations = ['kubevirt.io/instancetype-name', 'kubevirt.io/cluster-instancetype-name'];

/** Validates a VirtualMachineInstance on create, or on update when `old` is given. */
export function validateVirtualMachineInstance(vmi: KObject, old?: KObject, options: WriterOptions = {}): FieldError[] {
  const spec = recordAt(vmi, 'spec') ?? {};
  if (old !== undefined) return validateUpdate(vmi, old, options);
  const errors = validateVmiSpec('spec', spec);
  const fromInstancetype = instancetypeAnnotations.some((a) => vmi.metadata.annotations?.[a] !== undefined);
  if (!fromInstancetype) errors.push(...validateMemoryIsRequested('spec', spec));
  if (options.writer === 'user') errors.push(...validateReservedLabels('metadata', vmi.metadata.labels));
  return errors;
}

function validateUpdate(vmi: KObject, old: KObject, options: WriterOptions): FieldError[] {
  const spec = recordAt(vmi, 'spec') ?? {};
  const before = recordAt(old, 'spec') ?? {};
  const errors: FieldError[] = [];
  if (!isDeepStrictEqual(spec, before)) {
    if (options.writer === 'controller') {
      // KubeVirt's components may hotplug volumes, CPU sockets and memory, but never move the ceilings.
      if (!isDeepStrictEqual(at(spec, 'domain', 'cpu', 'maxSockets'), at(before, 'domain', 'cpu', 'maxSockets'))) {
        errors.push(invalid('spec.domain.cpu.maxSockets', 'CPU topology maxSockets changed: the hotplug ceiling is fixed when the VMI starts'));
      }
      const maxGuest = at(spec, 'domain', 'memory', 'maxGuest');
      const maxGuestBefore = at(before, 'domain', 'memory', 'maxGuest');
      if (maxGuest !== undefined && maxGuestBefore !== undefined && !isDeepStrictEqual(maxGuest, maxGuestBefore)) {
        errors.push(invalid('spec.domain.memory.maxGuest', 'Memory maxGuest changed: the hotplug ceiling is fixed when the VMI starts'));
      }
    } else {
      errors.push(
        forbidden('spec', 'update of VMI object is restricted: a running VMI\'s spec is fixed; change the owning VirtualMachine (its RestartRequired condition says when a restart applies it), or delete and recreate the VMI'),
      );
    }
  }
  if (options.writer === 'user') {
    const changed = reservedVmiLabels.filter((l) => old.metadata.labels?.[l] !== vmi.metadata.labels?.[l]);
    if (changed.length > 0) {
      errors.push(notSupported('metadata.labels', `modification of the following reserved kubevirt.io/ labels on a VMI object is prohibited: ${changed.join(', ')}`));
    }
  }
  return errors;
}
