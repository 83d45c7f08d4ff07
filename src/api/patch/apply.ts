/**
 * Minimal server-side apply (`application/apply-patch+yaml`): the applied
 * configuration merges into the live object with structured-merge-diff's
 * list semantics (keyed lists merge by key, sets union, atomic lists and
 * maps are replaced), fields the same manager applied before and has now
 * dropped are removed, and `managedFields` records who set what. There is
 * no conflict detection: every apply behaves as `force=true`.
 */
import { badRequest } from '../errors.js';
import type { ManagedFieldsEntry } from '../object.js';
import { isPlainObject } from '../object.js';
import type { JSONSchemaProps } from '../resource.js';
import type { FieldSet } from './field-set.js';
import {
  changedFieldSet,
  differenceFieldSets,
  emptyFieldSet,
  fieldSetOf,
  fromFieldsV1,
  intersectFieldSets,
  isEmptyFieldSet,
  itemElement,
  toFieldsV1,
  unionFieldSets,
} from './field-set.js';
import { jsonClone, setField } from './json-value.js';
import { applyListHint, applyMapIsAtomic, fieldSchema, itemsSchema } from './schema-hints.js';

type JsonMap = Record<string, unknown>;

export interface ApplyOptions {
  /** Structural schema of the whole object; undefined treats every list as atomic. */
  schema: JSONSchemaProps | undefined;
  /**
   * The applying field manager. With it, fields recorded in its previous
   * `Apply` entry of `current.metadata.managedFields` that the new intent no
   * longer sets are removed, unless another manager also owns them.
   */
  manager?: string;
}

/** Drops nulls: in an applied configuration they mean "not set". */
function clean(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clean);
  if (!isPlainObject(value)) return value;
  const out: JsonMap = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) setField(out, k, clean(v));
  return out;
}

function merge(live: unknown, applied: unknown, schema: JSONSchemaProps | undefined, where: string): unknown {
  if (isPlainObject(live) && isPlainObject(applied) && !applyMapIsAtomic(schema)) {
    const out: JsonMap = { ...live };
    for (const [key, value] of Object.entries(applied)) {
      if (value === null) delete out[key];
      else setField(out, key, merge(Object.hasOwn(live, key) ? live[key] : undefined, value, fieldSchema(schema, key), `${where}.${key}`));
    }
    return out;
  }
  if (Array.isArray(live) && Array.isArray(applied)) {
    const hint = applyListHint(schema);
    if (hint.type !== 'atomic') return mergeList(live, applied, schema, where);
  }
  return clean(applied);
}

/**
 * structured-merge-diff's list merge: applied items come in applied order,
 * live-only items stay where they were relative to them.
 */
function mergeList(live: unknown[], applied: unknown[], schema: JSONSchemaProps | undefined, where: string): unknown[] {
  const hint = applyListHint(schema);
  const items = itemsSchema(schema);
  const element = (item: unknown, i: number, side: string): string => itemElement(item, hint, `${where}[${side}${i}]`) ?? String(i);
  const lhs = live.map((item, i) => element(item, i, ''));
  const rhs = applied.map((item, i) => element(item, i, 'applied '));
  const observedLhs = new Map<string, unknown>();
  live.forEach((item, i) => {
    const key = lhs[i] ?? '';
    if (!observedLhs.has(key)) observedLhs.set(key, item);
  });
  const observedRhs = new Map<string, unknown>();
  applied.forEach((item, i) => observedRhs.set(rhs[i] ?? '', item));
  const shared = rhs.filter((key) => observedLhs.has(key));
  let nextShared = shared.shift();
  const mergedRhs = new Set<string>();
  const out: unknown[] = [];
  const mergeItem = (key: string): unknown => merge(observedLhs.get(key), observedRhs.get(key), items, `${where}[${key}]`);
  let l = 0;
  let r = 0;
  while (l < lhs.length || r < rhs.length) {
    const lKey = lhs[l];
    const rKey = rhs[r];
    if (lKey !== undefined && rKey !== undefined) {
      if (lKey === rKey) {
        mergedRhs.add(lKey);
        out.push(mergeItem(lKey));
        l++;
        r++;
        nextShared = shared.shift();
        continue;
      }
      if (observedRhs.has(lKey) && nextShared !== undefined && nextShared !== lKey) {
        // A shared item, but the applied order wants another one first.
        l++;
        continue;
      }
    }
    if (lKey !== undefined) {
      if (!observedRhs.has(lKey)) {
        out.push(live[l]);
        l++;
        continue;
      } else if (mergedRhs.has(lKey)) {
        l++;
      }
    }
    if (rKey !== undefined) {
      mergedRhs.add(rKey);
      out.push(mergeItem(rKey));
      r++;
      if (nextShared === rKey) nextShared = shared.shift();
    }
  }
  return out;
}

