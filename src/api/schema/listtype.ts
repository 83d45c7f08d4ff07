/**
 * `x-kubernetes-list-type` checks JSON Schema cannot express: a `set` holds
 * no value twice, a `map` no two items with the same key fields
 * (apiextensions-apiserver `schema/listtype`).
 */
import type { FieldError } from '../errors.js';
import type { JSONSchemaProps } from '../resource.js';
import { isPlainObject } from '../object.js';
import { formatValue } from './errors.js';

/** True when some node of `schema` declares a `set` or `map` list. */
export function hasListTypes(schema: JSONSchemaProps | undefined): boolean {
  const seen = new Set<JSONSchemaProps>();
  const visit = (s: JSONSchemaProps | undefined): boolean => {
    if (s === undefined || seen.has(s)) return false;
    seen.add(s);
    const t = s['x-kubernetes-list-type'];
    if (t === 'set' || t === 'map') return true;
    const additional = typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined;
    return visit(s.items) || visit(additional) || Object.values(s.properties ?? {}).some(visit);
  };
  return visit(schema);
}

/** Duplicate items of `set` and `map` lists in `x`. */
export function validateListTypes(x: unknown, s: JSONSchemaProps | undefined, path = ''): FieldError[] {
  if (s === undefined) return [];
  const errors: FieldError[] = [];
  if (Array.isArray(x)) {
    errors.push(...duplicates(x, s, path));
    x.forEach((v, i) => errors.push(...validateListTypes(v, s.items, `${path}[${i}]`)));
  } else if (isPlainObject(x)) {
    for (const [k, v] of Object.entries(x)) {
      const prop = s.properties !== undefined && Object.hasOwn(s.properties, k) ? s.properties[k] : undefined;
      const next = prop ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
      errors.push(...validateListTypes(v, next, path === '' ? k : `${path}.${k}`));
    }
  }
  return errors;
}

function duplicates(list: unknown[], s: JSONSchemaProps, path: string): FieldError[] {
  const type = s['x-kubernetes-list-type'];
  if (type !== 'set' && type !== 'map') return [];
  const mapKeys = s['x-kubernetes-list-map-keys'] ?? [];
  const seen = new Set<string>();
  const errors: FieldError[] = [];
  list.forEach((item, i) => {
    let identity: unknown = item;
    if (type === 'map') {
      if (!isPlainObject(item)) return;
      const keys: Record<string, unknown> = {};
      for (const k of mapKeys) if (item[k] !== undefined) keys[k] = item[k];
      identity = keys;
    }
    const id = JSON.stringify(identity);
    if (seen.has(id)) {
      errors.push({ field: `${path}[${i}]`, reason: 'FieldValueDuplicate', message: `Duplicate value: ${formatValue(identity)}` });
    }
    seen.add(id);
  });
  return errors;
}
