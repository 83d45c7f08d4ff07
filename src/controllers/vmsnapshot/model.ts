/**
 * What KubeVirt's snapshot, restore and clone controllers agree on: the
 * finalizers, labels and annotations they put on objects, the names they
 * derive, their conditions (`Progressing`, `Ready`, `Failure`: a reason and
 * no message, replaced when the status or the reason changes), and what
 * they read off a snapshot, its content and a VM's volumes.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { parseGoDuration } from '../../api/duration.js';
import { arrayAt, booleanAt, recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import type { Client, ResourceRef } from '../../client/index.js';
import { conditionsOf, timestamp } from '../vmi/index.js';
import type { Condition } from '../vmi/index.js';

export const snapshotApiVersion = 'snapshot.kubevirt.io/v1beta1';
export const cloneApiVersion = 'clone.kubevirt.io/v1beta1';
export const volumeSnapshotGroup = 'snapshot.storage.k8s.io';

export const finalizers = {
  snapshot: 'snapshot.kubevirt.io/vmsnapshot-protection',
  content: 'snapshot.kubevirt.io/vmsnapshotcontent-protection',
  /** On the source VM while a snapshot of it is taken. */
  source: 'snapshot.kubevirt.io/snapshot-source-protection',
  restore: 'snapshot.kubevirt.io/vmrestore-protection',
} as const;

export const labels = {
  snapshotSourceName: 'snapshot.kubevirt.io/source-vm-name',
  snapshotSourceNamespace: 'snapshot.kubevirt.io/source-vm-namespace',
  restoreSourceName: 'restore.kubevirt.io/source-vm-name',
  restoreSourceNamespace: 'restore.kubevirt.io/source-vm-namespace',
} as const;

export const annotations = {
  restoreName: 'restore.kubevirt.io/name',
  lastRestore: 'restore.kubevirt.io/lastRestoreUID',
  restoreOwnedByVm: 'restore.kubevirt.io/owned-by-vm',
  defaultSnapshotClass: 'snapshot.storage.kubernetes.io/is-default-class',
} as const;

/** `snapshotv1.DefaultFailureDeadline` and `DefaultGracePeriod`: five minutes. */
export const defaultFailureDeadlineMs = 5 * 60_000;
export const defaultGracePeriodMs = 5 * 60_000;

/** A snapshot/restore/clone condition as KubeVirt writes it: a reason, no message. */
export function condition(type: 'Progressing' | 'Ready' | 'Failure', status: 'True' | 'False', reason: string, now: number): Condition {
  return { type, status, reason, lastProbeTime: null, lastTransitionTime: timestamp(now) };
}

/** KubeVirt's `updateCondition`: a condition is replaced when its status or reason changes, else kept as it was. */
export function withCondition(status: Record<string, unknown>, next: Condition): void {
  const list = conditionsOf({ apiVersion: '', kind: '', metadata: {}, status });
  const index = list.findIndex((c) => c.type === next.type);
  const old = index < 0 ? undefined : list[index];
  if (old !== undefined && old.status === next.status && old.reason === next.reason) return;
  status.conditions = index < 0 ? [...list, next] : list.map((c, i) => (i === index ? next : c));
}

export function hasConditionType(obj: KObject, type: string): boolean {
  return arrayAt(obj, 'status', 'conditions').some((c) => isPlainObject(c) && c.type === type);
}

// --- VirtualMachineSnapshot -------------------------------------------------

export function snapshotPhase(snapshot: KObject): string {
  return stringAt(snapshot, 'status', 'phase') ?? '';
}

export function snapshotReady(snapshot: KObject): boolean {
  return booleanAt(snapshot, 'status', 'readyToUse') === true;
}

export function snapshotFailed(snapshot: KObject): boolean {
  return snapshotPhase(snapshot) === 'Failed';
}

export function snapshotSucceeded(snapshot: KObject): boolean {
  return snapshotPhase(snapshot) === 'Succeeded';
}

export function snapshotProgressing(snapshot: KObject): boolean {
  return !snapshotFailed(snapshot) && !snapshotSucceeded(snapshot);
}

export function isDeleting(obj: KObject | undefined): boolean {
  return obj?.metadata.deletionTimestamp !== undefined;
}

/** `spec.failureDeadline` in ms (0: none), the default when unset or unreadable. */
export function failureDeadlineMs(snapshot: KObject): number {
  const text = stringAt(snapshot, 'spec', 'failureDeadline');
  return text === undefined ? defaultFailureDeadlineMs : (parseGoDuration(text) ?? defaultFailureDeadlineMs);
}

