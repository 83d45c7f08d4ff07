/**
 * Structural defaulting, as apiextensions-apiserver does it
 * (`schema/defaulting`): first nulls are dropped where the schema neither
 * allows null nor has a default, then `default` values are filled in where
 * a field is missing (or null without being nullable). Defaults are copied.
 */
import type { JSONSchemaProps } from '../resource.js';
import { isPlainObject } from '../object.js';

/** Applies `schema`'s defaults to `obj` in place. */
export function applySchemaDefaults(obj: unknown, schema: JSONSchemaProps): void {
  pruneNulls(obj, schema);
  fillDefaults(obj, schema);
}

function fieldSchema(s: JSONSchemaProps | undefined, k: string): JSONSchemaProps | undefined {
  if (s === undefined) return undefined;
  if (s.properties !== undefined && Object.hasOwn(s.properties, k)) return s.properties[k];
  return typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined;
}

const nonNullableNull = (x: unknown, s: JSONSchemaProps | undefined): boolean => x === null && s !== undefined && s.nullable !== true;

function pruneNulls(x: unknown, s: JSONSchemaProps | undefined): void {
  if (Array.isArray(x)) {
    for (const v of x) pruneNulls(v, s?.items);
  } else if (isPlainObject(x)) {
    for (const [k, v] of Object.entries(x)) {
      const schema = fieldSchema(s, k);
      if (nonNullableNull(v, schema) && schema?.default === undefined) delete x[k];
      else pruneNulls(v, schema);
    }
  }
}

function fillDefaults(x: unknown, s: JSONSchemaProps | undefined): void {
  if (s === undefined) return;
  if (Array.isArray(x)) {
    const items = s.items;
    x.forEach((v, i) => {
      if (nonNullableNull(v, items) && items?.default !== undefined) x[i] = structuredClone(items.default);
      fillDefaults(x[i], items);
    });
    return;
  }
  if (!isPlainObject(x)) return;
  for (const [k, prop] of Object.entries(s.properties ?? {})) {
    if (prop.default === undefined) continue;
    if (!Object.hasOwn(x, k) || nonNullableNull(x[k], prop)) x[k] = structuredClone(prop.default);
  }
  const additional = typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined;
  for (const k of Object.keys(x)) {
    const prop = s.properties !== undefined && Object.hasOwn(s.properties, k) ? s.properties[k] : undefined;
    if (prop !== undefined) {
      fillDefaults(x[k], prop);
    } else if (additional !== undefined) {
      if (nonNullableNull(x[k], additional) && additional.default !== undefined) x[k] = structuredClone(additional.default);
      fillDefaults(x[k], additional);
    }
  }
}
