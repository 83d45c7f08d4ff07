/**
 * CustomResourceDefinitions come alive here: an established CRD is added to
 * the resource registry (so discovery, routing and OpenAPI serve it at
 * once), a deleted one first has its instances removed and then leaves the
 * registry. The server also installs KubeVirt's and CDI's own CRDs through
 * this controller at start, as virt-operator does. It follows the stored
 * CRDs too, so a CRD written through another server on the same etcd is
 * served here as well.
 */
import { isDeepStrictEqual } from 'node:util';
import type { KObject } from '../../api/object.js';
import type { ResourceDef } from '../../api/resource.js';
import { crdToResourceDef } from '../../api/kinds/index.js';
import type { ObjectStore } from '../../apiserver/object-store.js';
import type { ResourceRegistry } from '../../apiserver/resources.js';
import { decodeValue, resourcePrefix } from '../../apiserver/codec.js';
import type { Logger } from '../../log/logger.js';

const cleanupFinalizer = 'customresourcecleanup.apiextensions.k8s.io';

export class CrdController {
  private objects: ObjectStore | undefined;
  private readonly cleaning = new Set<string>();
  private readonly watchAbort = new AbortController();
  private stopped = false;

  constructor(
    private readonly registry: ResourceRegistry,
    private readonly logger: Logger,
  ) {}

  attach(objects: ObjectStore): void {
    this.objects = objects;
  }

  private get crdDef(): ResourceDef {
    const def = this.registry.lookup('apiextensions.k8s.io', 'v1', 'customresourcedefinitions');
    if (def === undefined) throw new Error('the built-in CustomResourceDefinition kind is missing');
    return def;
  }

  private get store(): ObjectStore {
    if (this.objects === undefined) throw new Error('CrdController used before attach()');
    return this.objects;
  }

  /** Registers every stored CRD, resumes cleanups interrupted by a restart, and follows CRD writes (of any server on the store). */
  async start(): Promise<void> {
    const def = this.crdDef;
    const list = await this.store.list(def, undefined);
    for (const crd of list.items) this.sync(crd, false);
    const afterRevision = Number(list.metadata.resourceVersion ?? '0');
    await this.store.store.watch({ prefix: resourcePrefix(def), afterRevision, signal: this.watchAbort.signal }, (event) => {
      // The store drops a watcher whose callback throws; a bad value must not cost us the watch.
      try {
        const name = event.key.slice(event.key.lastIndexOf('/') + 1);
        if (event.type === 'delete') this.sync({ apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name } }, true);
        else this.sync(decodeValue(event.value, event.revision, def), false);
      } catch (err) {
        this.logger.error('a stored CRD could not be read', { key: event.key, err });
      }
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watchAbort.abort();
    await Promise.resolve();
  }

  /** Creates or updates the given CRDs (spec only; status is the server's). */
  async install(crds: KObject[]): Promise<void> {
    const def = this.crdDef;
    for (const crd of crds) {
      const name = crd.metadata.name ?? '';
      const current = await this.store.tryGet(def, undefined, name);
      const result =
        current === undefined
          ? await this.store.create(def, undefined, structuredClone(crd))
          : isDeepStrictEqual(current.spec, crd.spec)
            ? undefined
            : await this.store.replace(def, current, { ...current, spec: structuredClone(crd.spec) });
      this.sync(result?.object ?? current ?? crd, false);
    }
  }

  /** Brings the registry in line with one CRD after a write. */
  sync(crd: KObject, deleted: boolean): void {
    const name = crd.metadata.name ?? '';
    const source = `crd:${name}`;
    if (deleted) {
      this.registry.removeSource(source);
      return;
    }
    let defs: ResourceDef[];
    try {
      defs = crdToResourceDef(crd);
    } catch (err) {
      this.logger.warn('CRD cannot be served', { name, err });
      this.registry.removeSource(source);
      return;
    }
    this.registry.set(source, defs);
    if (crd.metadata.deletionTimestamp !== undefined) this.cleanup(name, defs);
  }

  /** Deletes every instance of a CRD being deleted, then lets the CRD go. */
  private cleanup(name: string, defs: ResourceDef[]): void {
    if (this.cleaning.has(name)) return;
    this.cleaning.add(name);
    const def = defs[0];
    const run = async (): Promise<void> => {
      for (let attempt = 0; !this.stopped; attempt++) {
        if (def !== undefined) {
          const items = await this.store.list(def, undefined);
          for (const obj of items.items) {
            if (obj.metadata.deletionTimestamp !== undefined) continue;
            await this.store.delete(def, obj.metadata.namespace, obj.metadata.name ?? '').catch(() => undefined);
          }
          const left = await this.store.store.count(resourcePrefix(def));
          if (left > 0) {
            await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
            continue;
          }
        }
        const crd = await this.store.tryGet(this.crdDef, undefined, name);
        if (crd === undefined) break;
        const finalizers = (crd.metadata.finalizers ?? []).filter((f) => f !== cleanupFinalizer);
        const result = await this.store.replace(this.crdDef, crd, { ...crd, metadata: { ...crd.metadata, finalizers } });
        const gone = (result.object.metadata.finalizers ?? []).length === 0;
        if (gone) this.registry.removeSource(`crd:${name}`);
        break;
      }
    };
    run()
      .catch((err: unknown) => { this.logger.error('CRD cleanup failed', { name, err }); })
      .finally(() => this.cleaning.delete(name));
  }
}
