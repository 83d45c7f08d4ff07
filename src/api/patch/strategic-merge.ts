/**
 * Strategic merge patch (`application/strategic-merge-patch+json`), what
 * kubectl sends for built-in kinds. A merge patch whose lists follow the
 * schema's hints (merge by key, union of scalars, or replace) plus the
 * directives `$patch`, `$retainKeys`, `$setElementOrder/<list>` and
 * `$deleteFromPrimitiveList/<list>`. Behaviour, list ordering included,
 * follows `k8s.io/apimachinery/pkg/util/strategicpatch` applied with
 * `MergeParallelList` and `IgnoreUnmatchedNulls`, as kube-apiserver does.
 */
import { ApiError, badRequest } from '../errors.js';
import { isPlainObject } from '../object.js';
import type { JSONSchemaProps } from '../resource.js';
import { jsonClone, jsonEqual, preview, setField } from './json-value.js';
import { fieldSchema, itemsSchema, smpListHint, smpReplacesMap } from './schema-hints.js';

type JsonMap = Record<string, unknown>;

const patchDirective = '$patch';
const retainKeysDirective = '$retainKeys';
const setOrderPrefix = '$setElementOrder/';
const deleteFromListPrefix = '$deleteFromPrimitiveList/';

function isDirectiveKey(key: string): boolean {
  return key === patchDirective || key === retainKeysDirective || key.startsWith(setOrderPrefix) || key.startsWith(deleteFromListPrefix);
}

/** Go's notion of a JSON value's type, which decides between merging and replacing. */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'list';
  if (isPlainObject(v)) return 'map';
  return typeof v;
}

/**
 * A patch value stored where the original had nothing: nulls and
 * directives dropped (a map carrying `$patch: delete` disappears).
 * Returns `undefined` when nothing should be stored.
 */
function cleanNew(value: unknown): unknown {
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const item of value) {
      const cleaned = cleanNew(item);
      if (cleaned !== undefined) out.push(cleaned);
    }
    return out;
  }
  if (!isPlainObject(value)) return value;
  if (value[patchDirective] === 'delete') return undefined;
  const out: JsonMap = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === null || isDirectiveKey(k)) continue;
    const cleaned = cleanNew(v);
    if (cleaned !== undefined) setField(out, k, cleaned);
  }
  return out;
}

type IdentityFn = (item: unknown) => string;

function child(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** A list, `undefined` when absent, `null` when something else is there. */
function listOrAbsent(value: unknown): unknown[] | undefined | null {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value : null;
}

function scalarIdentity(item: unknown): string {
  return `${kindOf(item)}:${JSON.stringify(item)}`;
}

function mapIdentity(keys: readonly string[], field: string): IdentityFn {
  return (item) => {
    if (!isPlainObject(item) || keys.every((k) => !Object.hasOwn(item, k))) {
      throw badRequest(`strategic merge patch: list ${field}: item ${preview(item)} does not contain declared merge key: ${keys.join(',')}`);
    }
    return JSON.stringify(keys.map((k) => item[k] ?? null));
  };
}

/** One element kind for all items of the lists, or an error: lists of lists and mixed lists cannot merge. */
function elementKind(field: string, ...lists: unknown[][]): string | undefined {
  let kind: string | undefined;
  for (const list of lists) {
    for (const item of list) {
      const k = kindOf(item);
      if (k === 'list') throw new ApiError('Invalid', `strategic merge patch: list ${field}: lists of lists are not supported`);
      if (kind !== undefined && k !== kind) throw badRequest(`strategic merge patch: list ${field}: list element types are not identical`);
      kind = k;
    }
  }
  return kind;
}

/**
 * `mergeSortedSlice`: interleaves server-only items into the patch-ordered
 * items, keeping each group's order; a server-only item goes first only if
 * it preceded the next patch item in the live list.
 */
function interleave(serverOnly: unknown[], patchItems: unknown[], serverOrder: unknown[], id: IdentityFn): unknown[] {
  const position = new Map<string, number>();
  serverOrder.forEach((item, i) => {
    const key = id(item);
    if (!position.has(key)) position.set(key, i);
  });
  const out: unknown[] = [];
  let i = 0;
  let j = 0;
  while (i < serverOnly.length || j < patchItems.length) {
    if (j >= patchItems.length) out.push(serverOnly[i++]);
    else if (i >= serverOnly.length) out.push(patchItems[j++]);
    else {
      const li = position.get(id(serverOnly[i]));
      const ri = position.get(id(patchItems[j]));
      if (li !== undefined && ri !== undefined && li < ri) out.push(serverOnly[i++]);
      else out.push(patchItems[j++]);
    }
  }
  return out;
}

function sortBy(items: unknown[], order: unknown[], id: IdentityFn): unknown[] {
  const position = new Map<string, number>();
  order.forEach((item, i) => {
    const key = id(item);
    if (!position.has(key)) position.set(key, i);
  });
  const rank = (item: unknown): number => position.get(id(item)) ?? Number.MAX_SAFE_INTEGER;
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => rank(a.item) - rank(b.item) || a.i - b.i)
    .map((e) => e.item);
}

