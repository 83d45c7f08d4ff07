/**
 * Field sets as server-side apply records them in `managedFields`
 * (`fieldsType: FieldsV1`): a tree keyed by path elements (`f:<field>`,
 * `k:{"name":"x"}` for keyed list items, `v:<json>` for set members) where
 * a node is either a member itself or only a parent of members. Which
 * nodes count follows structured-merge-diff's `ToFieldSet`.
 */
import { ApiError } from '../errors.js';
import { isPlainObject } from '../object.js';
import type { JSONSchemaProps } from '../resource.js';
import { applyListHint, applyMapIsAtomic, fieldSchema, isDeclaredField, itemsSchema } from './schema-hints.js';
import type { ApplyListHint } from './schema-hints.js';
import { jsonEqual } from './json-value.js';

/** One node of a field set. */
export interface FieldSet {
  /** The path to this node is itself in the set. */
  member: boolean;
  children: Map<string, FieldSet>;
}

export function emptyFieldSet(): FieldSet {
  return { member: false, children: new Map() };
}

function childOf(set: FieldSet, key: string): FieldSet {
  let node = set.children.get(key);
  if (node === undefined) {
    node = emptyFieldSet();
    set.children.set(key, node);
  }
  return node;
}

/** The `k:` element of a keyed list item: the key fields it has, sorted, as compact JSON. */
export function keyElement(item: unknown, keys: readonly string[], where: string): string {
  if (!isPlainObject(item) || keys.every((k) => !Object.hasOwn(item, k))) {
    throw new ApiError('Invalid', `${where}: associative list with keys ${JSON.stringify(keys)} has an element that omits every key field`);
  }
  const present: Record<string, unknown> = {};
  for (const k of [...keys].sort()) if (Object.hasOwn(item, k)) present[k] = item[k];
  return `k:${JSON.stringify(present)}`;
}

/** The path element of a list item, or undefined for atomic lists, whose items are not addressed. */
export function itemElement(item: unknown, hint: ApplyListHint, where: string): string | undefined {
  if (hint.type === 'map') return keyElement(item, hint.keys, where);
  if (hint.type === 'set') return `v:${JSON.stringify(item)}`;
  return undefined;
}

/** Fields the API server owns itself, never recorded for managers (`fieldmanager`'s strip list). */
const strippedPaths: readonly (readonly string[])[] = [
  ['apiVersion'],
  ['kind'],
  ['metadata', 'name'],
  ['metadata', 'namespace'],
  ['metadata', 'creationTimestamp'],
  ['metadata', 'selfLink'],
  ['metadata', 'uid'],
  ['metadata', 'clusterName'],
  ['metadata', 'generation'],
  ['metadata', 'managedFields'],
  ['metadata', 'resourceVersion'],
];

function walk(value: unknown, schema: JSONSchemaProps | undefined, into: FieldSet, where: string): void {
  if (Array.isArray(value)) {
    const hint = applyListHint(schema);
    if (hint.type === 'atomic') {
      into.member = true;
      return;
    }
    const items = itemsSchema(schema);
    value.forEach((item, i) => {
      const element = itemElement(item, hint, `${where}[${i}]`);
      if (element === undefined) return;
      const node = childOf(into, element);
      node.member = true;
      walk(item, items, node, `${where}[${i}]`);
    });
    return;
  }
  if (isPlainObject(value)) {
    if (applyMapIsAtomic(schema)) {
      into.member = true;
      return;
    }
    for (const [key, v] of Object.entries(value)) {
      const node = childOf(into, `f:${key}`);
      walk(v, fieldSchema(schema, key), node, `${where}.${key}`);
      // Empty maps, nulls and map entries (as opposed to declared fields) are members themselves.
      if (v === null || (isPlainObject(v) && Object.keys(v).length === 0) || !isDeclaredField(schema, key)) node.member = true;
    }
    return;
  }
  into.member = true;
}

/**
 * The fields an object sets, as server-side apply records them for the
 * manager that applied it (server-owned metadata excluded). Extra paths of
 * field names, such as `['status']`, can be left out with `ignore`.
 */
export function fieldSetOf(obj: unknown, schema: JSONSchemaProps | undefined, ignore: readonly (readonly string[])[] = []): FieldSet {
  const set = emptyFieldSet();
  walk(obj, schema, set, '');
  set.member = false;
  for (const path of [...strippedPaths, ...ignore]) removePath(set, path.map((p) => `f:${p}`));
  return prune(set);
}

function removePath(set: FieldSet, path: readonly string[]): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) set.children.delete(head);
  else {
    const next = set.children.get(head);
    if (next !== undefined) removePath(next, rest);
  }
}

