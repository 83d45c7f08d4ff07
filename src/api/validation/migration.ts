/**
 * VirtualMachineInstanceMigration admission as KubeVirt's migration
 * admitters do it: a VMI to migrate, a priority only KubeVirt's own
 * controller may set, and a spec that never changes after creation.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { has, recordAt, stringAt } from '../kinds/read.js';
import { forbidden, required } from './field-error.js';
import type { WriterOptions } from './virtualmachine.js';

/** Validates a migration on create, or on update when `old` is given. */
export function validateMigration(migration: KObject, old?: KObject, options: WriterOptions = {}): FieldError[] {
  const spec = recordAt(migration, 'spec') ?? {};
  if (old !== undefined) {
    if (isDeepStrictEqual(spec, recordAt(old, 'spec') ?? {})) return [];
    return [forbidden('spec', "update of Migration object's spec is restricted: a migration runs once as created; create a new VirtualMachineInstanceMigration instead")];
  }
  if ((stringAt(spec, 'vmiName') ?? '') === '') {
    return [required('spec.vmiName', 'vmiName is missing: name the VirtualMachineInstance (in the same namespace) to migrate')];
  }
  if (has(spec, 'priority') && options.writer === 'user') {
    return [forbidden('spec.priority', 'Migration priority queue, only virt-controller is allowed to set priority field: remove spec.priority')];
  }
  return [];
}
