/**
 * A DataVolume's status as CDI's import and upload controllers derive it
 * from its PVC: the phase (Pending, WaitForFirstConsumer, PVCBound,
 * ImportScheduled, ImportInProgress, UploadScheduled, UploadReady,
 * CloneScheduled, CloneInProgress,
 * Succeeded, Failed), the `Bound`, `Ready` and `Running`
 * conditions with CDI's reasons and messages, `progress` as "45.20%",
 * `restartCount` and `claimName`, and the Events CDI records on a change.
 * Pure: a function of the DataVolume, its PVC and the class's binding mode.
 *
 * One deliberate difference: CDI's importer pod retries forever and its
 * DataVolume never leaves ImportScheduled/ImportInProgress; Vireo's runner
 * gives up on failures a retry cannot fix (a 404, a checksum mismatch, a
 * damaged image), and the DataVolume shows `Failed`.
 */
import type { KObject } from '../../api/object.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import { cdiAnnotations, importPhases } from '../../storage/import/index.js';
import { cloneRequestAnnotation, cloneTypeAnnotation } from '../../storage/snapshots/index.js';

/** A DataVolume condition (CDI's `DataVolumeCondition`). */
export interface DataVolumeCondition {
  type: 'Bound' | 'Ready' | 'Running';
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  lastHeartbeatTime: string;
}

/** An Event to record about the DataVolume. */
export interface DataVolumeEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** Why no PVC could be made; the DataVolume stays Pending and says so. */
export interface Blocked {
  reason: string;
  message: string;
}

/** What {@link computeStatus} looks at. */
export interface StatusInput {
  dv: KObject;
  pvc: KObject | undefined;
  /** The PVC's class binds WaitForFirstConsumer. */
  waitForFirstConsumer: boolean;
  blocked: Blocked | undefined;
  now: string;
}

/** The next status and the Events the change calls for. */
export function computeStatus(input: StatusInput): { status: Record<string, unknown>; events: DataVolumeEvent[] } {
  const { dv, pvc } = input;
  const previous = recordAt(dv, 'status') ?? {};
  const before = stringAt(previous, 'phase') ?? '';
  const status: Record<string, unknown> = { ...previous };
  let phase = before;
  let phaseEvent: DataVolumeEvent | undefined;
  const annotations = pvc?.metadata.annotations ?? {};
  if (pvc === undefined) {
    phase = 'Pending';
  } else {
    status.claimName = pvc.metadata.name;
    const claimPhase = stringAt(pvc, 'status', 'phase') ?? 'Pending';
    const importPhase = annotations[cdiAnnotations.podPhase];
    if (importPhase === importPhases.succeeded) {
      ({ phase, event: phaseEvent } = transferStep(pvc, phase));
    } else if (claimPhase === 'Pending') {
      phase = input.waitForFirstConsumer ? 'WaitForFirstConsumer' : 'Pending';
    } else if (claimPhase === 'Bound') {
      if (['', 'Pending', 'WaitForFirstConsumer', 'Unknown'].includes(phase)) phase = 'PVCBound';
      ({ phase, event: phaseEvent } = transferStep(pvc, phase));
    } else if (claimPhase === 'Lost') {
      phase = 'Failed';
      phaseEvent = { type: 'Warning', reason: 'ErrClaimLost', message: `PVC ${pvc.metadata.name ?? ''} lost` };
    } else {
      phase = 'Unknown';
    }
    const restarts = Number(annotations[cdiAnnotations.podRestarts]);
    if (Number.isInteger(restarts) && restarts >= 0) status.restartCount = restarts;
  }
  status.phase = phase;
  status.progress = progressOf(phase, annotations, stringAt(previous, 'progress'));
  const conditions = conditionsOf(previous);
  const next = nextConditions(conditions, phase, pvc, annotations, input);
  status.conditions = next;
  const events: DataVolumeEvent[] = [];
  if (phaseEvent !== undefined && before !== phase) events.push(phaseEvent);
  events.push(...conditionEvents(conditions, next, phase));
  return { status, events };
}

/** The phase the PVC's transfer (an import or an upload) gives the DataVolume. */
function transferStep(pvc: KObject, phase: string): { phase: string; event: DataVolumeEvent | undefined } {
  if (pvc.metadata.annotations?.[cdiAnnotations.uploadTarget] !== undefined) return uploadStep(pvc);
  const annotations = pvc.metadata.annotations ?? {};
  if (annotations[cdiAnnotations.source] === undefined && (recordAt(pvc, 'spec', 'dataSource') !== undefined || annotations[cloneRequestAnnotation] !== undefined)) return cloneStep(pvc);
  return importStep(pvc, phase);
}

