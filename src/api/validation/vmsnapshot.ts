/**
 * VirtualMachineSnapshot and VirtualMachineRestore admission, as KubeVirt's
 * `VMSnapshotAdmitter` and `VMRestoreAdmitter` check them: the source or
 * target is a `kubevirt.io` VirtualMachine, the spec never changes after
 * creation, restore patches touch only `/spec/` and labels/annotations,
 * overrides name their volume, and the policies are known ones.
 *
 * KubeVirt's restore admitter also reads the snapshot and the target VM
 * (and refuses a second restore of a target still in progress); those
 * checks need other objects and are made by the restore controller, which
 * reports them in the restore's conditions.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { parseGoDuration } from '../duration.js';
import { recordAt, recordsAt, stringAt } from '../kinds/read.js';
import { invalid, notSupported, required } from './field-error.js';

const immutable = (): FieldError => invalid('spec', 'spec in immutable after creation: delete the object and create a new one to change it');

function sourceRefErrors(field: string, ref: Record<string, unknown> | undefined, what: string): FieldError[] {
  const apiGroup = stringAt(ref, 'apiGroup');
  if (apiGroup === undefined) return [{ field: `${field}.apiGroup`, reason: 'FieldValueNotFound', message: `missing apiGroup: the ${what} is a VirtualMachine, set apiGroup: kubevirt.io` }];
  if (apiGroup !== 'kubevirt.io') return [invalid(`${field}.apiGroup`, `invalid apiGroup ${JSON.stringify(apiGroup)}: the ${what} must be a kubevirt.io VirtualMachine`)];
  const kind = stringAt(ref, 'kind') ?? '';
  if (kind !== 'VirtualMachine') return [invalid(`${field}.kind`, `invalid kind ${JSON.stringify(kind)}: the ${what} must be a VirtualMachine`)];
  if ((stringAt(ref, 'name') ?? '') === '') return [required(`${field}.name`, `the ${what} needs the name of a VirtualMachine`)];
  return [];
}

export function validateVirtualMachineSnapshot(snapshot: KObject, old?: KObject): FieldError[] {
  if (old !== undefined) return isDeepStrictEqual(recordAt(snapshot, 'spec'), recordAt(old, 'spec')) ? [] : [immutable()];
  const errors = sourceRefErrors('spec.source', recordAt(snapshot, 'spec', 'source'), 'snapshot source');
  const deadline = stringAt(snapshot, 'spec', 'failureDeadline');
  if (deadline !== undefined && (parseGoDuration(deadline) ?? -1) < 0) {
    errors.push(invalid('spec.failureDeadline', `failureDeadline ${JSON.stringify(deadline)} is not a duration: use e.g. "5m", "1h30m", or "0s" for none`));
  }
  return errors;
}

const restorePolicies = {
  targetReadinessPolicy: ['StopTarget', 'WaitGracePeriod', 'FailImmediate', 'WaitEventually'],
  volumeRestorePolicy: ['RandomizeNames', 'PrefixTargetName'],
  volumeOwnershipPolicy: ['Vm', 'None'],
} as const;

export function validateVirtualMachineRestore(restore: KObject, old?: KObject): FieldError[] {
  if (old !== undefined) return isDeepStrictEqual(recordAt(restore, 'spec'), recordAt(old, 'spec')) ? [] : [immutable()];
  const errors = sourceRefErrors('spec.target', recordAt(restore, 'spec', 'target'), 'restore target');
  if ((stringAt(restore, 'spec', 'virtualMachineSnapshotName') ?? '') === '') errors.push(required('spec.virtualMachineSnapshotName', 'name the VirtualMachineSnapshot to restore'));
  for (const [field, allowed] of Object.entries(restorePolicies)) {
    const value = stringAt(restore, 'spec', field);
    if (value === undefined) continue;
    if (field === 'volumeRestorePolicy' && value === 'InPlace') {
      errors.push(notSupported(`spec.${field}`, 'volume restore policy "InPlace" is not supported by Vireo yet: use RandomizeNames (the default) or PrefixTargetName'));
    } else if (!(allowed as readonly string[]).includes(value)) {
      errors.push(invalid(`spec.${field}`, `${field} ${JSON.stringify(value)} doesn't exist: use one of ${allowed.join(', ')}`));
    }
  }
  recordsAt(restore, 'spec', 'volumeRestoreOverrides').forEach((o, i) => {
    const path = `spec.volumeRestoreOverrides[${i}]`;
    if ((stringAt(o, 'volumeName') ?? '') === '') errors.push(required(`${path}.volumeName`, 'must provide a volume name'));
    if ((stringAt(o, 'restoreName') ?? '') === '' && o.labels === undefined && o.annotations === undefined) errors.push(required(path, 'must provide at least one overriden field (restoreName, labels or annotations)'));
  });
  errors.push(...patchErrors('spec.patches', restore));
  return errors;
}

/** Restore patches: JSON Patch operations on `/spec/...` or on labels and annotations only. */
function patchErrors(field: string, restore: KObject): FieldError[] {
  const patches = recordAt(restore, 'spec')?.patches;
  if (!Array.isArray(patches)) return [];
  const errors: FieldError[] = [];
  patches.forEach((patch, i) => {
    let op: unknown;
    try {
      op = typeof patch === 'string' ? JSON.parse(patch) : undefined;
    } catch {
      op = undefined;
    }
    const path = stringAt(op, 'path');
    if (path === undefined || stringAt(op, 'op') === undefined) {
      errors.push(invalid(`${field}[${i}]`, `patch is not a JSON Patch operation: ${String(patch)}; write e.g. {"op": "replace", "path": "/spec/runStrategy", "value": "Always"}`));
    } else if (!path.startsWith('/spec/') && !path.startsWith('/metadata/labels/') && !path.startsWith('/metadata/annotations/')) {
      errors.push(invalid(`${field}[${i}]`, `patching is valid only for elements under /spec/ only: "path": "${path}"`));
    }
  });
  return errors;
}
