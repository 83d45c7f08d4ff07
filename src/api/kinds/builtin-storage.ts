/**
 * Storage kinds served by Vireo itself (PersistentVolume, PersistentVolumeClaim,
 * StorageClass), printed as Kubernetes prints them.
 */
import type { KObject } from '../object.js';
import type { BuiltinResourceDef } from './builtin-def.js';
import { ageCell, ageColumn, builtinResource, column, nameColumn } from './builtin-def.js';
import { formatAccessModes } from './format.js';
import { arrayAt, booleanAt, has, stringAt } from './read.js';

const defaultClassAnnotation = 'storageclass.kubernetes.io/is-default-class';
const betaStorageClassAnnotation = 'volume.beta.kubernetes.io/storage-class';

/** `v1 PersistentVolume`: NAME CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS VOLUMEATTRIBUTESCLASS REASON AGE. */
export function persistentVolumeResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'PersistentVolume',
    plural: 'persistentvolumes',
    namespaced: false,
    shortNames: ['pv'],
    status: true,
    model: 'IoK8sApiCoreV1PersistentVolume',
    columns: [
      column('Capacity', '.spec.capacity.storage', 'Capacity of the volume.'),
      column('Access Modes', '.spec.accessModes', 'Ways the volume can be mounted.'),
      column('Reclaim Policy', '.spec.persistentVolumeReclaimPolicy', 'What happens to the volume when its claim is released.'),
      column('Status', '.status.phase', 'Phase of the volume.'),
      column('Claim', '.spec.claimRef', 'The claim bound to the volume.'),
      column('StorageClass', '.spec.storageClassName', 'StorageClass of the pv'),
      column('VolumeAttributesClass', '.spec.volumeAttributesClassName', 'VolumeAttributesClass of the pv'),
      column('Reason', '.status.reason', 'Why the volume is in its phase.'),
      ageColumn,
      column('VolumeMode', '.spec.volumeMode', 'Filesystem or Block.', 1),
    ],
    printRow: (obj, now) => {
      const claimName = stringAt(obj, 'spec', 'claimRef', 'name');
      const claim = has(obj, 'spec', 'claimRef') ? `${stringAt(obj, 'spec', 'claimRef', 'namespace') ?? ''}/${claimName ?? ''}` : '';
      return [
        stringAt(obj, 'spec', 'capacity', 'storage') ?? '0',
        formatAccessModes(arrayAt(obj, 'spec', 'accessModes')),
        stringAt(obj, 'spec', 'persistentVolumeReclaimPolicy') ?? '',
        phaseOrTerminating(obj),
        claim,
        storageClassOf(obj),
        stringAt(obj, 'spec', 'volumeAttributesClassName') ?? '<unset>',
        stringAt(obj, 'status', 'reason') ?? '',
        ageCell(obj, now),
        stringAt(obj, 'spec', 'volumeMode') ?? '<unset>',
      ];
    },
  });
}

/** `v1 PersistentVolumeClaim`: NAME STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS VOLUMEATTRIBUTESCLASS AGE. */
export function persistentVolumeClaimResource(): BuiltinResourceDef {
  return builtinResource({
    group: '',
    version: 'v1',
    kind: 'PersistentVolumeClaim',
    plural: 'persistentvolumeclaims',
    namespaced: true,
    shortNames: ['pvc'],
    status: true,
    model: 'IoK8sApiCoreV1PersistentVolumeClaim',
    columns: [
      column('Status', '.status.phase', 'Phase of the claim.'),
      column('Volume', '.spec.volumeName', 'The volume bound to the claim.'),
      column('Capacity', '.status.capacity.storage', 'Capacity of the bound volume.'),
      column('Access Modes', '.status.accessModes', 'Ways the bound volume can be mounted.'),
      column('StorageClass', '.spec.storageClassName', 'StorageClass of the pvc'),
      column('VolumeAttributesClass', '.spec.volumeAttributesClassName', 'VolumeAttributesClass of the pvc'),
      ageColumn,
      column('VolumeMode', '.spec.volumeMode', 'Filesystem or Block.', 1),
    ],
    printRow: (obj, now) => {
      const volumeName = stringAt(obj, 'spec', 'volumeName') ?? '';
      // Capacity and access modes describe the bound volume, so they stay empty until the claim is bound.
      const bound = volumeName !== '';
      return [
        phaseOrTerminating(obj),
        volumeName,
        bound ? (stringAt(obj, 'status', 'capacity', 'storage') ?? '0') : '',
        bound ? formatAccessModes(arrayAt(obj, 'status', 'accessModes')) : '',
        storageClassOf(obj),
        stringAt(obj, 'spec', 'volumeAttributesClassName') ?? '<unset>',
        ageCell(obj, now),
        stringAt(obj, 'spec', 'volumeMode') ?? '<unset>',
      ];
    },
  });
}

function phaseOrTerminating(obj: KObject): string {
  if (obj.metadata.deletionTimestamp !== undefined) return 'Terminating';
  return stringAt(obj, 'status', 'phase') ?? '';
}

/** The beta annotation still wins over the field, as in Kubernetes' helpers. */
function storageClassOf(obj: KObject): string {
  const annotated = obj.metadata.annotations?.[betaStorageClassAnnotation];
  if (annotated !== undefined) return annotated;
  return stringAt(obj, 'spec', 'storageClassName') ?? '';
}

/**
 * `storage.k8s.io/v1 StorageClass`: NAME PROVISIONER RECLAIMPOLICY
 * VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE, with ` (default)` after the
 * default class's name.
 */
export function storageClassResource(): BuiltinResourceDef {
  return builtinResource({
    group: 'storage.k8s.io',
    version: 'v1',
    kind: 'StorageClass',
    plural: 'storageclasses',
    namespaced: false,
    shortNames: ['sc'],
    model: 'IoK8sApiStorageV1StorageClass',
    printsName: true,
    columns: [
      nameColumn(),
      column('Provisioner', '.provisioner', 'Provisioner that creates volumes of this class.'),
      column('ReclaimPolicy', '.reclaimPolicy', 'What happens to volumes of this class when released.'),
      column('VolumeBindingMode', '.volumeBindingMode', 'When volumes are bound and provisioned.'),
      column('AllowVolumeExpansion', '.allowVolumeExpansion', 'Whether claims of this class may grow.'),
      ageColumn,
    ],
    printRow: (obj, now) => [
      obj.metadata.annotations?.[defaultClassAnnotation] === 'true' ? `${obj.metadata.name ?? ''} (default)` : (obj.metadata.name ?? ''),
      stringAt(obj, 'provisioner') ?? '',
      stringAt(obj, 'reclaimPolicy') ?? 'Delete',
      stringAt(obj, 'volumeBindingMode') ?? 'Immediate',
      booleanAt(obj, 'allowVolumeExpansion') ?? false,
      ageCell(obj, now),
    ],
  });
}
