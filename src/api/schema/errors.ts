/**
 * Turns ajv's errors into Kubernetes field errors, worded as
 * kube-openapi's validator and apimachinery's `field.Error` word them, e.g.
 * `Invalid value: "string": spec.running in body must be of type boolean: "string"`.
 */
import type { ErrorObject } from 'ajv';
import type { FieldError } from '../errors.js';
import { isPlainObject } from '../object.js';

/** Kubernetes' rendering of a bad value in a field error (apimachinery `ErrorBody`). */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? 'null';
}

/** The JSON type name kube-openapi reports for a value. */
export function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** `/spec/disks/0/name` on `data` → `spec.disks[0].name`. */
export function fieldPath(data: unknown, pointer: string): string {
  if (pointer === '') return '';
  let path = '';
  let node = data;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      path += `[${key}]`;
      node = node[Number(key)];
    } else {
      path = path === '' ? key : `${path}.${key}`;
      node = isPlainObject(node) ? node[key] : undefined;
    }
  }
  return path;
}

const plural = (n: number, one: string, many: string): string => (n === 1 ? one : many);

/** Maps ajv's errors (from a validator compiled with `allErrors` and `verbose`) to field errors. */
export function toFieldErrors(errors: readonly ErrorObject[], data: unknown): FieldError[] {
  const out: FieldError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    // Failures inside anyOf/oneOf/not branches are summed up by the junctor's own error, as kube-openapi does.
    if (/\/(anyOf|oneOf|not)\//.test(e.schemaPath)) continue;
    const error = toFieldError(e, fieldPath(data, e.instancePath));
    const key = `${error.field}\u0000${error.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      out.push(error);
    }
  }
  return out;
}

function toFieldError(e: ErrorObject, path: string): FieldError {
  const p = e.params as Record<string, unknown>;
  const value: unknown = e.data;
  const at = `${path} in body`;
  const invalidValue = (detail: string, bad: unknown = value): FieldError => ({
    field: path,
    reason: 'FieldValueInvalid',
    message: `Invalid value: ${formatValue(bad)}: ${detail}`,
  });
  switch (e.keyword) {
    case 'type': {
      const wanted = (Array.isArray(p['type']) ? (p['type'] as unknown[]) : [p['type']]).filter((t) => t !== 'null');
      const actual = jsonType(value);
      return { field: path, reason: 'FieldValueTypeInvalid', message: `Invalid value: "${actual}": ${at} must be of type ${wanted.join(',')}: "${actual}"` };
    }
    case 'format':
      return { field: path, reason: 'FieldValueTypeInvalid', message: `Invalid value: ${formatValue(value)}: ${at} must be of type ${String(p['format'])}: ${formatValue(value)}` };
    case 'required': {
      const missing = String(p['missingProperty']);
      return { field: path === '' ? missing : `${path}.${missing}`, reason: 'FieldValueRequired', message: 'Required value' };
    }
    case 'enum': {
      const allowed = ((p['allowedValues'] as unknown[] | undefined) ?? [])
        .filter((v) => v !== null)
        .map((v) => JSON.stringify(typeof v === 'string' ? v : JSON.stringify(v)));
      return { field: path, reason: 'FieldValueNotSupported', message: `Unsupported value: ${formatValue(value)}: supported values: ${allowed.join(', ')}` };
    }
    case 'maxLength': {
      const limit = Number(p['limit']);
      return { field: path, reason: 'FieldValueTooLong', message: `Too long: may not be more than ${limit} ${plural(limit, 'byte', 'bytes')}` };
    }
    case 'maxItems':
    case 'maxProperties': {
      const limit = Number(p['limit']);
      const count = Array.isArray(value) ? value.length : isPlainObject(value) ? Object.keys(value).length : 0;
      return { field: path, reason: 'FieldValueTooMany', message: `Too many: ${count}: must have at most ${limit} ${plural(limit, 'item', 'items')}` };
    }
    case 'minLength':
      return invalidValue(`${at} should be at least ${String(p['limit'])} chars long`);
    case 'minItems':
      return invalidValue(`${at} should have at least ${String(p['limit'])} items`, Array.isArray(value) ? value.length : value);
    case 'minProperties':
      return invalidValue(`${at} should have at least ${String(p['limit'])} properties`, isPlainObject(value) ? Object.keys(value).length : value);
    case 'pattern':
      return invalidValue(`${at} should match '${String(p['pattern'])}'`);
    case 'minimum':
      return invalidValue(`${at} should be greater than or equal to ${String(p['limit'])}`);
    case 'exclusiveMinimum':
      return invalidValue(`${at} should be greater than ${String(p['limit'])}`);
    case 'maximum':
      return invalidValue(`${at} should be less than or equal to ${String(p['limit'])}`);
    case 'exclusiveMaximum':
      return invalidValue(`${at} should be less than ${String(p['limit'])}`);
    case 'multipleOf':
      return invalidValue(`${at} should be a multiple of ${String(p['multipleOf'])}`);
    case 'uniqueItems':
      return invalidValue(`${at} shouldn't contain duplicates`, '');
    case 'additionalProperties':
      return invalidValue(`${path === '' ? '' : `${path}.`}${String(p['additionalProperty'])} in body is a forbidden property`, '');
    case 'anyOf':
      return invalidValue(`${at} must validate at least one schema (anyOf)`);
    case 'oneOf':
      return invalidValue(`${at} must validate one and only one schema (oneOf)`);
    case 'not':
      return invalidValue(`${at} must not validate the schema (not)`);
    default:
      return invalidValue(`${at} ${e.message ?? 'is invalid'}`);
  }
}
