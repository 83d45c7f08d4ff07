/**
 * How much local storage a node has left, from API objects alone, so the
 * scheduler, the Immediate binder and the node's own provisioner agree:
 * the node's allocatable `vireo.io/local-storage` less the sizes of the
 * local volumes pinned to it and of the claims already sent to it but not
 * yet provisioned. Volumes are thin files, but the node never promises
 * more than it has (no overcommit).
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { parseQuantity } from '../../api/validation/quantity.js';
import { localStorageResource, selectedNodeAnnotation } from './names.js';
import { isLocalVolume, requestedBytes, volumeBytes, volumeNameFor, volumeNode } from './volume.js';

/** What the accounting reads. */
export interface StorageView {
  pvs: readonly KObject[];
  pvcs: readonly KObject[];
  /** True when the class of this name provisions through the local provisioner. */
  isLocalClass: (className: string) => boolean;
}

/** The node's allocatable local storage in bytes; undefined when it has none (no local provisioner runs there). */
export function nodeLocalCapacity(node: KObject): number | undefined {
  const value = parseQuantity(stringAt(node, 'status', 'allocatable', localStorageResource));
  return value === undefined ? undefined : Math.floor(value);
}

/** A claim waiting for the local provisioner of `nodeName`: sent there, not yet bound, no volume made yet. */
export function isPendingLocalClaim(pvc: KObject, nodeName: string, view: Pick<StorageView, 'isLocalClass'>): boolean {
  if (pvc.metadata.annotations?.[selectedNodeAnnotation] !== nodeName) return false;
  if ((stringAt(pvc, 'spec', 'volumeName') ?? '') !== '') return false;
  return view.isLocalClass(stringAt(pvc, 'spec', 'storageClassName') ?? '');
}

/**
 * Bytes of `nodeName`'s local storage promised: its local volumes, and the
 * claims waiting for it (each counted once: a claim whose volume exists
 * counts as the volume). `exceptClaimUid` leaves one claim out.
 */
export function committedBytes(nodeName: string, view: StorageView, exceptClaimUid?: string): number {
  let total = 0;
  const made = new Set<string>();
  for (const pv of view.pvs) {
    if (!isLocalVolume(pv) || volumeNode(pv) !== nodeName) continue;
    made.add(pv.metadata.name ?? '');
    if (exceptClaimUid !== undefined && stringAt(pv, 'spec', 'claimRef', 'uid') === exceptClaimUid) continue;
    total += volumeBytes(pv);
  }
  for (const pvc of view.pvcs) {
    const uid = pvc.metadata.uid ?? '';
    if (uid === exceptClaimUid || made.has(volumeNameFor(uid)) || !isPendingLocalClaim(pvc, nodeName, view)) continue;
    total += requestedBytes(pvc) ?? 0;
  }
  return total;
}

/** Free local-storage bytes of `node`; undefined when the node has no local storage. */
export function freeBytes(node: KObject, view: StorageView, exceptClaimUid?: string): number | undefined {
  const capacity = nodeLocalCapacity(node);
  if (capacity === undefined) return undefined;
  return capacity - committedBytes(node.metadata.name ?? '', view, exceptClaimUid);
}

/** `bytes` as Kubernetes users read sizes: binary units, at most one decimal. */
export function formatBytes(bytes: number): string {
  const units = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(1);
  return `${shown}${units[unit] ?? ''}`;
}
