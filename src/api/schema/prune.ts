/**
 * Structural pruning, as apiextensions-apiserver does it
 * (`schema/pruning/algorithm.go` and `schema/objectmeta`): fields a schema
 * does not specify are removed, except under
 * `x-kubernetes-preserve-unknown-fields`; `apiVersion`, `kind` and
 * `metadata` of the root and of embedded resources are left to ObjectMeta's
 * own schema, which keeps every ObjectMeta field and drops the rest.
 */
import type { JSONSchemaProps } from '../resource.js';
import { isPlainObject } from '../object.js';

const metaFields = new Set(['apiVersion', 'kind', 'metadata']);

const child = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

/**
 * Removes, in place, the fields of `obj` that `schema` (the whole object's,
 * or undefined: anything) does not specify. Returns the removed fields'
 * paths, sorted, e.g. `spec.template.spec.domain.devices.disks[0].bogus`.
 */
export function pruneObject(obj: unknown, schema: JSONSchemaProps | undefined, objectMeta: JSONSchemaProps): string[] {
  const pruner = new Pruner(objectMeta);
  const root = schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  pruner.prune(obj, { ...root, 'x-kubernetes-embedded-resource': true }, '');
  return pruner.removed.sort();
}

class Pruner {
  readonly removed: string[] = [];
  private readonly objectMeta: JSONSchemaProps;

  constructor(objectMeta: JSONSchemaProps) {
    this.objectMeta = objectMeta;
  }

  prune(x: unknown, s: JSONSchemaProps | undefined, path: string): void {
    if (s?.['x-kubernetes-preserve-unknown-fields'] === true) {
      this.keepUnknown(x, s, path);
      return;
    }
    if (Array.isArray(x)) {
      x.forEach((v, i) => {
        this.prune(v, s?.items, `${path}[${i}]`);
      });
      return;
    }
    if (!isPlainObject(x)) return;
    if (s === undefined) {
      for (const k of Object.keys(x)) this.remove(x, k, path);
      return;
    }
    const embedded = s['x-kubernetes-embedded-resource'] === true;
    for (const [k, v] of Object.entries(x)) {
      if (embedded && metaFields.has(k)) {
        if (k === 'metadata') this.pruneMetadata(x, child(path, k));
        continue;
      }
      const next = this.schemaFor(s, k);
      if (next === null) this.remove(x, k, path);
      else this.prune(v, next, child(path, k));
    }
  }

  /** Under preserve-unknown-fields: unknown fields stay, known ones are pruned by their schemas. */
  private keepUnknown(x: unknown, s: JSONSchemaProps, path: string): void {
    if (Array.isArray(x)) {
      const items = s.items;
      if (items !== undefined) {
        x.forEach((v, i) => {
          this.keepUnknown(v, items, `${path}[${i}]`);
        });
      }
      return;
    }
    if (!isPlainObject(x)) return;
    const embedded = s['x-kubernetes-embedded-resource'] === true;
    for (const [k, v] of Object.entries(x)) {
      if (embedded && metaFields.has(k)) {
        if (k === 'metadata') this.pruneMetadata(x, child(path, k));
        continue;
      }
      const next = this.schemaFor(s, k);
      if (next !== null) this.prune(v, next, child(path, k));
    }
  }

  /**
   * The schema for property `k`: its own, the additionalProperties one, or
   * null when `k` is unknown. `additionalProperties: true` keeps anything.
   */
  private schemaFor(s: JSONSchemaProps, k: string): JSONSchemaProps | undefined | null {
    const prop = s.properties !== undefined && Object.hasOwn(s.properties, k) ? s.properties[k] : undefined;
    if (prop !== undefined) return prop;
    const additional = s.additionalProperties;
    if (additional === true) return { 'x-kubernetes-preserve-unknown-fields': true };
    if (additional === undefined || additional === false) return null;
    return additional;
  }

  private pruneMetadata(owner: Record<string, unknown>, path: string): void {
    const meta = owner['metadata'];
    if (!isPlainObject(meta)) return;
    // Decoding into ObjectMeta turns a null field into its zero value, which is not written back.
    for (const [k, v] of Object.entries(meta)) if (v === null) delete meta[k];
    this.prune(meta, this.objectMeta, path);
  }

  private remove(x: Record<string, unknown>, k: string, path: string): void {
    delete x[k];
    this.removed.push(child(path, k));
  }
}
