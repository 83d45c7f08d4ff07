/**
 * VolumeSnapshotClasses as the snapshot controller reads them, and the
 * class a fresh cluster gets: `local`, the default for local volumes,
 * deleting a snapshot's data with its VolumeSnapshot.
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { localProvisioner } from '../local/names.js';
import { defaultSnapshotClassAnnotation } from './names.js';

/** The name of the VolumeSnapshotClass seeded into a cluster without any. */
export const defaultSnapshotClassName = 'local';

/** The VolumeSnapshotClass created at the first start. */
export function defaultSnapshotClass(): KObject {
  return {
    apiVersion: 'snapshot.storage.k8s.io/v1',
    kind: 'VolumeSnapshotClass',
    metadata: { name: defaultSnapshotClassName, annotations: { [defaultSnapshotClassAnnotation]: 'true' } },
    driver: localProvisioner,
    deletionPolicy: 'Delete',
  };
}

/** `deletionPolicy` of a class; Delete unless it says Retain. */
export function snapshotDeletionPolicy(cls: KObject | undefined): 'Delete' | 'Retain' {
  return stringAt(cls, 'deletionPolicy') === 'Retain' ? 'Retain' : 'Delete';
}

/**
 * The default VolumeSnapshotClass of `driver` among `classes`, as the
 * snapshot controller picks it: exactly one class of the driver marked
 * default, or why there is none to use.
 */
export function pickSnapshotClass(classes: readonly KObject[], driver: string): { name: string } | { error: string } {
  const defaults = classes.filter((c) => stringAt(c, 'driver') === driver && c.metadata.annotations?.[defaultSnapshotClassAnnotation] === 'true');
  const only = defaults[0];
  if (only === undefined) return { error: `no default VolumeSnapshotClass for driver "${driver}": set spec.volumeSnapshotClassName, or mark a class of the driver with ${defaultSnapshotClassAnnotation}: "true"` };
  if (defaults.length > 1) return { error: `${defaults.length} VolumeSnapshotClasses of driver "${driver}" are marked default (${defaults.map((c) => c.metadata.name ?? '').sort().join(', ')}): keep one, or set spec.volumeSnapshotClassName` };
  return { name: only.metadata.name ?? '' };
}
