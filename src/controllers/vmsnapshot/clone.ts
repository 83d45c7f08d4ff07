/**
 * One VirtualMachineClone, as KubeVirt's clone controller runs it: a clone
 * is a snapshot of the source VM (`tmp-snapshot-<clone uid>`, owned by the
 * clone; none when the source is a snapshot) restored into a new VM by a
 * restore (`tmp-restore-<clone uid>`) whose patches give the new VM its
 * own MACs, SMBIOS serial and firmware UUID and apply the label and
 * annotation filters. Phases SnapshotInProgress → RestoreInProgress →
 * CreatingTargetVM → Succeeded (or Failed); the temporary snapshot and
 * restore go once the new claims are bound. A Succeeded clone whose VM was
 * deleted is deleted too.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import type { EventRecorder } from '../events/index.js';
import type { ReconcileResult } from '../queue.js';
import { canonicalJson, errorMessage } from '../vmi/index.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import { clonePatches, defaultTargetName } from './clone-patches.js';
import { claimNameOf, cloneApiVersion, condition, contentNameOf, contentVm, deleteIfExists, ownerRef, snapshotApiVersion, snapshotReady, volumeBackups, vmVolumes, withCondition } from './model.js';
import { restoreFinished } from './restore.js';

interface Sync {
  snapshotName?: string;
  snapshotReady?: boolean;
  restoreName?: string;
  restoreReady?: boolean;
  targetName?: string;
  targetCreated?: boolean;
  pvcBound?: boolean;
  pending?: { event: string; reason: string };
  failing?: { event: string; reason: string };
}

export async function reconcileClone(ctx: SnapshotContext, recorder: EventRecorder, key: string): Promise<ReconcileResult> {
  const clone = ctx.informers.clones.get(key);
  if (clone === undefined) return {};
  const namespace = clone.metadata.namespace;
  const phase = stringAt(clone, 'status', 'phase') ?? '';
  if (phase === 'Succeeded') {
    const target = stringAt(clone, 'status', 'targetName');
    if (target !== undefined && SnapshotInformers.at(ctx.informers.vms, namespace, target) === undefined && (await ctx.client.tryGet(resources.virtualMachines, namespace, target)) === undefined) {
      if (clone.metadata.deletionTimestamp === undefined) await deleteIfExists(ctx.client, resources.virtualMachineClones, namespace, clone.metadata.name ?? '');
      return {};
    }
  }
  let sync: Sync;
  try {
    sync = await syncClone(ctx, recorder, clone);
  } catch (err) {
    // KubeVirt writes the status of the pass, then retries the error.
    await writeStatus(ctx, recorder, clone, {});
    throw err;
  }
  await writeStatus(ctx, recorder, clone, sync);
  return sync.pending !== undefined ? { requeueAfter: 5000 } : {};
}

/** A reason the clone waits for (it is retried); thrown from the steps. */
class Waiting extends Error {}