/** Milliseconds left until the deadline; 0 when there is none. */
export function timeUntilDeadline(snapshot: KObject, now: number): number {
  const deadline = failureDeadlineMs(snapshot);
  if (deadline === 0) return 0;
  return Date.parse(snapshot.metadata.creationTimestamp ?? '') + deadline - now;
}

export function deadlineExceeded(snapshot: KObject, now: number): boolean {
  if (snapshotFailed(snapshot)) return true;
  if (!snapshotProgressing(snapshot)) return false;
  return timeUntilDeadline(snapshot, now) < 0;
}

export function snapshotTerminating(snapshot: KObject, now: number): boolean {
  return isDeleting(snapshot) || deadlineExceeded(snapshot, now);
}

/** `deletionPolicy` Delete (the default): the content goes with the snapshot. */
export function deletesContent(snapshot: KObject): boolean {
  return (stringAt(snapshot, 'spec', 'deletionPolicy') ?? 'Delete') === 'Delete';
}

export function contentNameOf(snapshot: KObject): string {
  return stringAt(snapshot, 'status', 'virtualMachineSnapshotContentName') ?? `vmsnapshot-content-${snapshot.metadata.uid ?? ''}`;
}

export function volumeSnapshotNameOf(snapshot: KObject, volumeName: string): string {
  return `vmsnapshot-${snapshot.metadata.uid ?? ''}-volume-${volumeName}`;
}

export function contentReady(content: KObject | undefined): boolean {
  return booleanAt(content, 'status', 'readyToUse') === true;
}

// --- VMs and their volumes --------------------------------------------------

/** `spec.template.spec.volumes` of a VM (or of the VM a content holds). */
export function vmVolumes(vm: KObject | Record<string, unknown> | undefined): Record<string, unknown>[] {
  return recordsAt(vm, 'spec', 'template', 'spec', 'volumes');
}

/** The claim behind a volume: a PVC's `claimName`, or a DataVolume's name (its PVC has it). */
export function claimNameOf(volume: Record<string, unknown>): string | undefined {
  return stringAt(volume, 'persistentVolumeClaim', 'claimName') ?? stringAt(volume, 'dataVolume', 'name') ?? stringAt(volume, 'memoryDump', 'claimName');
}

/** KubeVirt's `isVolumeSnapshottable`: PVC, DataVolume and memory dump volumes. */
export function isSnapshottable(volume: Record<string, unknown>): boolean {
  return isPlainObject(volume.persistentVolumeClaim) || isPlainObject(volume.dataVolume) || isPlainObject(volume.memoryDump);
}

/** The VM the content holds (`spec.source.virtualMachine`). */
export function contentVm(content: KObject | undefined): Record<string, unknown> | undefined {
  return recordAt(content, 'spec', 'source', 'virtualMachine');
}

/** `spec.volumeBackups` of a content. */
export function volumeBackups(content: KObject | undefined): Record<string, unknown>[] {
  return recordsAt(content, 'spec', 'volumeBackups');
}

/** Metadata as KubeVirt's `getSimplifiedMetaObject` keeps it: all but the managed fields. */
export function simplifiedMeta(obj: KObject): Record<string, unknown> {
  const meta: Record<string, unknown> = { ...obj.metadata };
  delete meta.managedFields;
  return meta;
}

// --- API helpers -------------------------------------------------------------

/** Deletes an object; true when it was there. */
export async function deleteIfExists(client: Client, ref: ResourceRef, namespace: string | undefined, name: string): Promise<boolean> {
  try {
    await client.delete(ref, namespace, name);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') return false;
    throw err;
  }
}

/** `obj` with `finalizer` added (`add`) or removed, as a merge patch guarded by the resourceVersion; the patched object. */
export async function setFinalizer(client: Client, ref: ResourceRef, obj: KObject, finalizer: string, add: boolean): Promise<KObject> {
  const list = obj.metadata.finalizers ?? [];
  if (list.includes(finalizer) === add) return obj;
  const next = add ? [...list, finalizer] : list.filter((f) => f !== finalizer);
  return client.patch(ref, obj.metadata.namespace, obj.metadata.name ?? '', 'merge', { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers: next } });
}

/** An owner reference marking `owner` as the controller. */
export function ownerRef(owner: KObject, apiVersion: string, kind: string): { apiVersion: string; kind: string; name: string; uid: string; controller: true; blockOwnerDeletion: true } {
  return { apiVersion, kind, name: owner.metadata.name ?? '', uid: owner.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}