/** `normalizeElementOrder`: items named by `order` follow it; the rest keep their place relative to the live list. */
function normalizeOrder(merged: unknown[], order: unknown[], serverOrder: unknown[], id: IdentityFn): unknown[] {
  const named = new Set(order.map(id));
  const patchItems = merged.filter((item) => named.has(id(item)));
  const serverOnly = merged.filter((item) => !named.has(id(item)));
  return interleave(sortBy(serverOnly, serverOrder, id), sortBy(patchItems, order, id), serverOrder, id);
}

class Merger {
  constructor(private readonly root: JSONSchemaProps | undefined) {}

  mergeMap(original: JsonMap, patch: JsonMap, schema: JSONSchemaProps | undefined, path: string): JsonMap {
    const directive = patch[patchDirective];
    if (directive !== undefined) {
      if (directive === 'replace') return cleanNew(patch) as JsonMap;
      if (directive === 'delete') return {};
      if (directive !== 'merge') throw badRequest(`strategic merge patch: ${path || 'object'}: unknown patch type: ${preview(directive)}; use replace, delete or merge`);
    }
    this.retainKeys(original, patch, path);
    const pending = new Map(Object.entries(patch));
    for (const [key, order] of Object.entries(patch)) {
      if (!key.startsWith(setOrderPrefix)) continue;
      const field = key.slice(setOrderPrefix.length);
      this.setElementOrder(original, pending, field, order, fieldSchema(schema, field), child(path, field));
      pending.delete(key);
    }
    for (const [key, value] of pending) {
      if (key === patchDirective || key === retainKeysDirective) continue;
      if (key.startsWith(deleteFromListPrefix)) {
        const field = key.slice(deleteFromListPrefix.length);
        const current = original[field];
        if (!Array.isArray(value)) throw badRequest(`strategic merge patch: ${key}: invalid patch format of primitive list: it must be a list`);
        if (Array.isArray(current)) original[field] = current.filter((item) => !value.some((d) => jsonEqual(d, item)));
        continue;
      }
      this.mergeField(original, key, value, schema, child(path, key));
    }
    return original;
  }

  private mergeField(original: JsonMap, key: string, value: unknown, schema: JSONSchemaProps | undefined, path: string): void {
    if (value === null) {
      delete original[key];
      return;
    }
    const current = Object.hasOwn(original, key) ? original[key] : undefined;
    const sub = fieldSchema(schema, key);
    if (current === undefined || kindOf(current) !== kindOf(value)) {
      const cleaned = cleanNew(value);
      if (cleaned === undefined) delete original[key];
      else setField(original, key, cleaned);
    } else if (isPlainObject(current) && isPlainObject(value)) {
      setField(original, key, smpReplacesMap(sub) ? cleanNew(value) : this.mergeMap(current, value, sub, path));
    } else if (Array.isArray(current) && Array.isArray(value)) {
      setField(original, key, smpListHint(sub).merge ? this.mergeList(current, value, sub, path) : cleanNew(value));
    } else {
      setField(original, key, value);
    }
  }

  /** `$retainKeys`: clear every original key the list does not name. */
  private retainKeys(original: JsonMap, patch: JsonMap, path: string): void {
    const retain = patch[retainKeysDirective];
    if (retain === undefined) return;
    if (!Array.isArray(retain)) throw badRequest(`strategic merge patch: ${path}: invalid patch format of retainKeys: it must be a list of field names`);
    const keep = new Set(retain.map(String));
    for (const [key, value] of Object.entries(patch)) {
      if (value !== null && !isDirectiveKey(key) && !keep.has(key)) {
        throw badRequest(`strategic merge patch: ${path}: invalid patch format of retainKeys: field ${JSON.stringify(key)} is patched but not listed in $retainKeys`);
      }
    }
    for (const key of Object.keys(original)) if (!keep.has(key)) delete original[key];
  }

