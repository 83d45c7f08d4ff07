/**
 * A VM's `status.volumeSnapshotStatuses`, as KubeVirt's snapshot controller
 * keeps it for every VM: per volume, whether a snapshot can include it
 * (a PVC or DataVolume whose StorageClass has a VolumeSnapshotClass) and,
 * if not, why. The clone controller reads it before it snapshots a VM.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import type { ReconcileResult } from '../queue.js';
import { canonicalJson } from '../vmi/index.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import { claimNameOf, isSnapshottable, vmVolumes } from './model.js';

/** How often a VM with a volume that cannot be snapshotted looks again (VolumeSnapshotClasses are not watched). */
const recheckMs = 30_000;

export async function reconcileVolumeSnapshotStatuses(ctx: SnapshotContext, key: string): Promise<ReconcileResult> {
  const vm = ctx.informers.vms.get(key);
  if (vm === undefined || vm.metadata.deletionTimestamp !== undefined) return {};
  const statuses: Record<string, unknown>[] = [];
  for (const volume of vmVolumes(vm)) statuses.push(await statusOf(ctx, vm, volume));
  const previous = recordAt(vm, 'status') ?? {};
  const next = { ...previous };
  if (statuses.length > 0) next.volumeSnapshotStatuses = statuses;
  else delete next.volumeSnapshotStatuses;
  if (canonicalJson(previous.volumeSnapshotStatuses) !== canonicalJson(next.volumeSnapshotStatuses)) {
    try {
      await ctx.client.update(resources.virtualMachines, { ...vm, status: next }, 'status');
    } catch (err) {
      // A newer VM (or none) is on its way through the informer.
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) return {};
      throw err;
    }
  }
  return statuses.some((s) => s.enabled !== true && isSnapshottableReason(s)) ? { requeueAfter: recheckMs } : {};
}

function isSnapshottableReason(status: Record<string, unknown>): boolean {
  return typeof status.reason === 'string' && !status.reason.startsWith('Snapshot is not supported');
}

async function statusOf(ctx: SnapshotContext, vm: KObject, volume: Record<string, unknown>): Promise<Record<string, unknown>> {
  const name = stringAt(volume, 'name') ?? '';
  if (!isSnapshottable(volume)) return { name, enabled: false, reason: `Snapshot is not supported for this volumeSource type [${name}]` };
  const claim = claimNameOf(volume) ?? '';
  const pvc = SnapshotInformers.at(ctx.informers.pvcs, vm.metadata.namespace, claim);
  if (pvc === undefined) return { name, enabled: false, reason: 'PVC not found' };
  const storageClass = stringAt(pvc, 'spec', 'storageClassName') ?? '';
  let snapshotClass: string;
  try {
    snapshotClass = await ctx.classes.forStorageClass(storageClass);
  } catch (err) {
    return { name, enabled: false, reason: err instanceof Error ? err.message : String(err) };
  }
  if (snapshotClass === '') return { name, enabled: false, reason: `No VolumeSnapshotClass: Volume snapshots are not configured for this StorageClass [${storageClass}] [${name}]` };
  return { name, enabled: true };
}