async function syncClone(ctx: SnapshotContext, recorder: EventRecorder, clone: KObject): Promise<Sync> {
  const namespace = clone.metadata.namespace;
  const sourceKind = stringAt(clone, 'spec', 'source', 'kind') ?? '';
  const sourceName = stringAt(clone, 'spec', 'source', 'name') ?? '';
  const sync: Sync = {};
  let sourceVm: KObject | undefined;
  let snapshotName = stringAt(clone, 'status', 'snapshotName');
  if (sourceKind === 'VirtualMachine') {
    sourceVm = SnapshotInformers.at(ctx.informers.vms, namespace, sourceName);
    if (sourceVm === undefined) return { pending: { event: 'SourceDoesNotExist', reason: `Source doesnt exist: VirtualMachine ${namespace ?? ''}/${sourceName}` } };
  } else if (sourceKind === 'VirtualMachineSnapshot') {
    if (SnapshotInformers.at(ctx.informers.snapshots, namespace, sourceName) === undefined) {
      return { pending: { event: 'SourceDoesNotExist', reason: `Source doesnt exist: VirtualMachineSnapshot ${namespace ?? ''}/${sourceName}` } };
    }
    snapshotName = sourceName;
  } else {
    throw new Error(`clone ${clone.metadata.name ?? ''} is defined with an unknown source type ${sourceKind}`);
  }
  const targetKind = stringAt(clone, 'spec', 'target', 'kind') ?? 'VirtualMachine';
  if (targetKind !== 'VirtualMachine') throw new Error(`target type is unknown: ${targetKind}`);

  const phase = stringAt(clone, 'status', 'phase') ?? '';
  if (!['', 'SnapshotInProgress', 'RestoreInProgress', 'CreatingTargetVM', 'Succeeded'].includes(phase)) return sync;
  const log = (event: string, message: string): void => { recorder.record(clone, 'Normal', event, message); };
  try {
    if (phase === '' || phase === 'SnapshotInProgress') {
      if (sourceVm !== undefined && snapshotName === undefined) return await createSnapshot(ctx, clone, sourceVm, log);
      const snapshot = SnapshotInformers.at(ctx.informers.snapshots, namespace, snapshotName ?? '');
      if (snapshot === undefined) throw new Waiting(`snapshot ${snapshotName ?? ''} is not created yet for clone ${clone.metadata.name ?? ''}`);
      if (!snapshotReady(snapshot)) return sync;
      const invalid = invalidContent(ctx, snapshot);
      if (invalid !== undefined) return { failing: { event: 'SnapshotContentInvalid', reason: invalid } };
      log('SnapshotReady', `snapshot ${snapshotName ?? ''} for clone ${clone.metadata.name ?? ''} is ready to use`);
      sync.snapshotReady = true;
    }
    if (['', 'SnapshotInProgress', 'RestoreInProgress'].includes(phase)) {
      const snapshot = SnapshotInformers.at(ctx.informers.snapshots, namespace, snapshotName ?? '');
      if (snapshot === undefined) return { ...sync, failing: { event: 'SnapshotDeleted', reason: `snapshot ${snapshotName ?? ''} does not exist anymore` } };
      const restoreName = stringAt(clone, 'status', 'restoreName');
      if (restoreName === undefined) return { ...sync, ...(await createRestore(ctx, recorder, clone, snapshot, log)) };
      const restore = SnapshotInformers.at(ctx.informers.restores, namespace, restoreName);
      if (restore === undefined) throw new Waiting(`restore ${restoreName} is not created yet for clone ${clone.metadata.name ?? ''}`);
      if (!restoreFinished(restore)) return sync;
      log('RestoreReady', `restore ${restoreName} for clone ${clone.metadata.name ?? ''} is ready to use`);
      sync.restoreReady = true;
      sync.targetName = stringAt(restore, 'spec', 'target', 'name') ?? targetNameOf(clone);
    }
    const targetName = sync.targetName ?? stringAt(clone, 'status', 'targetName') ?? targetNameOf(clone);
    if (['', 'SnapshotInProgress', 'RestoreInProgress', 'CreatingTargetVM'].includes(phase)) {
      if (SnapshotInformers.at(ctx.informers.vms, namespace, targetName) === undefined && (await ctx.client.tryGet(resources.virtualMachines, namespace, targetName)) === undefined) {
        throw new Waiting(`target VM ${targetName} is not created yet for clone ${clone.metadata.name ?? ''}`);
      }
      log('TargetVMCreated', `created target VM ${targetName} for clone ${clone.metadata.name ?? ''}`);
      sync.targetCreated = true;
    }
    const restoreName = stringAt(clone, 'status', 'restoreName');
    if (restoreName !== undefined) {
      const restore = SnapshotInformers.at(ctx.informers.restores, namespace, restoreName);
      if (restore === undefined) throw new Waiting(`restore ${restoreName} is not created yet for clone ${clone.metadata.name ?? ''}`);
      for (const entry of recordsAt(restore, 'status', 'restores')) {
        const pvc = SnapshotInformers.at(ctx.informers.pvcs, namespace, stringAt(entry, 'persistentVolumeClaim') ?? '');
        if (pvc === undefined) throw new Waiting(`PVC ${stringAt(entry, 'persistentVolumeClaim') ?? ''} is not created yet for clone ${clone.metadata.name ?? ''}`);
        if (stringAt(pvc, 'status', 'phase') !== 'Bound') return sync;
      }
      log('PVCBound', `all PVC for clone ${clone.metadata.name ?? ''} are bound`);
      sync.pvcBound = true;
      await deleteIfExists(ctx.client, resources.virtualMachineRestores, namespace, restoreName);
      if (sourceKind === 'VirtualMachine' && snapshotName !== undefined) await deleteIfExists(ctx.client, resources.virtualMachineSnapshots, namespace, snapshotName);
    }
  } catch (err) {
    if (err instanceof Waiting) return sync;
    throw err;
  }
  return sync;
}

