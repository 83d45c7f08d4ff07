/**
 * StorageClasses as the local storage reads them, and the default class a
 * fresh cluster gets: `local`, WaitForFirstConsumer (a volume is made on
 * the node its first VMI is scheduled to, as TopoLVM does), expandable,
 * deleted with its claim, qcow2 files (so snapshots and clones are instant
 * backing-chain operations; a class without `format`, or with
 * `format: raw`, makes raw files).
 */
import type { KObject } from '../../api/object.js';
import { stringAt, stringMapAt } from '../../api/kinds/read.js';
import { defaultClassAnnotation, localProvisioner } from './names.js';

/** The name of the class seeded into a cluster without any. */
export const defaultClassName = 'local';

/** The StorageClass created at the first start. */
export function defaultStorageClass(): KObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: defaultClassName, annotations: { [defaultClassAnnotation]: 'true' } },
    provisioner: localProvisioner,
    volumeBindingMode: 'WaitForFirstConsumer',
    allowVolumeExpansion: true,
    reclaimPolicy: 'Delete',
    parameters: { format: 'qcow2' },
  };
}

/** True for a class marked default. */
export function isDefaultClass(sc: KObject): boolean {
  return sc.metadata.annotations?.[defaultClassAnnotation] === 'true';
}

/**
 * The default class among `classes`, as Kubernetes' DefaultStorageClass
 * admission picks it: of several, the newest (then the first by name).
 */
export function pickDefaultClass(classes: readonly KObject[]): KObject | undefined {
  const defaults = classes.filter(isDefaultClass);
  defaults.sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  return defaults[0];
}

/** True when the class's volumes come from the local provisioner. */
export function isLocalClass(sc: KObject | undefined): boolean {
  return stringAt(sc, 'provisioner') === localProvisioner;
}

/** `volumeBindingMode`, Immediate when unset (Kubernetes' default). */
export function bindingModeOf(sc: KObject | undefined): 'Immediate' | 'WaitForFirstConsumer' {
  return stringAt(sc, 'volumeBindingMode') === 'WaitForFirstConsumer' ? 'WaitForFirstConsumer' : 'Immediate';
}

/** `reclaimPolicy`, Delete when unset. */
export function reclaimPolicyOf(sc: KObject | undefined): 'Delete' | 'Retain' {
  return stringAt(sc, 'reclaimPolicy') === 'Retain' ? 'Retain' : 'Delete';
}

/** The class's `parameters`. */
export function classParameters(sc: KObject | undefined): Record<string, string> {
  return stringMapAt(sc, 'parameters');
}
