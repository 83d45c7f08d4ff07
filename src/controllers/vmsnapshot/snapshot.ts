/**
 * One VirtualMachineSnapshot, as KubeVirt's `updateVMSnapshot` handles it:
 * its finalizer, the lock on the source VM, the content it makes (the VM
 * and one volume backup per snapshottable claim), deletion of the content
 * per `deletionPolicy`, and its status: phase InProgress → Succeeded (all
 * VolumeSnapshots created) or Failed (deadline), `readyToUse` from the
 * content, conditions, `indications`/`sourceIndications`, `snapshotVolumes`.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { resources } from '../../client/index.js';
import type { EventRecorder } from '../events/index.js';
import type { ReconcileResult } from '../queue.js';
import { canonicalJson, logFieldsOf } from '../vmi/index.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import {
  claimNameOf, condition, contentNameOf, contentReady, contentVm, deadlineExceeded, deleteIfExists, deletesContent, finalizers, isDeleting, isSnapshottable, labels,
  setFinalizer, snapshotApiVersion, snapshotProgressing, snapshotReady, snapshotSucceeded, snapshotTerminating, timeUntilDeadline, volumeBackups,
  volumeSnapshotNameOf, vmVolumes, withCondition,
} from './model.js';
import { VmSource } from './source.js';

const retryMs = 5000;

const indicationMessages: Record<string, string> = {
  Online: 'Snapshot taken while the VM was running. Consistency depends on guest-agent quiescing.',
  GuestAgent: 'Guest agent was active and attempted to quiesce the filesystem for application consistency.',
  NoGuestAgent: 'Guest agent was not available. Snapshot is crash-consistent and may not be application-consistent.',
  Paused: 'Snapshot taken while the VM was paused. Snapshot is crash-consistent and may not be application-consistent.',
  PartialSnapshot: 'Not all snapshotable volumes were included in the snapshot. Check status.snapshotVolumes for excluded volumes and VM VolumeSnapshotStatus for details.',
};

export async function reconcileSnapshot(ctx: SnapshotContext, recorder: EventRecorder, key: string): Promise<ReconcileResult> {
  let snapshot = ctx.informers.snapshots.get(key);
  if (snapshot === undefined) return {};
  const now = ctx.now();
  const namespace = snapshot.metadata.namespace;
  const vm = stringAt(snapshot, 'spec', 'source', 'kind') === 'VirtualMachine' ? SnapshotInformers.at(ctx.informers.vms, namespace, stringAt(snapshot, 'spec', 'source', 'name') ?? '') : undefined;
  const source = vm === undefined ? undefined : new VmSource(vm, snapshot, ctx);
  const content = SnapshotInformers.at(ctx.informers.contents, namespace, contentNameOf(snapshot));
  const terminating = snapshotTerminating(snapshot, now);
  if (!terminating) snapshot = await setFinalizer(ctx.client, resources.virtualMachineSnapshots, snapshot, finalizers.snapshot, true);

  let retry = 0;
  let canRemoveFinalizer = true;
  if (recordAt(snapshot, 'status') !== undefined && source !== undefined) {
    if (snapshotProgressing(snapshot) && !terminating) {
      if (!source.locked) {
        await source.lock();
        retry = retryMs;
      } else if (content === undefined) {
        await createContent(ctx, recorder, snapshot, source);
      }
      canRemoveFinalizer = false;
    } else {
      const contentGone = content === undefined || !(deletesContent(snapshot) || !contentReady(content));
      if (!snapshotProgressing(snapshot) || (terminating && contentGone)) await source.unlock();
      canRemoveFinalizer = !source.locked;
    }
  }
  if (terminating && content !== undefined && (deletesContent(snapshot) || !contentReady(content))) {
    await deleteIfExists(ctx.client, resources.virtualMachineSnapshotContents, namespace, content.metadata.name ?? '');
  }
  snapshot = await writeStatus(ctx, snapshot, source, content);
  if (isDeleting(snapshot) && canRemoveFinalizer) await setFinalizer(ctx.client, resources.virtualMachineSnapshots, snapshot, finalizers.snapshot, false);
  if (retry > 0) return { requeueAfter: retry };
  const left = snapshotProgressing(snapshot) ? timeUntilDeadline(snapshot, now) : 0;
  return left > 0 ? { requeueAfter: left } : {};
}

/** The content: the VM and one backup per bound claim whose StorageClass has a VolumeSnapshotClass. */
async function createContent(ctx: SnapshotContext, recorder: EventRecorder, snapshot: KObject, source: VmSource): Promise<void> {
  const namespace = snapshot.metadata.namespace;
  const backups: Record<string, unknown>[] = [];
  for (const [volumeName, claimName] of source.claims()) {
    const pvc = SnapshotInformers.at(ctx.informers.pvcs, namespace, claimName);
    if (pvc === undefined || stringAt(pvc, 'status', 'phase') !== 'Bound') continue;
    const storageClass = stringAt(pvc, 'spec', 'storageClassName');
    if (storageClass === undefined || (await ctx.classes.forStorageClass(storageClass)) === '') {
      ctx.logger.warn('no VolumeSnapshotClass for the claim: the volume is left out of the snapshot', { ...logFieldsOf(snapshot), volume: volumeName, claim: claimName, storageClass });
      continue;
    }
    const meta: Record<string, unknown> = { ...pvc.metadata };
    delete meta.managedFields;
    backups.push({ volumeName, persistentVolumeClaim: { metadata: meta, spec: recordAt(pvc, 'spec') ?? {} }, volumeSnapshotName: volumeSnapshotNameOf(snapshot, volumeName) });
  }
  const name = contentNameOf(snapshot);
  try {
    await ctx.client.create(resources.virtualMachineSnapshotContents, {
      apiVersion: snapshotApiVersion,
      kind: 'VirtualMachineSnapshotContent',
      metadata: { name, namespace: namespace ?? 'default', finalizers: [finalizers.content] },
      spec: { virtualMachineSnapshotName: snapshot.metadata.name, source: { virtualMachine: source.contentSource() }, volumeBackups: backups },
    });
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
  }
  recorder.record(snapshot, 'Normal', 'SuccessfulVirtualMachineSnapshotContentCreate', `Successfully created VirtualMachineSnapshotContent ${name}`);
}

