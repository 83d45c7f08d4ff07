/**
 * The first check on any incoming object: `metadata` fields of the wrong
 * JSON type are refused (422, one cause per field) before anything reads
 * them, so a garbage body can never reach code that trusts the types.
 */
import { invalid } from '../api/errors.js';
import type { FieldError } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';

/** Rejects metadata whose fields have the wrong JSON types, before anything reads them. */
export function checkMetadataShape(def: ResourceDef, meta: Record<string, unknown>): void {
  const errors: FieldError[] = [];
  const typeError = (field: string, expected: string): void => {
    errors.push({ field: `metadata.${field}`, reason: 'FieldValueTypeInvalid', message: `Invalid value: ${describeJson(meta[field])}: must be ${expected}` });
  };
  for (const field of ['name', 'generateName', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp']) {
    if (meta[field] !== undefined && meta[field] !== null && typeof meta[field] !== 'string') typeError(field, 'a string');
  }
  for (const field of ['labels', 'annotations']) {
    const v = meta[field];
    if (v === undefined || v === null) continue;
    if (!isPlainObject(v) || !Object.values(v).every((x) => typeof x === 'string')) typeError(field, 'a map of string keys to string values');
  }
  const finalizers = meta.finalizers;
  if (finalizers !== undefined && finalizers !== null && (!Array.isArray(finalizers) || !finalizers.every((f) => typeof f === 'string'))) {
    typeError('finalizers', 'a list of strings');
  }
  const refs = meta.ownerReferences;
  if (refs !== undefined && refs !== null) {
    if (!Array.isArray(refs)) typeError('ownerReferences', 'a list of owner references');
    else {
      refs.forEach((ref: unknown, i) => {
        if (!isPlainObject(ref) || !['apiVersion', 'kind', 'name', 'uid'].every((k) => typeof ref[k] === 'string')) {
          errors.push({
            field: `metadata.ownerReferences[${i}]`,
            reason: 'FieldValueInvalid',
            message: 'Invalid value: an owner reference needs string fields apiVersion, kind, name and uid',
          });
        }
      });
    }
  }
  if (meta.generation !== undefined && meta.generation !== null && typeof meta.generation !== 'number') typeError('generation', 'an integer');
  for (const field of Object.keys(meta)) if (meta[field] === null) delete meta[field];
  if (errors.length > 0) {
    const name = typeof meta.name === 'string' ? meta.name : '';
    throw invalid(def.kind, def.group, name, errors);
  }
}

/** `a string`, `an array`, `null`: how a JSON value is named in messages. */
export function describeJson(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}