/** Drops parents left without members. */
function prune(set: FieldSet): FieldSet {
  for (const [key, node] of set.children) {
    prune(node);
    if (!node.member && node.children.size === 0) set.children.delete(key);
  }
  return set;
}

export function isEmptyFieldSet(set: FieldSet): boolean {
  return !set.member && set.children.size === 0;
}

export function unionFieldSets(a: FieldSet, b: FieldSet): FieldSet {
  const out: FieldSet = { member: a.member || b.member, children: new Map() };
  for (const key of new Set([...a.children.keys(), ...b.children.keys()])) {
    out.children.set(key, unionFieldSets(a.children.get(key) ?? emptyFieldSet(), b.children.get(key) ?? emptyFieldSet()));
  }
  return out;
}

/** Members of `a` that are not members of `b`. */
export function differenceFieldSets(a: FieldSet, b: FieldSet): FieldSet {
  const out: FieldSet = { member: a.member && !b.member, children: new Map() };
  for (const [key, node] of a.children) {
    const other = b.children.get(key);
    out.children.set(key, other === undefined ? unionFieldSets(node, emptyFieldSet()) : differenceFieldSets(node, other));
  }
  return prune(out);
}

/** Members of both. */
export function intersectFieldSets(a: FieldSet, b: FieldSet): FieldSet {
  const out: FieldSet = { member: a.member && b.member, children: new Map() };
  for (const [key, node] of a.children) {
    const other = b.children.get(key);
    if (other !== undefined) out.children.set(key, intersectFieldSets(node, other));
  }
  return prune(out);
}

/** The `fieldsV1` JSON of a set: `{}` for a leaf member, `".": {}` for a member that also has children. */
export function toFieldsV1(set: FieldSet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (set.member && set.children.size > 0) out['.'] = {};
  for (const key of [...set.children.keys()].sort()) {
    const node = set.children.get(key);
    if (node !== undefined) out[key] = toFieldsV1(node);
  }
  return out;
}

/** Reads a stored `fieldsV1`; anything malformed reads as empty rather than failing a write. */
export function fromFieldsV1(json: unknown): FieldSet {
  const set = emptyFieldSet();
  if (!isPlainObject(json)) return set;
  for (const [key, value] of Object.entries(json)) {
    if (key === '.') set.member = true;
    else {
      const node = fromFieldsV1(value);
      if (node.children.size === 0) node.member = true;
      set.children.set(key, node);
    }
  }
  return set;
}

/**
 * The fields an update changed (present in `after` with a different value,
 * or new), which the updating manager comes to own.
 */
export function changedFieldSet(before: unknown, after: unknown, schema: JSONSchemaProps | undefined): FieldSet {
  const set = emptyFieldSet();
  // On create, compare with an empty object whose metadata already exists, as the server-set name makes it.
  diffInto(before === undefined ? { metadata: {} } : before, after, schema, set, '');
  set.member = false;
  for (const path of strippedPaths) removePath(set, path.map((p) => `f:${p}`));
  return prune(set);
}

function diffInto(before: unknown, after: unknown, schema: JSONSchemaProps | undefined, into: FieldSet, where: string): void {
  if (jsonEqual(before, after)) return;
  if ((isPlainObject(after) && !isPlainObject(before)) || (Array.isArray(after) && !Array.isArray(before))) {
    walk(after, schema, into, where);
    into.member = true;
    return;
  }
  if (isPlainObject(after) && isPlainObject(before) && !applyMapIsAtomic(schema)) {
    for (const [key, v] of Object.entries(after)) {
      const node = childOf(into, `f:${key}`);
      if (!Object.hasOwn(before, key)) {
        walk(v, fieldSchema(schema, key), node, `${where}.${key}`);
        node.member = true;
      } else diffInto(before[key], v, fieldSchema(schema, key), node, `${where}.${key}`);
    }
    return;
  }
  const hint = applyListHint(schema);
  if (Array.isArray(after) && Array.isArray(before) && hint.type !== 'atomic') {
    const old = new Map<string, unknown>();
    before.forEach((item, i) => {
      const element = itemElement(item, hint, `${where}[${i}]`);
      if (element !== undefined && !old.has(element)) old.set(element, item);
    });
    after.forEach((item, i) => {
      const element = itemElement(item, hint, `${where}[${i}]`);
      if (element === undefined) return;
      const node = childOf(into, element);
      if (!old.has(element)) {
        walk(item, itemsSchema(schema), node, `${where}[${i}]`);
        node.member = true;
      } else diffInto(old.get(element), item, itemsSchema(schema), node, `${where}[${i}]`);
    });
    return;
  }
  into.member = true;
}
