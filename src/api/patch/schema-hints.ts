/**
 * What a structural schema says about merging: how to find a field's or a
 * list item's schema, and which lists merge by key, union as sets, or are
 * replaced whole. Strategic merge patch and server-side apply read the same
 * hints (`x-kubernetes-patch-*` and `x-kubernetes-list-*`), with slightly
 * different defaults, both kept here.
 */
import type { JSONSchemaProps } from '../resource.js';

/** The schema of `key` inside an object node: a declared property, else `additionalProperties`. */
export function fieldSchema(schema: JSONSchemaProps | undefined, key: string): JSONSchemaProps | undefined {
  if (schema === undefined) return undefined;
  const declared = schema.properties?.[key];
  if (declared !== undefined) return declared;
  const extra = schema.additionalProperties;
  return typeof extra === 'object' ? extra : undefined;
}

/** True when `key` is a declared property (a struct field) rather than a map entry. */
export function isDeclaredField(schema: JSONSchemaProps | undefined, key: string): boolean {
  return schema?.properties !== undefined && Object.hasOwn(schema.properties, key);
}

/** The schema of a list's items. */
export function itemsSchema(schema: JSONSchemaProps | undefined): JSONSchemaProps | undefined {
  return schema?.items;
}

/** The comma-separated `x-kubernetes-patch-strategy`, e.g. `merge,retainKeys`. */
function patchStrategies(schema: JSONSchemaProps | undefined): string[] {
  const raw = schema?.['x-kubernetes-patch-strategy'];
  return raw === undefined || raw === '' ? [] : raw.split(',').map((s) => s.trim());
}

/** How strategic merge patch treats a list field. */
export interface SmpListHint {
  /** `merge`: items merge (maps by key, scalars as a union); otherwise the patch list replaces. */
  merge: boolean;
  /** Item identity for lists of maps: the patch merge key, else the list-map keys. */
  mergeKeys: readonly string[];
}

/**
 * The strategic-merge behaviour of a list: `x-kubernetes-patch-strategy:
 * merge` (with `x-kubernetes-patch-merge-key`), or `x-kubernetes-list-type:
 * map` with its keys. Anything else is replaced, as for unannotated lists.
 */
export function smpListHint(schema: JSONSchemaProps | undefined): SmpListHint {
  const mergeKey = schema?.['x-kubernetes-patch-merge-key'];
  const mapKeys = schema?.['x-kubernetes-list-type'] === 'map' ? (schema['x-kubernetes-list-map-keys'] ?? []) : [];
  const mergeKeys = mergeKey !== undefined && mergeKey !== '' ? [mergeKey] : mapKeys;
  const merge = patchStrategies(schema).includes('merge') || mapKeys.length > 0;
  return { merge, mergeKeys };
}

/** True when strategic merge patch replaces this object field instead of merging into it. */
export function smpReplacesMap(schema: JSONSchemaProps | undefined): boolean {
  return patchStrategies(schema).includes('replace');
}

/** How server-side apply treats a list: merged by keys, unioned as a set, or owned whole. */
export type ApplyListHint = { type: 'map'; keys: readonly string[] } | { type: 'set' } | { type: 'atomic' };

/**
 * The apply semantics of a list, as structured-merge-diff derives them:
 * `x-kubernetes-list-type` first; otherwise a patch strategy of `merge`
 * makes it a map keyed by the merge key, or a set without one. Unannotated
 * lists are atomic.
 */
export function applyListHint(schema: JSONSchemaProps | undefined): ApplyListHint {
  const listType = schema?.['x-kubernetes-list-type'];
  if (listType === 'map') return { type: 'map', keys: schema?.['x-kubernetes-list-map-keys'] ?? [] };
  if (listType === 'set') return { type: 'set' };
  if (listType === 'atomic') return { type: 'atomic' };
  if (patchStrategies(schema).includes('merge')) {
    const key = schema?.['x-kubernetes-patch-merge-key'];
    return key !== undefined && key !== '' ? { type: 'map', keys: [key] } : { type: 'set' };
  }
  return { type: 'atomic' };
}

/** True when server-side apply owns this object as a whole (`x-kubernetes-map-type: atomic`). */
export function applyMapIsAtomic(schema: JSONSchemaProps | undefined): boolean {
  return schema?.['x-kubernetes-map-type'] === 'atomic';
}
