/**
 * The namespace lifecycle, after kube's namespace controller: a Namespace
 * being deleted is held by its `kubernetes` spec finalizer while every
 * namespaced object in it is deleted (Background propagation). Objects with
 * their own finalizers stay until whoever owns those removes them; the
 * controller re-lists with backoff (and sooner when something in the
 * namespace changes) until nothing is left, then drops the finalizer and
 * the object store removes the namespace.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import type { ResourceDef } from '../../api/resource.js';
import { ApiError } from '../../api/errors.js';
import { resourcePrefix } from '../../apiserver/codec.js';
import { nowTimestamp } from '../../apiserver/object-store.js';
import type { ObjectStore } from '../../apiserver/object-store.js';
import type { ResourceRegistry } from '../../apiserver/resources.js';
import type { Logger } from '../../log/logger.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { emptyTotals, isDrained, namespaceConditions } from './conditions.js';
import type { ContentTotals } from './conditions.js';
import { namespaceFinalizer, phaseTerminating } from './prepare.js';

const registryPrefix = '/registry/';

/** Empties namespaces being deleted, then lets them go. */
export class NamespaceController {
  private readonly queue: WorkQueue;
  private readonly watchAbort = new AbortController();
  /** Namespaces waiting for content to go: a change inside one wakes it before its backoff runs out. */
  private readonly draining = new Set<string>();

  constructor(
    private readonly objects: ObjectStore,
    private readonly registry: ResourceRegistry,
    private readonly logger: Logger,
  ) {
    this.queue = new WorkQueue((name) => this.reconcile(name), { logger, concurrency: 2, baseDelayMs: 100, maxDelayMs: 30_000 });
  }

  /** Follows the store and finishes namespaces left Terminating (e.g. by a restart). */
  async start(): Promise<void> {
    const def = this.namespaceDef();
    const namespaces = await this.objects.list(def, undefined);
    const revision = Number(namespaces.metadata.resourceVersion);
    await this.objects.store.watch({ prefix: registryPrefix, afterRevision: revision, signal: this.watchAbort.signal }, (event) => {
      this.onChange(event.key);
    });
    for (const ns of namespaces.items) {
      if (ns.metadata.deletionTimestamp !== undefined) this.enqueue(ns.metadata.name ?? '');
    }
    this.queue.start();
  }

  /** Stops following the store and waits for running reconciles to end. */
  async stop(): Promise<void> {
    this.watchAbort.abort();
    await this.queue.stop();
  }

  /** Asks for a look at one namespace (e.g. right after it was written). */
  enqueue(name: string): void {
    if (name !== '') this.queue.add(name);
  }

  private onChange(key: string): void {
    const parts = key.split('/');
    // `/registry/core/namespaces/<name>`: the namespace itself.
    if (parts.length === 5 && parts[2] === 'core' && parts[3] === 'namespaces') {
      this.enqueue(parts[4] ?? '');
      return;
    }
    // `/registry/<group>/<plural>/<namespace>/<name>`: content of a namespace.
    const namespace = parts.length === 6 ? parts[4] : undefined;
    if (namespace !== undefined && this.draining.has(namespace)) this.enqueue(namespace);
  }

  private async reconcile(name: string): Promise<ReconcileResult> {
    const def = this.namespaceDef();
    const ns = await this.objects.tryGet(def, undefined, name);
    if (ns === undefined || ns.metadata.deletionTimestamp === undefined || !specFinalizers(ns).includes(namespaceFinalizer)) {
      this.draining.delete(name);
      return {};
    }
    const totals = await this.deleteContent(name);
    if (isDrained(totals)) {
      this.draining.delete(name);
      await this.finalize(def, ns);
      return {};
    }
    this.draining.add(name);
    await this.reportProgress(def, ns, totals);
    return { requeue: true };
  }

  /** Deletes every namespaced object in the namespace and tallies what is still there. */
  private async deleteContent(namespace: string): Promise<ContentTotals> {
    const totals = emptyTotals();
    const seen = new Set<string>();
    for (const def of this.registry.all()) {
      // Every served version of a resource shares one storage prefix: visit each once.
      const prefix = resourcePrefix(def, namespace);
      if (!def.namespaced || seen.has(prefix)) continue;
      seen.add(prefix);
      const resource = `${def.plural}.${def.group}`;
      let items: KObject[];
      try {
        items = (await this.objects.list(def, namespace)).items;
      } catch (err) {
        totals.errors.push(`${resource}: ${describe(err)}`);
        continue;
      }
      for (const obj of items) {
        const left = await this.deleteOne(def, namespace, obj, totals);
        if (left === undefined) continue;
        totals.resources.set(resource, (totals.resources.get(resource) ?? 0) + 1);
        for (const f of left.metadata.finalizers ?? []) totals.finalizers.set(f, (totals.finalizers.get(f) ?? 0) + 1);
      }
    }
    return totals;
  }

  /** Deletes one object; returns it when it is still there (finalizers hold it). */
  private async deleteOne(def: ResourceDef, namespace: string, obj: KObject, totals: ContentTotals): Promise<KObject | undefined> {
    if (obj.metadata.deletionTimestamp !== undefined) return obj;
    const name = obj.metadata.name ?? '';
    try {
      const result = await this.objects.delete(def, namespace, name, { propagationPolicy: 'Background' });
      return result.pending ? result.object : undefined;
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
      totals.errors.push(`${def.plural}.${def.group} "${name}": ${describe(err)}`);
      return obj;
    }
  }

  /** Drops the `kubernetes` finalizer; with no other finalizer left, the store removes the namespace. */
  private async finalize(def: ResourceDef, ns: KObject): Promise<void> {
    const next = structuredClone(ns);
    if (isPlainObject(next.spec)) next.spec.finalizers = specFinalizers(ns).filter((f) => f !== namespaceFinalizer);
    await this.objects.replace(def, ns, next);
    this.logger.info('namespace emptied, finalizer removed', { name: ns.metadata.name, uid: ns.metadata.uid });
  }

  /** Writes the phase and conditions; unchanged ones write nothing. */
  private async reportProgress(def: ResourceDef, ns: KObject, totals: ContentTotals): Promise<void> {
    const status = isPlainObject(ns.status) ? ns.status : {};
    const next: KObject = {
      ...structuredClone(ns),
      status: { ...status, phase: phaseTerminating, conditions: namespaceConditions(status.conditions, totals, nowTimestamp()) },
    };
    const options = def.subresources.status ? { subresource: 'status' } : {};
    await this.objects.replace(def, ns, next, options);
    this.logger.debug('namespace content remaining', {
      name: ns.metadata.name,
      uid: ns.metadata.uid,
      remaining: Object.fromEntries(totals.resources),
      errors: totals.errors,
    });
  }

  private namespaceDef(): ResourceDef {
    const def = this.registry.lookupStorage('', 'namespaces');
    if (def === undefined) throw new Error('the registry serves no core namespaces resource: register the built-in Namespace kind first');
    return def;
  }
}

function specFinalizers(ns: KObject): string[] {
  const spec = ns.spec;
  if (!isPlainObject(spec) || !Array.isArray(spec.finalizers)) return [];
  return (spec.finalizers as unknown[]).filter((f): f is string => typeof f === 'string');
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