  /** `$setElementOrder/<field>`: merge the list, then order it as the directive says. */
  private setElementOrder(original: JsonMap, pending: Map<string, unknown>, field: string, order: unknown, schema: JSONSchemaProps | undefined, path: string): void {
    const current = listOrAbsent(original[field]);
    const patchList = listOrAbsent(pending.get(field));
    if (!Array.isArray(order) || current === null || patchList === null) {
      throw badRequest(`strategic merge patch: ${path}: invalid patch format of setElementOrder list: the directive, the list and the patch must all be lists`);
    }
    pending.delete(field);
    if (current === undefined && patchList === undefined) return;
    const hint = smpListHint(schema);
    let merged: unknown[];
    if (patchList === undefined) merged = current ?? [];
    else if (current === undefined || !hint.merge) merged = cleanNew(patchList) as unknown[];
    else merged = this.mergeList(current, patchList, schema, path);
    const kind = elementKind(path, merged);
    const id = kind !== 'map' ? scalarIdentity : hint.mergeKeys.length > 0 ? mapIdentity(hint.mergeKeys, path) : undefined;
    if (id !== undefined) {
      this.checkOrder(patchList ?? [], order, id, path);
      merged = normalizeOrder(merged, order, current ?? [], id);
    }
    original[field] = merged;
  }

  /** The patch list must name its items in the same relative order as `$setElementOrder`. */
  private checkOrder(patchList: unknown[], order: unknown[], id: IdentityFn, path: string): void {
    const items = patchList.filter((item) => !(isPlainObject(item) && Object.hasOwn(item, patchDirective)));
    let p = 0;
    for (let o = 0; o < order.length && p < items.length; o++) if (id(items[p]) === id(order[o])) p++;
    if (p < items.length) {
      throw badRequest(`strategic merge patch: ${path}: the order in the patch list ${preview(patchList)} doesn't match the $setElementOrder list ${preview(order)}`);
    }
  }

  /** `mergeSlice`: scalars union; maps merge by key, honouring `$patch: delete|replace` items. */
  mergeList(original: unknown[], patch: unknown[], schema: JSONSchemaProps | undefined, path: string): unknown[] {
    if (original.length === 0 && patch.length === 0) return original;
    const kind = elementKind(path, original, patch);
    if (kind !== 'map') {
      const merged: unknown[] = [];
      for (const item of [...original, ...patch]) if (!merged.some((m) => jsonEqual(m, item))) merged.push(item);
      return normalizeOrder(merged, patch, original, scalarIdentity);
    }
    const { mergeKeys } = smpListHint(schema);
    if (mergeKeys.length === 0) throw badRequest(`strategic merge patch: cannot merge lists without merge key for ${path}`);
    const id = mapIdentity(mergeKeys, path);
    const itemSchema = itemsSchema(schema);
    let base = [...original];
    const items: unknown[] = [];
    let replace = false;
    for (const item of patch) {
      const directive = isPlainObject(item) ? item[patchDirective] : undefined;
      if (directive === undefined || directive === 'merge') items.push(item);
      else if (directive === 'delete') {
        const gone = id(item);
        base = base.filter((b) => id(b) !== gone);
      } else if (directive === 'replace') replace = true;
      else throw badRequest(`strategic merge patch: ${path}: unknown patch type: ${preview(directive)} in list item; use replace or delete`);
    }
    if (replace) return items.map((item) => cleanNew(item)).filter((item) => item !== undefined);
    const merged = [...base];
    for (const item of items) {
      const key = id(item);
      const at = merged.findIndex((m) => id(m) === key);
      const found = at >= 0 ? merged[at] : undefined;
      if (isPlainObject(found) && isPlainObject(item)) merged[at] = this.mergeMap(found, item, itemSchema, `${path}[${key}]`);
      else {
        const cleaned = cleanNew(item);
        if (cleaned !== undefined) merged.push(cleaned);
      }
    }
    return normalizeOrder(merged, items, base, id);
  }

  apply(doc: JsonMap, patch: JsonMap): JsonMap {
    return this.mergeMap(doc, patch, this.root, '');
  }
}

/**
 * Applies a strategic merge patch to a copy of `doc`, reading list and map
 * strategies from `schema` (lists without hints are replaced, as for kinds
 * Kubernetes knows nothing about). Malformed patches are 400s.
 */
export function applyStrategicMergePatch(doc: unknown, patch: unknown, schema: JSONSchemaProps | undefined): unknown {
  if (!isPlainObject(patch)) {
    throw badRequest('invalid strategic merge patch: the body must be a JSON object such as {"data":{"key":"value"}}');
  }
  const base = isPlainObject(doc) ? jsonClone(doc) : {};
  return new Merger(schema).apply(base, jsonClone(patch));
}
