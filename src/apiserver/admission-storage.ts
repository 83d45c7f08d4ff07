/**
 * Kubernetes' storage admission plugins for PersistentVolumeClaims, which
 * need other objects (StorageClasses) and so run before the synchronous
 * chain: DefaultStorageClass (a claim created without
 * `storageClassName` gets the default class), StorageObjectInUseProtection
 * (every new claim carries the `kubernetes.io/pvc-protection` finalizer),
 * the `volumeMode` default (Filesystem), and PersistentVolumeClaimResize
 * (a claim may grow only if its class allows expansion).
 */
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { booleanAt, stringAt } from '../api/kinds/read.js';
import { parseQuantity } from '../api/validation/index.js';
import { pickDefaultClass, pvcProtectionFinalizer } from '../storage/local/index.js';
import type { Store } from '../store/types.js';

const classPrefix = '/registry/storage.k8s.io/storageclasses/';

/** True for the writes this module admits. */
export function isClaim(def: ResourceDef): boolean {
  return def.group === '' && def.kind === 'PersistentVolumeClaim';
}

async function readClass(store: Store, name: string): Promise<KObject | undefined> {
  const kv = await store.get(classPrefix + name);
  return kv === undefined ? undefined : (JSON.parse(kv.value) as KObject);
}

async function defaultClassName(store: Store): Promise<string | undefined> {
  const list = await store.list(classPrefix);
  return pickDefaultClass(list.items.map((kv) => JSON.parse(kv.value) as KObject))?.metadata.name;
}

/** Mutates a claim being created or updated; throws a Forbidden ApiError for a resize its class does not allow. */
export async function admitClaim(pvc: KObject, old: KObject | undefined, store: Store): Promise<void> {
  if (old === undefined) {
    const spec = (pvc.spec ??= {}) as Record<string, unknown>;
    // Unset means "the default class"; "" means "no class" and stays.
    if (spec.storageClassName === undefined || spec.storageClassName === null) {
      const name = await defaultClassName(store);
      if (name !== undefined) spec.storageClassName = name;
    }
    spec.volumeMode ??= 'Filesystem';
    const finalizers = pvc.metadata.finalizers ?? [];
    if (!finalizers.includes(pvcProtectionFinalizer)) pvc.metadata.finalizers = [...finalizers, pvcProtectionFinalizer];
    return;
  }
  const before = parseQuantity(stringAt(old, 'spec', 'resources', 'requests', 'storage'));
  const after = parseQuantity(stringAt(pvc, 'spec', 'resources', 'requests', 'storage'));
  if (before === undefined || after === undefined || after <= before) return;
  const className = stringAt(old, 'spec', 'storageClassName') ?? '';
  const sc = className === '' ? undefined : await readClass(store, className);
  if (booleanAt(sc, 'allowVolumeExpansion') !== true) {
    throw new ApiError(
      'Forbidden',
      `persistentvolumeclaims "${pvc.metadata.name ?? ''}" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize` +
        (className === '' ? ' (the claim has no StorageClass)' : ` (StorageClass "${className}" does not set allowVolumeExpansion: true)`),
      { details: { name: pvc.metadata.name ?? '', kind: 'persistentvolumeclaims' } },
    );
  }
}
