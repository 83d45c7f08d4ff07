/**
 * One VirtualMachineRestore, as KubeVirt's `updateVMRestore` handles it:
 * status initialised, owner and finalizer set, the target readied per
 * `targetReadinessPolicy` (a VM with a VMI is not ready), the snapshot
 * checked, `status.restores` planned, one claim per volume backup created
 * from its VolumeSnapshot, the target's spec replaced (or a new VM made),
 * obsolete DataVolumes deleted, and `complete`, `restoreTime` and the
 * conditions written, with KubeVirt's Events.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import type { EventRecorder } from '../events/index.js';
import type { ReconcileResult } from '../queue.js';
import { canonicalJson, errorMessage, timestamp } from '../vmi/index.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import {
  condition, contentReady, contentVm, defaultGracePeriodMs, deleteIfExists, finalizers, hasConditionType, isDeleting, ownerRef, setFinalizer, snapshotFailed,
  snapshotReady, volumeBackups, withCondition,
} from './model.js';
import { hasLastRestore, patchVm, restoreClaim, restoreClaimName, restoredVm } from './restore-spec.js';

const messages = {
  waitEventually: 'Waiting for target VM to be powered off. Please stop the restore target to proceed with restore',
  waitGracePeriod: 'Waiting for target VM to be powered off. Please stop the restore target to proceed with restore, or the operation will fail after 5m0s',
  stopTarget: 'Automatically stopping restore target for restore operation',
  vmiExists: 'Restore target VMI still exists, please stop the restore target to proceed with restore',
  notReadyFailure: 'Restore target VMI must be powered off before restore operation',
  gracePeriodExceeded: 'Restore target failed to be ready within 5m0s. Please power off the target VM before attempting restore',
  existingTarget: 'restore source and restore target are different but restore target already exists',
} as const;

/** A failure the restore reports in its conditions (and an Event) before it retries or stops. */
class RestoreError extends Error {}

export function restoreFinished(restore: KObject): boolean {
  return recordAt(restore, 'status')?.complete === true || hasConditionType(restore, 'Failure');
}

