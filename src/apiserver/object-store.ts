/**
 * The generic registry: create, read, update, delete and list of any
 * resource on top of the revisioned store, with Kubernetes' semantics:
 * server-set metadata, generation, optimistic concurrency, the status
 * subresource, finalizers and graceful deletion, and no-op updates that
 * write nothing.
 */
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import type { KList, KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { groupVersion } from '../api/resource.js';
import { ApiError, alreadyExists, badRequest, conflict, invalid, notFound } from '../api/errors.js';
import { generateName } from '../api/names.js';
import { StoreError } from '../store/types.js';
import type { KeyValue, Store } from '../store/types.js';
import { decodeKeyValue, encodeObject, objectKey, resourcePrefix } from './codec.js';
import type { Admission, FieldValidation } from './admission.js';
import type { ObjectMatcher } from './selection.js';
import { checkMetadataShape, describeJson } from './metadata-shape.js';
import { encodeContinue, parseContinue } from './continue-token.js';

export interface WriteOptions {
  dryRun?: boolean;
  /** API clients are `user`; in-process controllers leave it unset (`controller`). */
  writer?: 'user' | 'controller';
  fieldValidation?: FieldValidation;
  fieldManager?: string;
}

export interface WriteResult {
  object: KObject;
  warnings: string[];
  /** True when the write created the object (201). */
  created: boolean;
}

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

export interface DeleteOptions {
  dryRun?: boolean;
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
  /**
   * How long the object's owner may take to let go (a VMI's guest to power
   * off), recorded as `deletionGracePeriodSeconds`; the agent takes it when
   * it is shorter than the VMI's own `terminationGracePeriodSeconds`.
   */
  gracePeriodSeconds?: number;
}

export interface ListOptions {
  matcher?: ObjectMatcher;
  limit?: number;
  continueToken?: string;
  /** Read at this exact revision (`resourceVersionMatch=Exact`). */
  exactRevision?: number;
}

export class ObjectStore {
  constructor(
    readonly store: Store,
    private readonly admission: Admission,
  ) {}

  async get(def: ResourceDef, namespace: string | undefined, name: string): Promise<KObject> {
    const kv = await this.store.get(objectKey(def, namespace, name));
    if (kv === undefined) throw notFound(def.plural, def.group, name);
    return decodeKeyValue(kv, def);
  }

  async tryGet(def: ResourceDef, namespace: string | undefined, name: string): Promise<KObject | undefined> {
    const kv = await this.store.get(objectKey(def, namespace, name));
    return kv === undefined ? undefined : decodeKeyValue(kv, def);
  }

  async list(def: ResourceDef, namespace: string | undefined, options: ListOptions = {}): Promise<KList> {
    const prefix = resourcePrefix(def, namespace);
    let revision = options.exactRevision ?? 0;
    let start: string | undefined;
    if (options.continueToken !== undefined) {
      const token = parseContinue(options.continueToken, prefix);
      revision = token.rv;
      start = token.start;
    }
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : 0;
    const items: KObject[] = [];
    let more = false;
    let lastKey = '';
    // Filtering happens after the read, so keep reading chunks until the page is full.
    for (;;) {
      const chunk = limit === 0 ? 0 : Math.max(limit - items.length, 64);
      const listOpts: { revision?: number; startKey?: string; limit?: number } = {};
      if (revision > 0) listOpts.revision = revision;
      if (start !== undefined) listOpts.startKey = start;
      if (chunk > 0) listOpts.limit = chunk;
      const result = await this.readList(prefix, listOpts);
      revision = result.revision;
      for (const kv of result.items) {
        lastKey = kv.key;
        const obj = decodeKeyValue(kv, def);
        if (options.matcher === undefined || options.matcher(obj)) items.push(obj);
        if (limit > 0 && items.length >= limit) break;
      }
      const consumedAll = result.items.length === 0 || lastKey === result.items[result.items.length - 1]?.key;
      if (limit > 0 && items.length >= limit) {
        more = result.more || !consumedAll;
        break;
      }
      if (!result.more) break;
      start = `${lastKey}\u0000`;
    }
    const list: KList = {
      apiVersion: groupVersion(def),
      kind: def.listKind,
      metadata: { resourceVersion: String(revision) },
      items,
    };
    if (more) list.metadata.continue = encodeContinue({ rv: revision, start: `${lastKey}\u0000` }, prefix);
    return list;
  }

  private async readList(prefix: string, opts: { revision?: number; startKey?: string; limit?: number }) {
    try {
      return await this.store.list(prefix, opts);
    } catch (err) {
      if (err instanceof StoreError && err.code === 'Compacted') {
        throw new ApiError(
          'Expired',
          `The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.`,
        );
      }
      if (err instanceof RangeError) {
        throw badRequest(`resourceVersion ${opts.revision ?? ''} is newer than the latest revision of this server (${this.store.currentRevision()}): use a resourceVersion from a previous response`);
      }
      throw err;
    }
  }

  async create(def: ResourceDef, namespace: string | undefined, input: unknown, options: WriteOptions = {}): Promise<WriteResult> {
    const obj = this.checkBody(def, input, namespace);
    const meta = obj.metadata;
    if (meta.name === undefined || meta.name === '') {
      if (meta.generateName === undefined || meta.generateName === '') {
        throw invalid(def.kind, def.group, '', [
          { field: 'metadata.name', reason: 'FieldValueRequired', message: 'Required value: name or generateName is required' },
        ]);
      }
      meta.name = generateName(meta.generateName);
    }
    if (def.namespaced) await this.checkNamespaceAcceptsCreate(namespace ?? '');
    if (def.subresources.status && !def.builtin) delete obj.status;
    meta.uid = randomUUID();
    meta.creationTimestamp = nowTimestamp();
    if (tracksGeneration(def)) meta.generation = 1;
    else delete meta.generation;
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    delete meta.deletionGracePeriodSeconds;
    const release = await this.admission.prepare?.(def, obj, undefined, this.store);
    try {
      const { warnings } = this.admission.admit(def, obj, undefined, options);
      if (options.dryRun === true) return { object: obj, warnings, created: true };
      const key = objectKey(def, namespace, meta.name);
      try {
        const kv = await this.store.create(key, encodeObject(obj));
        meta.resourceVersion = String(kv.modRevision);
        return { object: obj, warnings, created: true };
      } catch (err) {
        if (err instanceof StoreError && err.code === 'KeyExists') throw alreadyExists(def.plural, def.group, meta.name);
        throw err;
      }
    } finally {
      release?.();
    }
  }

  /**
   * Replaces an object (PUT). `subresource` 'status' takes only `.status`
   * from the input. An update that changes nothing writes nothing.
   */
  async update(
    def: ResourceDef,
    namespace: string | undefined,
    name: string,
    input: unknown,
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<WriteResult> {
    const obj = this.checkBody(def, input, namespace);
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    const requiredRv = obj.metadata.resourceVersion;
    if (requiredRv === undefined || requiredRv === '') {
      if (!def.builtin) {
        throw invalid(def.kind, def.group, name, [
          { field: 'metadata.resourceVersion', reason: 'FieldValueInvalid', message: 'Invalid value: 0x0: must be specified for an update' },
        ]);
      }
    }
    const current = await this.get(def, namespace, name);
    if (requiredRv !== undefined && requiredRv !== '' && requiredRv !== current.metadata.resourceVersion) {
      throw conflict(def.plural, def.group, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    return this.replace(def, current, obj, options);
  }

  /**
   * Writes `next` over `current` (both full objects), enforcing immutable
   * metadata, status-subresource rules, generation and finalizer rules.
   * Used by update and patch.
   */
  async replace(
    def: ResourceDef,
    current: KObject,
    nextInput: KObject,
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<WriteResult> {
    const name = current.metadata.name ?? '';
    let next = nextInput;
    if (options.subresource === 'status') {
      // Only .status comes from the request; everything else, metadata included, is kept.
      next = { ...structuredClone(current), status: nextInput.status };
      if (nextInput.status === undefined) delete next.status;
    } else if (options.subresource !== undefined) {
      throw notFound(`${def.plural}/${options.subresource}`, def.group, name);
    } else if (def.subresources.status) {
      if (current.status === undefined) delete next.status;
      else next.status = current.status;
    }
    const meta = next.metadata;
    const old = current.metadata;
    meta.name = old.name ?? name;
    if (def.namespaced && old.namespace !== undefined) meta.namespace = old.namespace;
    if (meta.uid !== undefined && meta.uid !== old.uid) {
      throw invalid(def.kind, def.group, name, [
        { field: 'metadata.uid', reason: 'FieldValueInvalid', message: `Invalid value: "${meta.uid}": field is immutable` },
      ]);
    }
    if (old.uid !== undefined) meta.uid = old.uid;
    if (old.creationTimestamp !== undefined) meta.creationTimestamp = old.creationTimestamp;
    if (old.deletionTimestamp !== undefined) {
      meta.deletionTimestamp = old.deletionTimestamp;
      meta.deletionGracePeriodSeconds = old.deletionGracePeriodSeconds ?? 0;
      const added = (meta.finalizers ?? []).filter((f) => !(old.finalizers ?? []).includes(f));
      if (added.length > 0) {
        throw invalid(def.kind, def.group, name, [
          {
            field: 'metadata.finalizers',
            reason: 'FieldValueForbidden',
            message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`,
          },
        ]);
      }
    } else {
      delete meta.deletionTimestamp;
      delete meta.deletionGracePeriodSeconds;
    }
    if (tracksGeneration(def)) {
      meta.generation = old.generation ?? 1;
      if (specChanged(def, current, next)) meta.generation += 1;
    } else {
      delete meta.generation;
    }
    const release = options.subresource === 'status' ? undefined : await this.admission.prepare?.(def, next, current, this.store);
    // A Service's allocations stay locked until its write is stored (or refused).
    try {
      const { warnings } = this.admission.admit(def, next, current, { ...options, statusOnly: options.subresource === 'status' });
      meta.resourceVersion = old.resourceVersion ?? '';
      if (isDeepStrictEqual(stripVolatile(next), stripVolatile(current))) {
        return { object: current, warnings, created: false };
      }
      if (options.dryRun === true) return { object: next, warnings, created: false };
      const key = objectKey(def, meta.namespace, meta.name);
      const expected = Number(old.resourceVersion);
      if (meta.deletionTimestamp !== undefined && isFinalized(next)) {
        // The last finalizer is gone: the object goes now.
        const kv = await this.casDelete(def, key, expected, name);
        meta.resourceVersion = String(kv.modRevision);
        return { object: next, warnings, created: false };
      }
      try {
        const kv = await this.store.update(key, encodeObject(next), expected);
        meta.resourceVersion = String(kv.modRevision);
        return { object: next, warnings, created: false };
      } catch (err) {
        throw this.mapWriteError(err, def, name);
      }
    } finally {
      release?.();
    }
  }

  /** Deletes an object, or marks it for deletion while finalizers remain. */
  async delete(def: ResourceDef, namespace: string | undefined, name: string, options: DeleteOptions = {}): Promise<{ object: KObject; pending: boolean }> {
    for (let attempt = 0; ; attempt++) {
      const current = await this.get(def, namespace, name);
      const pre = options.preconditions;
      if (pre?.uid !== undefined && pre.uid !== current.metadata.uid) {
        throw conflict(def.plural, def.group, name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid ?? ''}`);
      }
      if (pre?.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) {
        throw conflict(
          def.plural,
          def.group,
          name,
          `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion ?? ''}`,
        );
      }
      const next = structuredClone(current);
      const finalizers = new Set(next.metadata.finalizers ?? []);
      if (options.propagationPolicy === 'Foreground') finalizers.add('foregroundDeletion');
      if (options.propagationPolicy === 'Orphan') finalizers.add('orphan');
      if (finalizers.size > 0) next.metadata.finalizers = [...finalizers];
      if (next.metadata.finalizers !== undefined && next.metadata.finalizers.length === 0) delete next.metadata.finalizers;
      const pending = !isFinalized(next);
      if (options.dryRun === true) return { object: current, pending };
      const expected = Number(current.metadata.resourceVersion);
      const key = objectKey(def, namespace, name);
      try {
        if (!pending) {
          const kv = await this.store.delete(key, expected);
          current.metadata.resourceVersion = String(kv.modRevision);
          return { object: current, pending: false };
        }
        if (next.metadata.deletionTimestamp === undefined) {
          next.metadata.deletionTimestamp = nowTimestamp();
          next.metadata.deletionGracePeriodSeconds = options.gracePeriodSeconds ?? 0;
          if ((next.metadata.generation ?? 0) > 0) next.metadata.generation = (next.metadata.generation ?? 0) + 1;
          this.admission.onDeleting?.(def, next);
        }
        if (isDeepStrictEqual(next, current)) return { object: current, pending: true };
        const kv = await this.store.update(key, encodeObject(next), expected);
        next.metadata.resourceVersion = String(kv.modRevision);
        return { object: next, pending: true };
      } catch (err) {
        // Someone wrote in between: deletion is idempotent, so read again (unless a precondition pins the version).
        if (err instanceof StoreError && err.code === 'Conflict' && pre?.resourceVersion === undefined && attempt < 5) continue;
        if (err instanceof StoreError && err.code === 'KeyNotFound') throw notFound(def.plural, def.group, name);
        throw this.mapWriteError(err, def, name);
      }
    }
  }

  private async casDelete(def: ResourceDef, key: string, expected: number, name: string): Promise<KeyValue> {
    try {
      return await this.store.delete(key, expected);
    } catch (err) {
      throw this.mapWriteError(err, def, name);
    }
  }

  private mapWriteError(err: unknown, def: ResourceDef, name: string): unknown {
    if (err instanceof StoreError) {
      if (err.code === 'Conflict') {
        return conflict(def.plural, def.group, name, 'the object has been modified; please apply your changes to the latest version and try again');
      }
      if (err.code === 'KeyNotFound') return notFound(def.plural, def.group, name);
      if (err.code === 'KeyExists') return alreadyExists(def.plural, def.group, name);
    }
    return err;
  }

  /** Checks the body is an object of this resource's kind, in the URL's namespace. */
  private checkBody(def: ResourceDef, input: unknown, namespace: string | undefined): KObject {
    if (!isPlainObject(input)) throw badRequest(`the request body must be a ${def.kind} object, got ${describeJson(input)}`);
    const apiVersion = input.apiVersion;
    const kind = input.kind;
    const expectedGv = groupVersion(def);
    if (kind !== undefined && kind !== def.kind) {
      throw badRequest(`the object's kind is ${JSON.stringify(kind)} but this endpoint serves ${def.kind} (${def.plural}): send it to the endpoint of its own kind`);
    }
    if (apiVersion !== undefined && apiVersion !== expectedGv) {
      const gvGroup = typeof apiVersion === 'string' && apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
      if (gvGroup !== def.group) {
        throw badRequest(`the object's apiVersion is ${JSON.stringify(apiVersion)} but this endpoint serves ${expectedGv}: send it to the endpoint of its group`);
      }
    }
    const metadata = input.metadata ?? {};
    if (!isPlainObject(metadata)) throw badRequest(`metadata must be an object, got ${describeJson(metadata)}`);
    checkMetadataShape(def, metadata);
    const obj = { ...input, apiVersion: expectedGv, kind: def.kind, metadata } as KObject;
    const metaNs = obj.metadata.namespace;
    if (def.namespaced) {
      if (metaNs !== undefined && metaNs !== '' && namespace !== undefined && metaNs !== namespace) {
        throw badRequest(
          `the namespace of the provided object (${metaNs}) does not match the namespace sent on the request (${namespace})`,
        );
      }
      if (namespace === undefined) throw badRequest(`${def.kind} is namespaced: send it to /namespaces/<namespace>/${def.plural}`);
      obj.metadata.namespace = namespace;
    } else {
      delete obj.metadata.namespace;
    }
    return obj;
  }

  private async checkNamespaceAcceptsCreate(namespace: string): Promise<void> {
    const kv = await this.store.get(`/registry/core/namespaces/${namespace}`);
    if (kv === undefined) throw notFound('namespaces', '', namespace);
    if (kv.value.includes('"deletionTimestamp"')) {
      const ns = JSON.parse(kv.value) as KObject;
      if (ns.metadata.deletionTimestamp !== undefined) {
        throw new ApiError('Forbidden', `unable to create new content in namespace ${namespace} because it is being terminated`, {
          details: { name: namespace, kind: 'namespaces' },
        });
      }
    }
  }
}

/** An object may be removed once no finalizer (and, for namespaces, no spec finalizer) holds it. */
export function isFinalized(obj: KObject): boolean {
  if ((obj.metadata.finalizers ?? []).length > 0) return false;
  const spec = obj.spec;
  if (obj.kind === 'Namespace' && isPlainObject(spec) && Array.isArray(spec.finalizers) && spec.finalizers.length > 0) return false;
  return true;
}

/**
 * Custom resources always carry `metadata.generation`; of the built-in kinds
 * served here only those whose Kubernetes strategy sets it do (ConfigMaps,
 * Secrets, Namespaces, Services… have none).
 */
const builtinsWithGeneration = new Set(['apiextensions.k8s.io/CustomResourceDefinition', 'networking.k8s.io/NetworkPolicy']);

function tracksGeneration(def: ResourceDef): boolean {
  return !def.builtin || builtinsWithGeneration.has(`${def.group}/${def.kind}`);
}

function specChanged(def: ResourceDef, a: KObject, b: KObject): boolean {
  const strip = (o: KObject): Record<string, unknown> => {
    const { metadata: _m, status, apiVersion: _a, kind: _k, ...rest } = o;
    return def.subresources.status || def.builtin ? rest : { ...rest, status };
  };
  return !isDeepStrictEqual(strip(a), strip(b));
}

function stripVolatile(o: KObject): KObject {
  const { managedFields: _mf, resourceVersion: _rv, ...meta } = o.metadata;
  return { ...o, metadata: meta };
}

export function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, 'Z');
}

