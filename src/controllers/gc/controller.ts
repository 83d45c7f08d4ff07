/**
 * The garbage collector, after kube's `garbagecollector` package: it keeps an
 * owner graph of everything under `/registry/` (one list, then one watch
 * from that revision) and reconciles, per store key, the three
 * propagation policies:
 *
 * - Background: an object whose owners are all gone is deleted; one that
 *   still has a live owner only loses the dangling references.
 * - Foreground: an owner being deleted with `foregroundDeletion` has its
 *   dependents deleted and keeps the finalizer until no dependent with
 *   `blockOwnerDeletion: true` is left.
 * - Orphan: an owner being deleted with `orphan` has its references removed
 *   from every dependent, then loses the finalizer.
 */
import type { KObject, OwnerReference } from '../../api/object.js';
import type { ResourceDef } from '../../api/resource.js';
import { ApiError } from '../../api/errors.js';
import type { ObjectStore, PropagationPolicy } from '../../apiserver/object-store.js';
import type { ResourceRegistry } from '../../apiserver/resources.js';
import type { Logger } from '../../log/logger.js';
import type { StoreEvent } from '../../store/types.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { OwnerGraph, foregroundFinalizer, orphanFinalizer } from './graph.js';

const registryPrefix = '/registry/';

/** How a dependent stands towards one of its owners (kube's `classifyReferences`). */
type OwnerState =
  /** The owner exists and is not waiting for its dependents. */
  | 'solid'
  /** No object with this uid exists where the reference points. */
  | 'dangling'
  /** The owner is being deleted in the foreground. */
  | 'waiting'
  /** The reference names a kind the server does not serve (yet): retry later. */
  | 'unresolvable'
  /** A cluster-scoped object naming a namespaced owner: never valid, never collected. */
  | 'invalid';

interface Target {
  def: ResourceDef;
  namespace: string | undefined;
  name: string;
}

/** Deletes objects whose owners are gone and carries out Foreground and Orphan deletions. */
export class GarbageCollector {
  private readonly graph = new OwnerGraph();
  private readonly queue: WorkQueue;
  private readonly watchAbort = new AbortController();