export async function reconcileRestore(ctx: SnapshotContext, recorder: EventRecorder, key: string): Promise<ReconcileResult> {
  let restore = ctx.informers.restores.get(key);
  if (restore === undefined) return {};
  const now = ctx.now();
  const original = restore;
  const status: Record<string, unknown> = structuredClone(recordAt(restore, 'status') ?? {});
  if (recordAt(restore, 'status') === undefined) {
    status.complete = false;
    withCondition(status, condition('Progressing', 'True', 'Initializing VirtualMachineRestore', now));
    withCondition(status, condition('Ready', 'False', 'Initializing VirtualMachineRestore', now));
    await writeStatus(ctx, restore, status);
    return {};
  }
  const namespace = restore.metadata.namespace;
  if (stringAt(restore, 'spec', 'target', 'kind') !== 'VirtualMachine') {
    return fail(ctx, recorder, restore, status, `unknown source ${JSON.stringify(recordAt(restore, 'spec', 'target') ?? {})}`, false);
  }
  const targetName = stringAt(restore, 'spec', 'target', 'name') ?? '';
  let target = SnapshotInformers.at(ctx.informers.vms, namespace, targetName);

  if (isDeleting(restore)) {
    if (!(restore.metadata.finalizers ?? []).includes(finalizers.restore)) return {};
    if (target !== undefined) await doneRestore(ctx, restore, target);
    withCondition(status, condition('Progressing', 'False', 'VM restore is deleting', now));
    withCondition(status, condition('Ready', 'False', 'VM restore is deleting', now));
    if (await writeStatus(ctx, restore, status)) return {};
    await setFinalizer(ctx.client, resources.virtualMachineRestores, restore, finalizers.restore, false);
    return {};
  }
  if (restoreFinished(restore)) return {};

  const wantsOwner = (restore.metadata.ownerReferences ?? []).length === 0 && target !== undefined;
  if (wantsOwner || !(restore.metadata.finalizers ?? []).includes(finalizers.restore)) {
    const metadata = { ...restore.metadata, finalizers: [...new Set([...(restore.metadata.finalizers ?? []), finalizers.restore])] };
    if (wantsOwner && target !== undefined) metadata.ownerReferences = [ownerRef(target, 'kubevirt.io/v1', 'VirtualMachine')];
    restore = await ctx.client.update(resources.virtualMachineRestores, { ...restore, metadata });
  }

  try {
    if (target !== undefined && SnapshotInformers.at(ctx.informers.vmis, namespace, targetName) !== undefined) {
      return await targetNotReady(ctx, recorder, restore, status, target);
    }
    const { snapshot, content } = readySnapshot(ctx, restore);
    if (target !== undefined && !hasLastRestore(restore, target) && stringAt(snapshot, 'status', 'sourceUID') !== undefined && stringAt(snapshot, 'status', 'sourceUID') !== target.metadata.uid) {
      throw new RestoreError(messages.existingTarget);
    }
    if (target !== undefined) target = await restoreInProgress(ctx, restore, target);

    // 1. Plan one claim per volume backup.
    const planned = volumeBackups(content).map((b) => {
      const volumeName = stringAt(b, 'volumeName') ?? '';
      const existing = recordsAt(restore, 'status', 'restores').find((r) => r.volumeName === volumeName);
      return existing ?? { volumeName, persistentVolumeClaim: restoreClaimName(restore ?? original, volumeName), volumeSnapshotName: stringAt(b, 'volumeSnapshotName') ?? '' };
    });
    if (canonicalJson(status.restores ?? []) !== canonicalJson(planned)) {
      status.restores = planned;
      return await progress(ctx, restore, status, 'Creating new PVCs', 'Waiting for new PVCs');
    }
    // 2. The claims, from the VolumeSnapshots.
    if (await reconcileClaims(ctx, restore, planned, content, target)) return await progress(ctx, restore, status, 'Creating new PVCs', 'Waiting for new PVCs');
    // 3. The VM.
    if (target === undefined || !hasLastRestore(restore, target)) {
      const { vm, deletedDataVolumes } = restoredVm({ ...restore, status }, contentVm(content) ?? {}, target);
      if (target === undefined) {
        let created: KObject;
        try {
          created = await ctx.client.create(resources.virtualMachines, patchVm(vm, stringsAt(restore, 'patches')));
        } catch (err) {
          // A pass before this one made it, and the cache has not seen it yet.
          if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
          created = await ctx.client.get(resources.virtualMachines, namespace, targetName);
          if (!hasLastRestore(restore, created)) throw new RestoreError(messages.existingTarget);
        }
        await ownRestoredClaims(ctx, { ...restore, status }, created);
      } else {
        await ctx.client.update(resources.virtualMachines, vm);
        if (deletedDataVolumes.length > 0) status.deletedDataVolumes = deletedDataVolumes;
      }
      return await progress(ctx, restore, status, 'Updating target spec', 'Waiting for target update');
    }
    // 4. Done: the claims of a new VM are owned by it (again here, level-based: the pass that made the VM
    // may have ended in a conflict with the binder or the snapshot controller writing the same claims),
    // obsolete DataVolumes go, the target is released.
    await ownRestoredClaims(ctx, { ...restore, status }, target);
    for (const dv of stringsAtStatus(status, 'deletedDataVolumes')) await deleteIfExists(ctx.client, resources.dataVolumes, namespace, dv);
    await doneRestore(ctx, restore, target);
  } catch (err) {
    if (err instanceof RestoreError) return await fail(ctx, recorder, restore, status, err.message, false);
    if (err instanceof ApiError && (err.reason === 'Invalid' || err.reason === 'BadRequest' || err.reason === 'Forbidden')) return await fail(ctx, recorder, restore, status, errorMessage(err), false);
    throw err;
  }
  recorder.record(restore, 'Normal', 'VirtualMachineRestoreComplete', `Successfully completed VirtualMachineRestore ${restore.metadata.name ?? ''}`);
  status.complete = true;
  status.restoreTime = timestamp(now);
  withCondition(status, condition('Progressing', 'False', 'Operation complete', now));
  withCondition(status, condition('Ready', 'True', 'Operation complete', now));
  await writeStatus(ctx, restore, status);
  return {};
}