/**
 * A copy of a claim or a VolumeSnapshot (CDI's CSI clone and restore): the
 * provisioner makes the volume from its data source before it binds the
 * claim, so a bound claim is a finished copy; unless the source is on
 * another node (`cloneType: copy`, CDI's host-assisted clone), where the
 * copy runs after binding and the import phase on the claim tells:
 * CloneScheduled, CloneInProgress, Succeeded, or Failed.
 */
function cloneStep(pvc: KObject): { phase: string; event: DataVolumeEvent } {
  const name = pvc.metadata.name ?? '';
  const namespace = pvc.metadata.namespace ?? '';
  const annotations = pvc.metadata.annotations ?? {};
  const source = annotations[cloneRequestAnnotation] ?? `${namespace}/${stringAt(pvc, 'spec', 'dataSource', 'name') ?? ''}`;
  const target = `${namespace}/${name}`;
  const succeeded = { phase: 'Succeeded', event: { type: 'Normal' as const, reason: 'CloneSucceeded', message: `Successfully cloned from ${source} into ${target}` } };
  const scheduled = { phase: 'CloneScheduled', event: { type: 'Normal' as const, reason: 'CloneScheduled', message: `Cloning from ${source} into ${target} scheduled` } };
  if (stringAt(pvc, 'status', 'phase') !== 'Bound') return scheduled;
  if (annotations[cloneTypeAnnotation] !== 'copy') return succeeded;
  switch (annotations[cdiAnnotations.podPhase]) {
    case importPhases.succeeded:
      return succeeded;
    case importPhases.failed:
      return { phase: 'Failed', event: { type: 'Warning', reason: 'CloneFailed', message: `Cloning from ${source} into ${target} failed` } };
    case importPhases.running:
      return { phase: 'CloneInProgress', event: { type: 'Normal', reason: 'CloneInProgress', message: `Cloning from ${source} into ${target} in progress` } };
    default:
      return scheduled;
  }
}

/**
 * CDI's upload controller's `updateStatusPhase`: UploadScheduled until the
 * node is ready to receive (`storage.pod.ready`), then UploadReady, then
 * Succeeded. A failed upload shows Failed (CDI stays UploadScheduled while
 * its upload pod restarts); the PVC stays ready, and the next upload moves
 * the DataVolume back to UploadReady.
 */
function uploadStep(pvc: KObject): { phase: string; event: DataVolumeEvent } {
  const name = pvc.metadata.name ?? '';
  const annotations = pvc.metadata.annotations ?? {};
  switch (annotations[cdiAnnotations.podPhase]) {
    case importPhases.succeeded:
      return { phase: 'Succeeded', event: { type: 'Normal', reason: 'UploadSucceeded', message: `Successfully uploaded into ${name}` } };
    case importPhases.failed:
      return { phase: 'Failed', event: { type: 'Warning', reason: 'UploadFailed', message: `Upload into ${name} failed` } };
    case importPhases.running:
      if (annotations[cdiAnnotations.podReady] === 'true') return { phase: 'UploadReady', event: { type: 'Normal', reason: 'UploadReady', message: `Upload into ${name} ready` } };
      break;
    default:
      break;
  }
  return { phase: 'UploadScheduled', event: { type: 'Normal', reason: 'UploadScheduled', message: `Upload into ${name} scheduled` } };
}

/** CDI's `updateStatusPhase` for imports: the runner's phase on the PVC, as the DataVolume's. */
function importStep(pvc: KObject, phase: string): { phase: string; event: DataVolumeEvent | undefined } {
  const name = pvc.metadata.name ?? '';
  const annotations = pvc.metadata.annotations ?? {};
  if (annotations[cdiAnnotations.source] === undefined) return { phase, event: undefined };
  switch (annotations[cdiAnnotations.podPhase]) {
    case importPhases.running:
      return { phase: 'ImportInProgress', event: { type: 'Normal', reason: 'ImportInProgress', message: `Import into ${name} in progress` } };
    case importPhases.failed:
      return { phase: 'Failed', event: { type: 'Warning', reason: 'ImportFailed', message: `Failed to import into PVC ${name}` } };
    case importPhases.succeeded:
      return { phase: 'Succeeded', event: { type: 'Normal', reason: 'ImportSucceeded', message: `Successfully imported into PVC ${name}` } };
    default:
      return { phase: 'ImportScheduled', event: { type: 'Normal', reason: 'ImportScheduled', message: `Import into ${name} scheduled` } };
  }
}

/** "N/A" until the importer reports, then CDI's "%.2f%%"; "100.0%" once done. */
function progressOf(phase: string, annotations: Record<string, string>, previous: string | undefined): string {
  if (phase === 'Succeeded') return '100.0%';
  const reported = Number.parseFloat(annotations[cdiAnnotations.progress] ?? '');
  if ((phase === 'ImportInProgress' || phase === 'UploadReady' || phase === 'CloneInProgress') && Number.isFinite(reported)) return `${Math.min(100, Math.max(0, reported)).toFixed(2)}%`;
  return previous === undefined || previous === '' ? 'N/A' : previous;
}

