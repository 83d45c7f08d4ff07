/**
 * Kubernetes' storage admission plugins for PersistentVolumeClaims, which
 * need other objects (StorageClasses) and so run before the synchronous
 * chain: DefaultStorageClass (a claim created without
 * `storageClassName` gets the default class), StorageObjectInUseProtection
 * (every new claim carries the `kubernetes.io/pvc-protection` finalizer),
 * the `volumeMode` default (Filesystem), `dataSource` and `dataSourceRef`
 * kept alike, and PersistentVolumeClaimResize
 * (a claim may grow only if its class allows expansion).
 */
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
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

function sameRef(a: unknown, b: unknown): boolean {
  const keys = ['apiGroup', 'kind', 'name'] as const;
  return keys.every((k) => (stringAt(a, k) ?? '') === (stringAt(b, k) ?? ''));
}

/**
 * `dataSource` and `dataSourceRef` say the same, as the API server keeps
 * them: either one fills the other (dataSource only for the kinds it may
 * hold: claims and VolumeSnapshots), and two that differ are refused.
 */
function mirrorDataSource(pvc: KObject, spec: Record<string, unknown>): void {
  const source = isPlainObject(spec.dataSource) ? spec.dataSource : undefined;
  const ref = isPlainObject(spec.dataSourceRef) ? spec.dataSourceRef : undefined;
  if (source !== undefined && ref === undefined) spec.dataSourceRef = { ...source };
  else if (ref !== undefined && source === undefined) {
    const kind = stringAt(ref, 'kind');
    const group = stringAt(ref, 'apiGroup') ?? '';
    const coreKind = (kind === 'PersistentVolumeClaim' && group === '') || (kind === 'VolumeSnapshot' && group === 'snapshot.storage.k8s.io');
    if (coreKind && stringAt(ref, 'namespace') === undefined) spec.dataSource = { ...(group === '' ? {} : { apiGroup: group }), kind, name: stringAt(ref, 'name') };
  } else if (source !== undefined && ref !== undefined && stringAt(ref, 'namespace') === undefined && !sameRef(source, ref)) {
    throw new ApiError('Invalid', `PersistentVolumeClaim "${pvc.metadata.name ?? ''}" is invalid: spec.dataSource: Invalid value: must match dataSourceRef; set one of them, or both alike`, {
      details: { name: pvc.metadata.name ?? '', kind: 'PersistentVolumeClaim', causes: [{ reason: 'FieldValueInvalid', message: 'must match dataSourceRef', field: 'spec.dataSource' }] },
    });
  }
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
    mirrorDataSource(pvc, spec);
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
