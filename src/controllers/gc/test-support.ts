/**
 * What the controller tests share: the real object store on the memory
 * store with a pass-through admission (plus the Namespace preparation the
 * server's admission does), a registry of a few test kinds, and waiting on
 * a condition with a deadline instead of sleeping.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { KObject } from '../../api/object.js';
import type { ResourceDef } from '../../api/resource.js';
import type { Admission } from '../../apiserver/admission.js';
import { ObjectStore } from '../../apiserver/object-store.js';
import { ResourceRegistry } from '../../apiserver/resources.js';
import { MemoryStore } from '../../store/memory.js';
import { prepareNamespace } from '../namespace/prepare.js';

function def(fields: Pick<ResourceDef, 'group' | 'version' | 'kind' | 'plural' | 'namespaced'> & { status?: boolean }): ResourceDef {
  return {
    group: fields.group,
    version: fields.version,
    kind: fields.kind,
    listKind: `${fields.kind}List`,
    plural: fields.plural,
    singular: fields.kind.toLowerCase(),
    namespaced: fields.namespaced,
    shortNames: [],
    categories: [],
    subresources: { status: fields.status ?? false },
    printerColumns: [],
    schema: undefined,
    builtin: fields.group === '',
  };
}

/** Core `v1 Namespace`, with its status subresource. */
export const namespaceDef = def({ group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, status: true });
/** Core `v1 ConfigMap`: a namespaced built-in. */
export const configMapDef = def({ group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true });
/** `example.com/v1 Widget`: a namespaced custom resource. */
export const widgetDef = def({ group: 'example.com', version: 'v1', kind: 'Widget', plural: 'widgets', namespaced: true });
/** `example.com/v1beta1 Widget`: a second served version of the same storage. */
export const widgetBetaDef = def({ group: 'example.com', version: 'v1beta1', kind: 'Widget', plural: 'widgets', namespaced: true });
/** `example.com/v1 Cluster`: a cluster-scoped custom resource. */
export const clusterDef = def({ group: 'example.com', version: 'v1', kind: 'Cluster', plural: 'clusters', namespaced: false });

/** Admission that accepts everything, preparing Namespaces as the server's does. */
export const passThroughAdmission: Admission = {
  admit(d, obj) {
    if (d.group === '' && d.kind === 'Namespace') prepareNamespace(obj, obj.metadata.deletionTimestamp !== undefined);
    return { warnings: [] };
  },
  onDeleting(d, obj) {
    if (d.group === '' && d.kind === 'Namespace') prepareNamespace(obj, true);
  },
};

export interface Harness {
  store: MemoryStore;
  objects: ObjectStore;
  registry: ResourceRegistry;
  close(): Promise<void>;
}

/** A fresh memory store, registry and object store, with namespace `ns` created. */
export async function openHarness(): Promise<Harness> {
  const store = new MemoryStore();
  const registry = new ResourceRegistry();
  registry.set('test', [namespaceDef, configMapDef, widgetDef, widgetBetaDef, clusterDef]);
  const objects = new ObjectStore(store, passThroughAdmission);
  await objects.create(namespaceDef, undefined, { metadata: { name: 'ns' } });
  return { store, objects, registry, close: () => store.close() };
}

/** Resolves once `check()` holds; rejects with `what` after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(5);
  }
}

/** An `ownerReferences` entry pointing at `owner`. */
export function ownerRef(owner: KObject, extra: { blockOwnerDeletion?: boolean; controller?: boolean } = {}): Record<string, unknown> {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, ...extra };
}
