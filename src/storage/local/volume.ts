/**
 * Where a local volume lives and how it is read back from its
 * PersistentVolume: one directory per claim under the agent's data
 * directory, `<dataDir>/volumes/pvc-<claim uid>/`, holding `disk.img` for
 * volumeMode Filesystem (KubeVirt's disk image on a filesystem volume) or
 * the raw file `block` for volumeMode Block, which stands in for a block
 * device. The PV's `spec.local.path` is the directory (Filesystem) or the
 * file itself (Block), as Kubernetes' local volumes name a mount point or
 * a device.
 */
import { join } from 'node:path';
import type { KObject } from '../../api/object.js';
import { arrayAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { parseQuantity } from '../../api/validation/quantity.js';
import { hostnameLabel, importPhaseAnnotation, localProvisioner, provisionedByAnnotation, selectedNodeAnnotation, volumeFormatAnnotation } from './names.js';
import type { VolumeFormat } from './parameters.js';

export type VolumeMode = 'Filesystem' | 'Block';

/** The directory of all local volumes of an agent. */
export function volumesRoot(dataDir: string): string {
  return join(dataDir, 'volumes');
}

/** The PersistentVolume name (and directory name) of the claim with `uid`, as external-provisioner names it. */
export function volumeNameFor(claimUid: string): string {
  return `pvc-${claimUid}`;
}

/** The directory of the claim with `uid`. */
export function volumeDir(dataDir: string, claimUid: string): string {
  return join(volumesRoot(dataDir), volumeNameFor(claimUid));
}

/** The file QEMU opens, in `dir`. */
export function volumeFile(dir: string, mode: VolumeMode): string {
  return join(dir, mode === 'Block' ? 'block' : 'disk.img');
}

/** `spec.volumeMode`, Filesystem when unset (Kubernetes' default). */
export function volumeModeOf(obj: KObject): VolumeMode {
  return stringAt(obj, 'spec', 'volumeMode') === 'Block' ? 'Block' : 'Filesystem';
}

/** `spec.resources.requests.storage` of a claim in bytes, rounded up; undefined when missing. */
export function requestedBytes(pvc: KObject): number | undefined {
  const bytes = parseQuantity(stringAt(pvc, 'spec', 'resources', 'requests', 'storage'));
  return bytes === undefined ? undefined : Math.ceil(bytes);
}

/** `spec.capacity.storage` of a volume in bytes; 0 when missing. */
export function volumeBytes(pv: KObject): number {
  return Math.ceil(parseQuantity(stringAt(pv, 'spec', 'capacity', 'storage')) ?? 0);
}

/** True for a PersistentVolume the local provisioner made. */
export function isLocalVolume(pv: KObject): boolean {
  return pv.metadata.annotations?.[provisionedByAnnotation] === localProvisioner;
}

/**
 * The node a claim's data is on: its bound volume's node, else (not bound
 * yet) the node it was sent to (`volume.kubernetes.io/selected-node`).
 */
export function claimNode(pvc: KObject, pv: KObject | undefined): string | undefined {
  return pv === undefined ? pvc.metadata.annotations?.[selectedNodeAnnotation] : volumeNode(pv);
}

/** Where the target claim of a copy is, for a refusal: `claim` is undefined when no claim has the target uid. */
export function exportTargetWhere(claim: KObject | undefined, node: string | undefined): string {
  if (claim === undefined) return 'no claim has that uid';
  return `the claim ${claim.metadata.namespace ?? ''}/${claim.metadata.name ?? ''} is ${node === undefined ? 'on no node yet' : `on node ${node}`}`;
}

/** The node a volume is pinned to by its required node affinity on `kubernetes.io/hostname`. */
export function volumeNode(pv: KObject): string | undefined {
  for (const term of recordsAt(pv, 'spec', 'nodeAffinity', 'required', 'nodeSelectorTerms')) {
    for (const expression of recordsAt(term, 'matchExpressions')) {
      if (expression.key !== hostnameLabel || expression.operator !== 'In') continue;
      const values = arrayAt(expression, 'values').filter((v): v is string => typeof v === 'string');
      if (values.length === 1) return values[0];
    }
  }
  return undefined;
}

/**
 * A claim whose data a CDI importer is still writing (its
 * `cdi.kubevirt.io/storage.pod.phase` says anything but `Succeeded`);
 * undefined when the claim is not being imported or is done.
 */
export function importInProgress(pvc: KObject): string | undefined {
  const phase = pvc.metadata.annotations?.[importPhaseAnnotation];
  return phase === undefined || phase === 'Succeeded' ? undefined : phase;
}

/** The file of a local volume, as the node sees it. */
export interface LocalVolume {
  /** The file QEMU (or an importer) opens. */
  path: string;
  format: VolumeFormat;
  volumeMode: VolumeMode;
  /** The node holding the file. */
  node: string;
  /** The volume's size in bytes. */
  bytes: number;
}

/**
 * The file behind `pvc` bound to `pv` (a volume of the local provisioner):
 * its path, format, mode, node and size. Throws an `Error` saying why when
 * `pv` is not a local volume or not the one bound to `pvc`. Importers of
 * DataVolumes write to `path` in `format` on `node`.
 */
export function localVolumeOf(pvc: KObject, pv: KObject): LocalVolume {
  const claim = `PersistentVolumeClaim ${pvc.metadata.namespace ?? ''}/${pvc.metadata.name ?? ''}`;
  const pvName = pv.metadata.name ?? '';
  if (stringAt(pvc, 'spec', 'volumeName') !== pvName || stringAt(pv, 'spec', 'claimRef', 'uid') !== pvc.metadata.uid) {
    throw new Error(`${claim} is not bound to PersistentVolume "${pvName}"`);
  }
  const local = stringAt(pv, 'spec', 'local', 'path');
  const node = volumeNode(pv);
  if (!isLocalVolume(pv) || local === undefined || node === undefined) {
    throw new Error(`PersistentVolume "${pvName}" of ${claim} was not made by the ${localProvisioner} provisioner, so it has no local file`);
  }
  const volumeMode = volumeModeOf(pv);
  const format: VolumeFormat = pv.metadata.annotations?.[volumeFormatAnnotation] === 'qcow2' ? 'qcow2' : 'raw';
  return { path: volumeMode === 'Block' ? local : volumeFile(local, 'Filesystem'), format, volumeMode, node, bytes: volumeBytes(pv) };
}

/** The claim a VMI volume uses (a DataVolume's claim has the DataVolume's name); undefined for other volumes. */
export function claimNameOf(volume: Record<string, unknown>): string | undefined {
  const name = stringAt(volume, 'persistentVolumeClaim', 'claimName') ?? stringAt(volume, 'dataVolume', 'name');
  return name === '' ? undefined : name;
}

/** The claims a VMI's volumes use, in spec order, once each. */
export function claimNamesOf(vmi: KObject): string[] {
  const names = recordsAt(vmi, 'spec', 'volumes').map(claimNameOf).filter((n): n is string => n !== undefined);
  return [...new Set(names)];
}