async function writeStatus(ctx: SnapshotContext, snapshot: KObject, source: VmSource | undefined, content: KObject | undefined): Promise<KObject> {
  const now = ctx.now();
  const previous = recordAt(snapshot, 'status');
  const status: Record<string, unknown> = structuredClone(previous ?? { readyToUse: false });
  if (source !== undefined) status.sourceUID = source.uid;
  const contentStatus = recordAt(content, 'status');
  if (content !== undefined && contentStatus !== undefined) {
    status.virtualMachineSnapshotContentName = content.metadata.name;
    setOrDelete(status, 'creationTime', contentStatus.creationTime);
    setOrDelete(status, 'readyToUse', contentStatus.readyToUse);
    setOrDelete(status, 'error', contentStatus.error);
  }
  const view: KObject = { ...snapshot, status };
  if (deadlineExceeded(view, now)) {
    status.phase = 'Failed';
    withCondition(status, condition('Failure', 'True', 'snapshot deadline exceeded', now));
    withCondition(status, condition('Progressing', 'False', 'Operation failed', now));
  } else if (snapshotSucceeded(view) || status.creationTime !== undefined) {
    status.phase = 'Succeeded';
    withCondition(status, condition('Progressing', 'False', 'Operation complete', now));
    snapshotVolumesOf(status, content);
  } else {
    status.phase = 'InProgress';
    if (source !== undefined) {
      withCondition(status, condition('Progressing', source.locked ? 'True' : 'False', source.lockMessage, now));
      indicate(status, source);
    } else {
      withCondition(status, condition('Progressing', 'False', 'Source does not exist', now));
    }
    if (isDeleting(snapshot)) {
      status.phase = 'Deleting';
      withCondition(status, condition('Progressing', 'False', 'VM snapshot is deleting', now));
    }
  }
  withCondition(status, snapshotReady(view) ? condition('Ready', 'True', 'Ready', now) : condition('Ready', 'False', 'Not ready', now));
  if (status.error !== undefined) withCondition(status, condition('Progressing', 'False', 'In error state', now));
  if (canonicalJson(previous ?? null) === canonicalJson(status)) return snapshot;
  try {
    return await ctx.client.update(resources.virtualMachineSnapshots, { ...snapshot, status }, 'status');
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'NotFound') return snapshot;
    throw err;
  }
}

/** KubeVirt's `updateSnapshotSourceIndications`: Online, then Paused, GuestAgent or NoGuestAgent. */
function indicate(status: Record<string, unknown>, source: VmSource): void {
  if (!source.online) {
    delete status.indications;
    delete status.sourceIndications;
    return;
  }
  const set = new Set(Array.isArray(status.indications) ? status.indications.filter((i): i is string => typeof i === 'string') : []);
  set.add('Online');
  set.add(source.paused ? 'Paused' : source.guestAgent ? 'GuestAgent' : 'NoGuestAgent');
  const list = [...set].sort();
  status.indications = list;
  status.sourceIndications = list.map((indication) => ({ indication, message: indicationMessages[indication] ?? 'Unknown indication' }));
}

/** `status.snapshotVolumes` from the content; a snapshottable volume left out adds the PartialSnapshot indication. */
function snapshotVolumesOf(status: Record<string, unknown>, content: KObject | undefined): void {
  const vm = contentVm(content);
  if (vm === undefined) return;
  const backedUp = new Set(volumeBackups(content).map((b) => stringAt(b, 'volumeName')));
  const included: string[] = [];
  const excluded: string[] = [];
  let partial = false;
  for (const volume of vmVolumes(vm)) {
    const name = stringAt(volume, 'name') ?? '';
    if (backedUp.has(name)) {
      included.push(name);
    } else {
      excluded.push(name);
      if (isSnapshottable(volume) && claimNameOf(volume) !== undefined) partial = true;
    }
  }
  status.snapshotVolumes = { ...(included.length > 0 ? { includedVolumes: included } : {}), ...(excluded.length > 0 ? { excludedVolumes: excluded } : {}) };
  if (!partial) return;
  const indications: unknown[] = Array.isArray(status.indications) ? status.indications : [];
  if (!indications.includes('PartialSnapshot')) status.indications = [...indications, 'PartialSnapshot'];
  const sourceIndications: unknown[] = Array.isArray(status.sourceIndications) ? status.sourceIndications : [];
  if (!sourceIndications.some((i) => (i as { indication?: unknown }).indication === 'PartialSnapshot')) {
    status.sourceIndications = [...sourceIndications, { indication: 'PartialSnapshot', message: indicationMessages.PartialSnapshot }];
  }
}

function setOrDelete(status: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined || value === null) delete status[key];
  else status[key] = value;
}

/** The label pair a VolumeSnapshot of this content carries. */
export function sourceLabels(content: KObject): Record<string, string> {
  const meta = recordAt(contentVm(content), 'metadata');
  return { [labels.snapshotSourceName]: stringAt(meta, 'name') ?? '', [labels.snapshotSourceNamespace]: stringAt(meta, 'namespace') ?? '' };
}