/** Removes every member of `remove` from `obj`, except nodes with descendants `keep` still owns. */
function removeFields(obj: unknown, remove: FieldSet, keep: FieldSet, schema: JSONSchemaProps | undefined): unknown {
  if (isPlainObject(obj)) {
    const out: JsonMap = { ...obj };
    for (const [element, node] of remove.children) {
      if (!element.startsWith('f:')) continue;
      const key = element.slice(2);
      if (!Object.hasOwn(out, key)) continue;
      const kept = keep.children.get(element) ?? emptyFieldSet();
      if (node.member && isEmptyFieldSet(kept)) delete out[key];
      else setField(out, key, removeFields(out[key], node, kept, fieldSchema(schema, key)));
    }
    return out;
  }
  if (Array.isArray(obj)) {
    const hint = applyListHint(schema);
    if (hint.type === 'atomic') return obj;
    const out: unknown[] = [];
    obj.forEach((item, i) => {
      const element = itemElement(item, hint, `[${i}]`) ?? '';
      const node = remove.children.get(element);
      if (node === undefined) {
        out.push(item);
        return;
      }
      const kept = keep.children.get(element) ?? emptyFieldSet();
      if (node.member && isEmptyFieldSet(kept)) return;
      out.push(removeFields(item, node, kept, itemsSchema(schema)));
    });
    return out;
  }
  return obj;
}

function ownedByOthers(entries: readonly ManagedFieldsEntry[], manager: string): FieldSet {
  let set = emptyFieldSet();
  for (const e of entries) {
    if (e.manager === manager && e.operation === 'Apply' && e.subresource === undefined) continue;
    set = unionFieldSets(set, fromFieldsV1(e.fieldsV1));
  }
  return set;
}

/**
 * Merges an applied configuration into the live object (or creates it from
 * the intent when `current` is undefined) and returns the result; neither
 * input is modified. `intent` must be an object (the decoded YAML/JSON body).
 */
export function applyPatch(current: unknown, intent: unknown, options: ApplyOptions): JsonMap {
  if (!isPlainObject(intent)) {
    throw badRequest('invalid apply patch: the body must be a YAML or JSON object, the full intended configuration of one object');
  }
  if (current === undefined || !isPlainObject(current)) return clean(intent) as JsonMap;
  let merged = merge(current, intent, options.schema, '') as JsonMap;
  const meta = current['metadata'];
  const entries = isPlainObject(meta) && Array.isArray(meta['managedFields']) ? (meta['managedFields'] as ManagedFieldsEntry[]) : [];
  const manager = options.manager;
  const previous = entries.find((e) => e.manager === manager && e.operation === 'Apply' && e.subresource === undefined);
  if (manager !== undefined && previous !== undefined) {
    const dropped = differenceFieldSets(fromFieldsV1(previous.fieldsV1), fieldSetOf(intent, options.schema));
    if (!isEmptyFieldSet(dropped)) merged = removeFields(merged, dropped, ownedByOthers(entries, manager), options.schema) as JsonMap;
  }
  return jsonClone(merged);
}

/** One write, for `managedFields` bookkeeping. */
export interface ManagedFieldsWrite {
  manager: string;
  operation: 'Apply' | 'Update';
  /** `group/version` the write used. */
  apiVersion: string;
  /** RFC 3339, whole seconds. */
  time: string;
  subresource?: string;
  /** The object before the write (undefined on create) and after it. */
  before: unknown;
  after: unknown;
  /** For `Apply`: the applied configuration, whose fields the manager then owns exactly. */
  applied?: unknown;
  schema: JSONSchemaProps | undefined;
}

function sameManager(e: ManagedFieldsEntry, w: ManagedFieldsWrite): boolean {
  // Appliers keep one entry across API versions; updaters get one per version, as in Kubernetes.
  return (
    e.manager === w.manager &&
    e.operation === w.operation &&
    e.subresource === w.subresource &&
    (w.operation === 'Apply' || e.apiVersion === w.apiVersion)
  );
}

/**
 * The `managedFields` after a write: the writer's entry gets the fields it
 * applied (Apply) or changed (Update), and other managers lose the fields
 * the write changed. Entries left empty are dropped.
 */
export function updateManagedFields(entries: readonly ManagedFieldsEntry[] | undefined, write: ManagedFieldsWrite): ManagedFieldsEntry[] {
  const changed = changedFieldSet(write.before, write.after, write.schema);
  const existing = entries ?? [];
  const mine = existing.find((e) => sameManager(e, write));
  let owned: FieldSet;
  let taken: FieldSet;
  if (write.operation === 'Apply') {
    owned = fieldSetOf(write.applied ?? write.after, write.schema);
    taken = intersectFieldSets(changed, owned);
  } else {
    owned = unionFieldSets(mine === undefined ? emptyFieldSet() : fromFieldsV1(mine.fieldsV1), changed);
    taken = changed;
  }
  const out: ManagedFieldsEntry[] = [];
  let placed = false;
  for (const e of existing) {
    if (e === mine) {
      placed = true;
      if (!isEmptyFieldSet(owned)) out.push(entryFor(write, owned));
      continue;
    }
    const left = differenceFieldSets(fromFieldsV1(e.fieldsV1), taken);
    if (!isEmptyFieldSet(left)) out.push({ ...e, fieldsV1: toFieldsV1(left) });
  }
  if (!placed && !isEmptyFieldSet(owned)) out.push(entryFor(write, owned));
  return out;
}

function entryFor(write: ManagedFieldsWrite, owned: FieldSet): ManagedFieldsEntry {
  const entry: ManagedFieldsEntry = {
    manager: write.manager,
    operation: write.operation,
    apiVersion: write.apiVersion,
    time: write.time,
    fieldsType: 'FieldsV1',
    fieldsV1: toFieldsV1(owned),
  };
  if (write.subresource !== undefined) entry.subresource = write.subresource;
  return entry;
}