/** The target's name: `spec.target.name`, else one derived from the source (KubeVirt's mutator draws a random one). */
function targetNameOf(clone: KObject): string {
  const name = stringAt(clone, 'spec', 'target', 'name');
  return name === undefined || name === '' ? defaultTargetName(clone) : name;
}

async function createSnapshot(ctx: SnapshotContext, clone: KObject, vm: KObject, log: (event: string, message: string) => void): Promise<Sync> {
  const problems: string[] = [];
  const statuses = recordsAt(vm, 'status', 'volumeSnapshotStatuses');
  for (const volume of vmVolumes(vm)) {
    if (claimNameOf(volume) === undefined) continue;
    const s = statuses.find((x) => x.name === volume.name);
    if (s === undefined) problems.push(`Virtual Machine volume ${String(volume.name)} snapshot support unknown`);
    else if (s.enabled !== true) problems.push(`Virtual Machine volume ${String(volume.name)} does not support snapshots`);
  }
  if (problems.length > 0) return { pending: { event: 'VMVolumeSnapshotsInvalid', reason: problems.join('\n') } };
  const name = `tmp-snapshot-${clone.metadata.uid ?? ''}`;
  try {
    await ctx.client.create(resources.virtualMachineSnapshots, {
      apiVersion: snapshotApiVersion,
      kind: 'VirtualMachineSnapshot',
      metadata: { name, namespace: vm.metadata.namespace ?? 'default', ownerReferences: [ownerRef(clone, cloneApiVersion, 'VirtualMachineClone')] },
      spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: vm.metadata.name } },
    });
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'AlreadyExists') return { snapshotName: name };
    throw new Error(`failed creating snapshot ${name} for clone ${clone.metadata.name ?? ''}: ${errorMessage(err)}`, { cause: err });
  }
  log('SnapshotCreated', `created snapshot ${name} for clone ${clone.metadata.name ?? ''}`);
  return { snapshotName: name };
}

/** Every PVC or DataVolume volume of the snapshot's VM must be backed up (KubeVirt's `verifySnapshotContent`). */
function invalidContent(ctx: SnapshotContext, snapshot: KObject): string | undefined {
  const content = SnapshotInformers.at(ctx.informers.contents, snapshot.metadata.namespace, contentNameOf(snapshot));
  if (content === undefined) return `snapshot content ${contentNameOf(snapshot)} in namespace ${snapshot.metadata.namespace ?? ''} does not exist`;
  const backedUp = new Set(volumeBackups(content).map((b) => b.volumeName));
  const missing = vmVolumes(contentVm(content)).filter((v) => (recordAt(v, 'persistentVolumeClaim') !== undefined || recordAt(v, 'dataVolume') !== undefined) && !backedUp.has(v.name));
  if (missing.length === 0) return undefined;
  return missing.map((v) => `volume ${String(v.name)} is not backed up in snapshot ${snapshot.metadata.name ?? ''}`).join('\n');
}

