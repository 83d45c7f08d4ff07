/**
 * One VirtualMachineSnapshotContent, as KubeVirt's
 * `updateVMSnapshotContent` handles it: a CSI VolumeSnapshot per volume
 * backup (owned by the content, labelled with the source VM), their
 * readiness, times and errors mirrored into `status.volumeSnapshotStatus`,
 * `creationTime` once all exist and `readyToUse` once all are ready; the
 * content's finalizer is dropped when its snapshot goes or fails.
 *
 * KubeVirt freezes the guest's filesystems through the guest agent before
 * the first VolumeSnapshot and thaws them once all exist. Vireo's node
 * agent freezes and thaws around the cut of each volume instead
 * (`src/agent/volume-snapshot.ts`), while the guest agent answers
 * (indication GuestAgent); without one the snapshot is crash-consistent
 * (NoGuestAgent).
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import type { EventRecorder } from '../events/index.js';
import type { ReconcileResult } from '../queue.js';
import { canonicalJson, timestamp } from '../vmi/index.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import { contentReady, deletesContent, finalizers, isDeleting, ownerRef, setFinalizer, snapshotApiVersion, snapshotTerminating, volumeBackups } from './model.js';
import { sourceLabels } from './snapshot.js';

/**
 * How often a content looks again at VolumeSnapshots that are not ready
 * yet: a safety net only, since their changes wake the content through the
 * VolumeSnapshot informer.
 */
const pollMs = 5_000;

export async function reconcileContent(ctx: SnapshotContext, recorder: EventRecorder, key: string): Promise<ReconcileResult> {
  let content = ctx.informers.contents.get(key);
  if (content === undefined) return {};
  const now = ctx.now();
  const namespace = content.metadata.namespace;
  const snapshotName = stringAt(content, 'spec', 'virtualMachineSnapshotName');
  const snapshot = snapshotName === undefined ? undefined : SnapshotInformers.at(ctx.informers.snapshots, namespace, snapshotName);
  if (snapshot === undefined || snapshotTerminating(snapshot, now)) {
    content = await setFinalizer(ctx.client, resources.virtualMachineSnapshotContents, content, finalizers.content, false);
    if (snapshot !== undefined && (deletesContent(snapshot) || !contentReady(content))) return {};
  }
  if (isDeleting(content)) return { requeueAfter: 5000 };

  const previous = recordAt(content, 'status');
  const status: Record<string, unknown> = structuredClone(previous ?? {});
  const created = status.creationTime !== undefined;
  const statuses: Record<string, unknown>[] = [];
  const deleted: string[] = [];
  const skipped: string[] = [];
  for (const backup of volumeBackups(content)) {
    const name = stringAt(backup, 'volumeSnapshotName');
    if (name === undefined) continue;
    let vs = await ctx.client.tryGet(resources.volumeSnapshots, namespace, name);
    if (vs === undefined) {
      if (created) {
        recorder.record(content, 'Warning', 'VolumeSnapshotMissing', `VolumeSnapshot ${name} no longer exists`);
        deleted.push(name);
        continue;
      }
      if (snapshot === undefined || isDeleting(snapshot)) {
        skipped.push(name);
        continue;
      }
      vs = await createVolumeSnapshot(ctx, recorder, content, backup, name);
    }
    const entry: Record<string, unknown> = { volumeSnapshotName: name };
    const vsStatus = recordAt(vs, 'status');
    if (typeof vsStatus?.readyToUse === 'boolean') entry.readyToUse = vsStatus.readyToUse;
    if (typeof vsStatus?.creationTime === 'string') entry.creationTime = vsStatus.creationTime;
    const error = recordAt(vsStatus, 'error');
    if (error !== undefined) entry.error = { ...(typeof error.message === 'string' ? { message: error.message } : {}), ...(typeof error.time === 'string' ? { time: error.time } : {}) };
    statuses.push(entry);
  }

  let allCreated = true;
  let ready = true;
  let message = '';
  if (deleted.length > 0) {
    allCreated = ready = false;
    message = `VolumeSnapshots (${deleted.join(',')}) missing`;
  } else if (skipped.length > 0) {
    allCreated = ready = false;
    message = `VolumeSnapshots (${skipped.join(',')}) skipped because vm snapshot is deleted`;
  } else {
    for (const entry of statuses) {
      if (entry.creationTime === undefined) allCreated = false;
      if (entry.readyToUse !== true) ready = false;
      const error = recordAt(entry, 'error');
      if (typeof error?.message === 'string') {
        message = `VolumeSnapshot ${String(entry.volumeSnapshotName)} error: ${error.message}`;
        break;
      }
    }
  }
  if (allCreated && status.creationTime === undefined) status.creationTime = timestamp(now);
  if (message !== '' && !ready) {
    if (stringAt(status, 'error', 'message') !== message) status.error = { time: timestamp(now), message };
  } else if (message === '') {
    delete status.error;
  }
  status.readyToUse = ready;
  if (statuses.length > 0) status.volumeSnapshotStatus = statuses;
  else delete status.volumeSnapshotStatus;
  if (canonicalJson(previous ?? null) !== canonicalJson(status)) {
    try {
      await ctx.client.update(resources.virtualMachineSnapshotContents, { ...content, status }, 'status');
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return {};
      throw err;
    }
  }
  return ready || deleted.length > 0 || skipped.length > 0 ? {} : { requeueAfter: pollMs };
}

async function createVolumeSnapshot(ctx: SnapshotContext, recorder: EventRecorder, content: KObject, backup: Record<string, unknown>, name: string): Promise<KObject> {
  const claim = stringAt(backup, 'persistentVolumeClaim', 'metadata', 'name') ?? '';
  const storageClass = stringAt(backup, 'persistentVolumeClaim', 'spec', 'storageClassName');
  if (storageClass === undefined) throw new Error(`${content.metadata.namespace ?? ''}/${claim} VolumeSnapshot requested but no storage class`);
  const snapshotClass = await ctx.classes.forStorageClass(storageClass);
  if (snapshotClass === '') throw new Error(`no VolumeSnapshotClass for StorageClass ${storageClass}: create one whose driver is the class's provisioner`);
  let vs: KObject;
  try {
    vs = await ctx.client.create(resources.volumeSnapshots, {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshot',
      metadata: { name, namespace: content.metadata.namespace ?? 'default', labels: sourceLabels(content), ownerReferences: [ownerRef(content, snapshotApiVersion, 'VirtualMachineSnapshotContent')] },
      spec: { source: { persistentVolumeClaimName: claim }, volumeSnapshotClassName: snapshotClass },
    });
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    return ctx.client.get(resources.volumeSnapshots, content.metadata.namespace, name);
  }
  recorder.record(content, 'Normal', 'SuccessfulVolumeSnapshotCreate', `Successfully created VolumeSnapshot ${name}`);
  return vs;
}
