/**
 * PersistentVolumeClaim validation, as Kubernetes' own: a claim needs
 * access modes and a storage request; once created its spec is fixed
 * except that a bound claim may ask for more storage (never less) and the
 * binder may name the volume it is bound to.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { arrayAt, at, recordAt, stringAt } from '../kinds/read.js';
import { forbidden, notSupported, required } from './field-error.js';
import { parseQuantity } from './quantity.js';

const accessModes = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'];

function storageOf(pvc: KObject | undefined): number | undefined {
  return parseQuantity(at(pvc, 'spec', 'resources', 'requests', 'storage'));
}

/** The spec with the fields that may change on an update set to the old claim's values. */
function fixedPart(pvc: KObject, old: KObject): Record<string, unknown> {
  const spec = structuredClone(recordAt(pvc, 'spec') ?? {});
  const before = recordAt(old, 'spec') ?? {};
  if (stringAt(old, 'status', 'phase') === 'Bound') {
    const requests = recordAt(spec, 'resources', 'requests');
    const oldStorage = at(before, 'resources', 'requests', 'storage');
    if (requests !== undefined) {
      if (oldStorage === undefined) delete requests.storage;
      else requests.storage = oldStorage;
    }
  }
  if ((stringAt(before, 'volumeName') ?? '') === '') {
    if (before.volumeName === undefined) delete spec.volumeName;
    else spec.volumeName = before.volumeName;
  }
  spec.volumeAttributesClassName = before.volumeAttributesClassName;
  if (spec.volumeAttributesClassName === undefined) delete spec.volumeAttributesClassName;
  return spec;
}

/** The admission errors of a claim (`old`: the stored claim of an update). */
export function validatePersistentVolumeClaim(pvc: KObject, old: KObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const modes = arrayAt(pvc, 'spec', 'accessModes');
  if (modes.length === 0) errors.push(required('spec.accessModes', 'Required value: at least 1 access mode is required, e.g. ReadWriteOnce'));
  modes.forEach((mode, i) => {
    if (typeof mode !== 'string' || !accessModes.includes(mode)) {
      errors.push(notSupported(`spec.accessModes[${i}]`, `Unsupported value: ${JSON.stringify(mode)}: supported values: ${accessModes.map((m) => `"${m}"`).join(', ')}`));
    }
  });
  const mode = stringAt(pvc, 'spec', 'volumeMode');
  if (mode !== undefined && mode !== 'Filesystem' && mode !== 'Block') errors.push(notSupported('spec.volumeMode', `Unsupported value: "${mode}": supported values: "Block", "Filesystem"`));
  const storage = storageOf(pvc);
  if (storage === undefined) errors.push(required('spec.resources[storage]', 'Required value: set spec.resources.requests.storage to the size the claim needs, e.g. "10Gi"'));
  else if (storage <= 0) errors.push(forbidden('spec.resources.requests.storage', 'Invalid value: must be greater than zero'));
  if (old === undefined) return errors;
  const oldStorage = storageOf(old);
  if (storage !== undefined && oldStorage !== undefined && storage < oldStorage) {
    errors.push(forbidden('spec.resources.requests.storage', 'Forbidden: field can not be less than previous value: a volume cannot shrink; create a smaller claim and copy the data instead'));
  } else if (!isDeepStrictEqual(fixedPart(pvc, old), recordAt(old, 'spec') ?? {})) {
    errors.push(forbidden('spec', 'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims'));
  }
  return errors;
}