function stringsAt(restore: KObject, key: string): string[] {
  const value = recordAt(restore, 'spec')?.[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function stringsAtStatus(status: Record<string, unknown>, key: string): string[] {
  const value = status[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The snapshot and its content, both ready; a RestoreError saying what is missing otherwise. */
function readySnapshot(ctx: SnapshotContext, restore: KObject): { snapshot: KObject; content: KObject } {
  const namespace = restore.metadata.namespace ?? 'default';
  const name = stringAt(restore, 'spec', 'virtualMachineSnapshotName') ?? '';
  const key = `${namespace}/${name}`;
  const snapshot = ctx.informers.snapshots.get(key);
  if (snapshot === undefined) throw new RestoreError(`VMSnapshot ${key} does not exist`);
  if (snapshotFailed(snapshot)) throw new RestoreError(`VMSnapshot ${key} failed and is invalid to use`);
  if (!snapshotReady(snapshot)) throw new RestoreError(`VMSnapshot ${key} not ready`);
  const contentName = stringAt(snapshot, 'status', 'virtualMachineSnapshotContentName');
  if (contentName === undefined) throw new RestoreError(`no snapshot content name in ${key}`);
  const content = SnapshotInformers.at(ctx.informers.contents, namespace, contentName);
  if (content === undefined) throw new RestoreError(`VMSnapshotContent ${namespace}/${contentName} does not exist`);
  if (!contentReady(content)) throw new RestoreError(`VMSnapshotContent ${namespace}/${contentName} not ready`);
  return { snapshot, content };
}

/** Creates the missing claims; true while any was created or an Immediate one is not bound yet. */
async function reconcileClaims(ctx: SnapshotContext, restore: KObject, planned: Record<string, unknown>[], content: KObject, target: KObject | undefined): Promise<boolean> {
  const namespace = restore.metadata.namespace;
  const sourceMeta = recordAt(contentVm(content), 'metadata');
  let busy = false;
  for (const entry of planned) {
    const claimName = stringAt(entry, 'persistentVolumeClaim') ?? '';
    const pvc = SnapshotInformers.at(ctx.informers.pvcs, namespace, claimName) ?? (await ctx.client.tryGet(resources.persistentVolumeClaims, namespace, claimName));
    if (pvc === undefined) {
      const backup = volumeBackups(content).find((b) => b.volumeName === entry.volumeName);
      const vsName = stringAt(entry, 'volumeSnapshotName') ?? '';
      if (backup === undefined) throw new RestoreError(`volume backup for volume ${String(entry.volumeName)} not found`);
      const vs = await ctx.client.tryGet(resources.volumeSnapshots, namespace, vsName);
      if (vs === undefined) throw new RestoreError(`missing volumeSnapshot ${vsName}`);
      const claim = restoreClaim(restore, claimName, backup, vs, { name: stringAt(sourceMeta, 'name') ?? '', namespace: stringAt(sourceMeta, 'namespace') ?? '' });
      if (stringAt(restore, 'spec', 'volumeOwnershipPolicy') !== 'None') {
        if (target !== undefined) claim.metadata.ownerReferences = [ownerRef(target, 'kubevirt.io/v1', 'VirtualMachine')];
        else if (ownedBySourceVm(backup, sourceMeta)) claim.metadata.annotations = { ...claim.metadata.annotations, 'restore.kubevirt.io/owned-by-vm': restore.metadata.name ?? '' };
      }
      try {
        await ctx.client.create(resources.persistentVolumeClaims, claim);
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      }
      busy = true;
      continue;
    }
    const phase = stringAt(pvc, 'status', 'phase') ?? 'Pending';
    if (phase === 'Pending') {
      const className = stringAt(pvc, 'spec', 'storageClassName');
      const mode = className === undefined ? undefined : stringAt(ctx.informers.storageClasses.get(className), 'volumeBindingMode');
      if (mode === undefined || mode === 'Immediate') busy = true;
    } else if (phase !== 'Bound') {
      throw new RestoreError(`PVC ${namespace ?? ''}/${claimName} in status "${phase}"`);
    }
  }
  return busy;
}

function ownedBySourceVm(backup: Record<string, unknown>, sourceMeta: Record<string, unknown> | undefined): boolean {
  return recordsAt(backup, 'persistentVolumeClaim', 'metadata', 'ownerReferences').some((r) => r.kind === 'VirtualMachine' && r.name === stringAt(sourceMeta, 'name') && r.uid === stringAt(sourceMeta, 'uid'));
}

/** Claims restored for a VM that did not exist yet are owned by it once it does (KubeVirt's `updateRestorePVCOwnership`). */
async function ownRestoredClaims(ctx: SnapshotContext, restore: KObject, vm: KObject): Promise<void> {
  for (const entry of recordsAt(restore, 'status', 'restores')) {
    const name = stringAt(entry, 'persistentVolumeClaim') ?? '';
    const pvc = await ctx.client.tryGet(resources.persistentVolumeClaims, restore.metadata.namespace, name);
    if (pvc === undefined || (pvc.metadata.ownerReferences ?? []).length > 0 || pvc.metadata.annotations?.['restore.kubevirt.io/owned-by-vm'] !== restore.metadata.name) continue;
    const annotationsLeft = { ...pvc.metadata.annotations };
    delete annotationsLeft['restore.kubevirt.io/owned-by-vm'];
    await ctx.client.update(resources.persistentVolumeClaims, { ...pvc, metadata: { ...pvc.metadata, annotations: annotationsLeft, ownerReferences: [ownerRef(vm, 'kubevirt.io/v1', 'VirtualMachine')] } });
  }
}

/** Marks the target VM `status.restoreInProgress`; another restore in progress is an error. */
async function restoreInProgress(ctx: SnapshotContext, restore: KObject, target: KObject): Promise<KObject> {
  if (hasLastRestore(restore, target)) return target;
  const current = stringAt(target, 'status', 'restoreInProgress');
  if (current !== undefined && current !== restore.metadata.name) throw new RestoreError(`vm restore ${current} in progress`);
  if (current !== undefined) return target;
  return ctx.client.update(resources.virtualMachines, { ...target, status: { ...(recordAt(target, 'status') ?? {}), restoreInProgress: restore.metadata.name } }, 'status');
}

async function doneRestore(ctx: SnapshotContext, restore: KObject, target: KObject): Promise<void> {
  const current = await ctx.client.tryGet(resources.virtualMachines, target.metadata.namespace, target.metadata.name ?? '');
  if (current === undefined || stringAt(current, 'status', 'restoreInProgress') !== restore.metadata.name) return;
  const status = { ...(recordAt(current, 'status') ?? {}) };
  delete status.restoreInProgress;
  delete status.memoryDumpRequest;
  await ctx.client.update(resources.virtualMachines, { ...current, status }, 'status');
}

/** KubeVirt's `handleVMRestoreTargetNotReady`: the target still has a VMI. */
async function targetNotReady(ctx: SnapshotContext, recorder: EventRecorder, restore: KObject, status: Record<string, unknown>, target: KObject): Promise<ReconcileResult> {
  const now = ctx.now();
  const policy = stringAt(restore, 'spec', 'targetReadinessPolicy') ?? 'WaitGracePeriod';
  let reason: string;
  switch (policy) {
    case 'FailImmediate':
      return fail(ctx, recorder, restore, status, messages.notReadyFailure, true);
    case 'StopTarget': {
      recorder.record(restore, 'Warning', 'RestoreTargetNotReady', messages.stopTarget);
      await stop(ctx, target);
      reason = messages.stopTarget;
      break;
    }
    case 'WaitEventually':
      recorder.record(restore, 'Warning', 'RestoreTargetNotReady', messages.vmiExists);
      reason = messages.waitEventually;
      break;
    default: {
      const left = Date.parse(restore.metadata.creationTimestamp ?? '') + defaultGracePeriodMs - now;
      if (left < 0) return fail(ctx, recorder, restore, status, messages.gracePeriodExceeded, true);
      recorder.record(restore, 'Warning', 'RestoreTargetNotReady', messages.vmiExists);
      reason = messages.waitGracePeriod;
      withCondition(status, condition('Progressing', 'False', reason, now));
      withCondition(status, condition('Ready', 'False', reason, now));
      await writeStatus(ctx, restore, status);
      return { requeueAfter: left + 1000 };
    }
  }
  withCondition(status, condition('Progressing', 'False', reason, now));
  withCondition(status, condition('Ready', 'False', reason, now));
  await writeStatus(ctx, restore, status);
  return {};
}

/** What `virtctl stop` does: the VM is halted, and its VMI goes. */
async function stop(ctx: SnapshotContext, target: KObject): Promise<void> {
  const spec = recordAt(target, 'spec') ?? {};
  const patch = spec.running !== undefined && spec.running !== null ? { spec: { running: false } } : { spec: { runStrategy: 'Halted' } };
  await ctx.client.patch(resources.virtualMachines, target.metadata.namespace, target.metadata.name ?? '', 'merge', patch);
}

async function progress(ctx: SnapshotContext, restore: KObject, status: Record<string, unknown>, progressing: string, ready: string): Promise<ReconcileResult> {
  const now = ctx.now();
  withCondition(status, condition('Progressing', 'True', progressing, now));
  withCondition(status, condition('Ready', 'False', ready, now));
  await writeStatus(ctx, restore, status);
  // Claims and the VM are watched; this pass is re-run by their changes, and by this status write.
  return {};
}

/** KubeVirt's `doUpdateErrorWithFailure`: the conditions say why, an Event too; `final` adds the Failure condition. */
async function fail(ctx: SnapshotContext, recorder: EventRecorder, restore: KObject, status: Record<string, unknown>, message: string, final: boolean): Promise<ReconcileResult> {
  const now = ctx.now();
  withCondition(status, condition('Progressing', 'False', message, now));
  withCondition(status, condition('Ready', 'False', message, now));
  if (final) withCondition(status, condition('Failure', 'True', message, now));
  recorder.record(restore, 'Warning', final ? 'Operation failed' : 'VirtualMachineRestoreError', final ? `VirtualMachineRestore failed ${message}` : `VirtualMachineRestore encountered error ${message}`);
  await writeStatus(ctx, restore, status);
  return final ? {} : { requeueAfter: 5000 };
}

/** Writes `status` when it changed; true when it did. */
async function writeStatus(ctx: SnapshotContext, restore: KObject, status: Record<string, unknown>): Promise<boolean> {
  if (canonicalJson(recordAt(restore, 'status') ?? null) === canonicalJson(status)) return false;
  try {
    await ctx.client.update(resources.virtualMachineRestores, { ...restore, status }, 'status');
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') return true;
    throw err;
  }
  return true;
}