  constructor(
    private readonly objects: ObjectStore,
    private readonly registry: ResourceRegistry,
    private readonly logger: Logger,
  ) {
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 4 });
  }

  /** Loads the owner graph, starts following the store, and resumes work left by a restart. */
  async start(): Promise<void> {
    const store = this.objects.store;
    const snapshot = await store.list(registryPrefix);
    for (const kv of snapshot.items) this.graph.observe(kv.key, kv.value);
    await store.watch({ prefix: registryPrefix, afterRevision: snapshot.revision, signal: this.watchAbort.signal }, (event) => {
      this.onEvent(event);
    });
    for (const key of this.graph.actionable()) this.queue.add(key);
    this.queue.start();
    this.logger.info('garbage collector started', { objects: this.graph.size, revision: snapshot.revision });
  }

  /** Stops following the store and waits for running reconciles to end. */
  async stop(): Promise<void> {
    this.watchAbort.abort();
    await this.queue.stop();
  }

  private onEvent(event: StoreEvent): void {
    // The store drops a watcher whose callback throws; a bad value must not cost us the watch.
    try {
      const affected = this.graph.observe(event.key, event.type === 'delete' ? undefined : event.value);
      for (const key of affected) this.queue.add(key);
    } catch (err) {
      this.logger.error('owner graph update failed', { key: event.key, err });
    }
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const target = this.resolveKey(key);
    if (target === undefined) return {};
    const obj = await this.objects.tryGet(target.def, target.namespace, target.name);
    if (obj === undefined) return {};
    const meta = obj.metadata;
    if (meta.deletionTimestamp !== undefined) {
      const finalizers = meta.finalizers ?? [];
      if (finalizers.includes(orphanFinalizer)) return this.orphanDependents(target.def, obj);
      if (finalizers.includes(foregroundFinalizer)) return this.deleteDependents(target.def, obj);
      return {};
    }
    if ((meta.ownerReferences ?? []).length === 0) return {};
    return this.collect(target, obj);
  }

  /** Orphan: every dependent loses its reference to `owner`, then the owner may go. */
  private async orphanDependents(def: ResourceDef, owner: KObject): Promise<ReconcileResult> {
    const uid = owner.metadata.uid ?? '';
    for (const key of this.graph.dependentsOf(uid)) {
      const dependent = await this.read(key);
      if (dependent === undefined) continue;
      if (!(dependent.obj.metadata.ownerReferences ?? []).some((ref) => ref.uid === uid)) continue;
      await this.removeOwnerReferences(dependent.target.def, dependent.obj, new Set([uid]));
    }
    this.logger.info('dependents orphaned', { ...identity(owner), kind: owner.kind });
    await this.removeFinalizer(def, owner, orphanFinalizer);
    return {};
  }

  /**
   * Foreground: dependents are deleted (their own reconcile does it, seeing
   * this owner waiting); the owner keeps its finalizer while a dependent
   * that blocks owner deletion exists. Their changes wake this key again.
   */
  private async deleteDependents(def: ResourceDef, owner: KObject): Promise<ReconcileResult> {
    const uid = owner.metadata.uid ?? '';
    let blocking = 0;
    for (const key of this.graph.dependentsOf(uid)) {
      const dependent = await this.read(key);
      if (dependent === undefined) continue;
      const ref = (dependent.obj.metadata.ownerReferences ?? []).find((r) => r.uid === uid);
      if (ref === undefined) continue;
      if (ref.blockOwnerDeletion === true) blocking++;
      if (dependent.obj.metadata.deletionTimestamp === undefined) this.queue.add(key);
    }
    if (blocking > 0) {
      this.logger.debug('waiting for blocking dependents', { ...identity(owner), blocking });
      return {};
    }
    this.logger.info('dependents deleted, releasing owner', { ...identity(owner), kind: owner.kind });
    await this.removeFinalizer(def, owner, foregroundFinalizer);
    return {};
  }

  /** kube's `attemptToDeleteItem`: deletes a dependent whose owners are all gone, or drops its dangling references. */
  private async collect(target: Target, obj: KObject): Promise<ReconcileResult> {
    const refs = obj.metadata.ownerReferences ?? [];
    const gone = new Set<string>();
    let solid = 0;
    let waiting = 0;
    for (const ref of refs) {
      const state = await this.ownerState(ref, target.namespace);
      switch (state) {
        case 'solid':
          solid++;
          break;
        case 'dangling':
          gone.add(ref.uid);
          break;
        case 'waiting':
          waiting++;
          gone.add(ref.uid);
          break;
        case 'unresolvable':
          this.logger.debug('owner kind is not served; retrying later', { ...identity(obj), owner: ref });
          return { requeue: true };
        case 'invalid':
          this.logger.warn('cluster-scoped object names a namespaced owner; it will not be collected', { ...identity(obj), owner: ref });
          return {};
      }
    }
    if (gone.size === 0) return {};
    if (solid > 0) {
      // A live owner keeps the object; references to owners that are gone (or going in the foreground) just go.
      await this.removeOwnerReferences(target.def, obj, gone);
      return {};
    }
    const policy = this.policyFor(obj, waiting > 0);
    this.logger.info('deleting object whose owners are gone', { ...identity(obj), kind: obj.kind, propagationPolicy: policy });
    try {
      await this.objects.delete(target.def, target.namespace, target.name, {
        propagationPolicy: policy,
        preconditions: { uid: obj.metadata.uid ?? '' },
      });
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
    return {};
  }

  /**
   * As kube: a dependent of a Foreground deletion that has dependents of its
   * own goes in the foreground too, so the wait is transitive; otherwise
   * the object's own `orphan`/`foregroundDeletion` finalizer picks the policy.
   */
  private policyFor(obj: KObject, ownerWaiting: boolean): PropagationPolicy {
    if (ownerWaiting && this.graph.hasDependents(obj.metadata.uid ?? '')) return 'Foreground';
    const finalizers = obj.metadata.finalizers ?? [];
    if (finalizers.includes(orphanFinalizer)) return 'Orphan';
    if (finalizers.includes(foregroundFinalizer)) return 'Foreground';
    return 'Background';
  }

  /** Reads the owner a reference points to, as kube's `isDangling` does, rather than trusting the graph. */
  private async ownerState(ref: OwnerReference, namespace: string | undefined): Promise<OwnerState> {
    const def = this.registry.lookupKind(ref.apiVersion, ref.kind);
    if (def === undefined) return this.graph.keyOf(ref.uid) === undefined ? 'unresolvable' : 'solid';
    if (def.namespaced && namespace === undefined) return 'invalid';
    const owner = await this.objects.tryGet(def, def.namespaced ? namespace : undefined, ref.name);
    if (owner === undefined || owner.metadata.uid !== ref.uid) return 'dangling';
    const deletingInForeground = owner.metadata.deletionTimestamp !== undefined && (owner.metadata.finalizers ?? []).includes(foregroundFinalizer);
    return deletingInForeground ? 'waiting' : 'solid';
  }

  private async removeOwnerReferences(def: ResourceDef, obj: KObject, uids: ReadonlySet<string>): Promise<void> {
    const next = structuredClone(obj);
    const kept = (obj.metadata.ownerReferences ?? []).filter((ref) => !uids.has(ref.uid));
    if (kept.length > 0) next.metadata.ownerReferences = kept;
    else delete next.metadata.ownerReferences;
    this.logger.info('removing owner references', { ...identity(obj), kind: obj.kind, owners: [...uids] });
    try {
      await this.objects.replace(def, obj, next);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  private async removeFinalizer(def: ResourceDef, obj: KObject, finalizer: string): Promise<void> {
    const next = structuredClone(obj);
    const kept = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    if (kept.length > 0) next.metadata.finalizers = kept;
    else delete next.metadata.finalizers;
    try {
      await this.objects.replace(def, obj, next);
    } catch (err) {
      if (!isReason(err, 'NotFound')) throw err;
    }
  }

  private async read(key: string): Promise<{ target: Target; obj: KObject } | undefined> {
    const target = this.resolveKey(key);
    if (target === undefined) return undefined;
    const obj = await this.objects.tryGet(target.def, target.namespace, target.name);
    return obj === undefined ? undefined : { target, obj };
  }

  /** The resource, namespace and name of a store key `/registry/<group|core>/<plural>/[<namespace>/]<name>`. */
  private resolveKey(key: string): Target | undefined {
    const parts = key.split('/');
    const [, root, group, plural] = parts;
    if (root !== 'registry' || group === undefined || plural === undefined) return undefined;
    const def = this.registry.lookupStorage(group === 'core' ? '' : group, plural);
    if (def === undefined) return undefined;
    if (def.namespaced) {
      const [namespace, name] = parts.slice(4);
      return parts.length === 6 && namespace !== undefined && name !== undefined ? { def, namespace, name } : undefined;
    }
    const name = parts[4];
    return parts.length === 5 && name !== undefined ? { def, namespace: undefined, name } : undefined;
  }
}

function identity(obj: KObject): { namespace: string | undefined; name: string | undefined; uid: string | undefined } {
  return { namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid };
}

function isReason(err: unknown, reason: ApiError['reason']): boolean {
  return err instanceof ApiError && err.reason === reason;
}