async function createRestore(ctx: SnapshotContext, recorder: EventRecorder, clone: KObject, snapshot: KObject, log: (event: string, message: string) => void): Promise<Sync> {
  const content = SnapshotInformers.at(ctx.informers.contents, snapshot.metadata.namespace, contentNameOf(snapshot));
  const vm = contentVm(content);
  if (vm === undefined) throw new Error(`cannot get VM manifest from snapshot: snapshot content ${contentNameOf(snapshot)} in namespace ${snapshot.metadata.namespace ?? ''} does not exist`);
  const name = `tmp-restore-${clone.metadata.uid ?? ''}`;
  const spec = recordAt(clone, 'spec') ?? {};
  const volumeNamePolicy = stringAt(spec, 'volumeNamePolicy');
  try {
    await ctx.client.create(resources.virtualMachineRestores, {
      apiVersion: snapshotApiVersion,
      kind: 'VirtualMachineRestore',
      metadata: { name, namespace: clone.metadata.namespace ?? 'default', ownerReferences: [ownerRef(clone, cloneApiVersion, 'VirtualMachineClone')] },
      spec: {
        target: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: targetNameOf(clone) },
        virtualMachineSnapshotName: snapshot.metadata.name,
        patches: clonePatches(vm, spec),
        ...(volumeNamePolicy === undefined ? {} : { volumeRestorePolicy: volumeNamePolicy }),
      },
    });
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'AlreadyExists') return { restoreName: name };
    const message = `failed creating restore ${name} for clone ${clone.metadata.name ?? ''}: ${errorMessage(err)}`;
    recorder.record(clone, 'Warning', 'RestoreCreationFailed', message);
    throw new Error(message, { cause: err });
  }
  log('RestoreCreated', `created restore ${name} for clone ${clone.metadata.name ?? ''}`);
  return { restoreName: name };
}

/** KubeVirt's `updateStatus`: the phase moves as far as this pass got. */
async function writeStatus(ctx: SnapshotContext, recorder: EventRecorder, clone: KObject, sync: Sync): Promise<void> {
  const now = ctx.now();
  const previous = recordAt(clone, 'status');
  const status: Record<string, unknown> = structuredClone(previous ?? {});
  const phase = (): string => stringAt(status, 'phase') ?? '';
  if (sync.pending !== undefined) {
    recorder.record(clone, 'Normal', sync.pending.event, sync.pending.reason);
    withCondition(status, condition('Progressing', 'False', 'Pending', now));
    withCondition(status, condition('Ready', 'False', sync.pending.reason, now));
  } else if (sync.failing !== undefined) {
    recorder.record(clone, 'Normal', sync.failing.event, sync.failing.reason);
    status.phase = 'Failed';
    withCondition(status, condition('Progressing', 'False', 'Failed', now));
    withCondition(status, condition('Ready', 'False', sync.failing.reason, now));
  } else {
    withCondition(status, condition('Progressing', 'True', 'Still processing', now));
    withCondition(status, condition('Ready', 'False', 'Still processing', now));
  }
  if (phase() === '' && sync.pending === undefined) status.phase = 'SnapshotInProgress';
  if (phase() === 'SnapshotInProgress') {
    if (sync.snapshotName !== undefined) status.snapshotName = sync.snapshotName;
    if (sync.snapshotReady === true) status.phase = 'RestoreInProgress';
  }
  if (phase() === 'RestoreInProgress') {
    if (sync.restoreName !== undefined) status.restoreName = sync.restoreName;
    if (sync.restoreReady === true) status.phase = 'CreatingTargetVM';
  }
  if (phase() === 'CreatingTargetVM') {
    if (sync.targetName !== undefined) status.targetName = sync.targetName;
    else status.targetName ??= targetNameOf(clone);
    if (sync.targetCreated === true) status.phase = 'Succeeded';
  }
  if (phase() === 'Succeeded') {
    withCondition(status, condition('Progressing', 'False', 'Ready', now));
    withCondition(status, condition('Ready', 'True', 'Ready', now));
  }
  if (sync.pvcBound === true) {
    delete status.snapshotName;
    delete status.restoreName;
  }
  if (status.creationTime === undefined && clone.metadata.creationTimestamp !== undefined) status.creationTime = clone.metadata.creationTimestamp;
  if (canonicalJson(previous ?? null) === canonicalJson(status)) return;
  try {
    await ctx.client.update(resources.virtualMachineClones, { ...clone, status }, 'status');
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
  }
}