function conditionsOf(status: Record<string, unknown>): DataVolumeCondition[] {
  const list = status.conditions;
  if (!Array.isArray(list)) return [];
  return list.filter((c): c is DataVolumeCondition => typeof c === 'object' && c !== null && typeof (c as { type?: unknown }).type === 'string');
}

/** CDI's `updateCondition`: the transition time moves only when the status does. */
function update(conditions: DataVolumeCondition[], type: DataVolumeCondition['type'], status: DataVolumeCondition['status'], message: string, reason: string, now: string): DataVolumeCondition[] {
  const existing = conditions.find((c) => c.type === type);
  if (existing === undefined) return [...conditions, { type, status, reason, message, lastTransitionTime: now, lastHeartbeatTime: now }];
  if (existing.status === status && existing.reason === reason && existing.message === message) return conditions;
  const changed: DataVolumeCondition = existing.status === status
    ? { ...existing, reason, message, lastHeartbeatTime: now }
    : { ...existing, status, reason, message, lastTransitionTime: now, lastHeartbeatTime: now };
  return conditions.map((c) => (c.type === type ? changed : c));
}

function nextConditions(conditions: DataVolumeCondition[], phase: string, pvc: KObject | undefined, annotations: Record<string, string>, input: StatusInput): DataVolumeCondition[] {
  const now = input.now;
  let next = conditions;
  if (pvc === undefined) {
    next = update(next, 'Bound', 'False', input.blocked?.message ?? 'No PVC found', input.blocked?.reason ?? 'NotFound', now);
  } else {
    const name = pvc.metadata.name ?? '';
    const claimPhase = stringAt(pvc, 'status', 'phase') ?? 'Pending';
    if (claimPhase === 'Bound') next = update(next, 'Bound', 'True', `PVC ${name} Bound`, 'Bound', now);
    else if (claimPhase === 'Pending') next = update(next, 'Bound', 'False', `PVC ${name} Pending`, 'Pending', now);
    else if (claimPhase === 'Lost') next = update(next, 'Bound', 'False', 'Claim Lost', 'ClaimLost', now);
    else next = update(next, 'Bound', 'False', '', '', now);
  }
  const running = annotations[cdiAnnotations.runningCondition]?.toLowerCase();
  const reason = annotations[cdiAnnotations.runningReason] ?? '';
  const message = annotations[cdiAnnotations.runningMessage] ?? '';
  const blocked = pvc === undefined ? input.blocked : undefined;
  if (running === 'true') {
    next = update(next, 'Ready', 'False', '', 'TransferRunning', now);
  } else {
    const ready = phase === 'Succeeded' ? 'True' : phase === 'Unknown' ? 'Unknown' : 'False';
    next = update(next, 'Ready', ready, blocked?.message ?? '', blocked?.reason ?? '', now);
  }
  const runningStatus = running === 'true' ? 'True' : running === 'false' || running === undefined ? 'False' : 'Unknown';
  next = update(next, 'Running', runningStatus, message, reason, now);
  return next;
}

/** CDI's condition events: a changed `Bound`, and a stopped importer's cause (once per message). */
function conditionEvents(before: DataVolumeCondition[], after: DataVolumeCondition[], phase: string): DataVolumeEvent[] {
  const events: DataVolumeEvent[] = [];
  const bound = after.find((c) => c.type === 'Bound');
  const wasBound = before.find((c) => c.type === 'Bound');
  if (bound !== undefined && bound.reason !== '' && (wasBound === undefined || wasBound.status !== bound.status || wasBound.reason !== bound.reason || wasBound.message !== bound.message)) {
    events.push({ type: 'Normal', reason: bound.reason, message: bound.message });
  }
  const ready = after.find((c) => c.type === 'Ready');
  const running = after.find((c) => c.type === 'Running');
  const wasRunning = before.find((c) => c.type === 'Running');
  const boundOrBusy = bound?.status === 'True' || phase === 'ImportScheduled' || phase === 'ImportInProgress';
  if (ready?.status === 'False' && running?.status === 'False' && boundOrBusy && running.message !== '' && wasRunning?.message !== running.message) {
    events.push({ type: 'Warning', reason: running.reason, message: running.message });
  }
  if (ready?.status === 'False' && ready.reason !== '' && ready.reason !== 'TransferRunning' && before.find((c) => c.type === 'Ready')?.message !== ready.message) {
    events.push({ type: 'Warning', reason: ready.reason, message: ready.message });
  }
  return events;
}
