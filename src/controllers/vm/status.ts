/**
 * A VirtualMachine's status as KubeVirt's VM controller computes it
 * (`updateStatus`, `setPrintableStatus`, `syncConditions`): a pure function
 * of the VM, its VMI after this pass, and what the pass did.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { at, recordAt } from '../../api/kinds/read.js';
import type { Condition } from '../vmi/index.js';
import {
  canonicalJson,
  conditionsOf,
  conditionTypes,
  findCondition,
  hasCondition,
  isFinal,
  isMarkedForDeletion,
  removeCondition,
  setCondition,
  timestamp,
  vmiPhase,
  vmiPhases,
} from '../vmi/index.js';
import type { RunStrategy, StateChangeRequest } from './run-strategy.js';
import type { StartFailure } from './start-failure.js';
import { isRestartingStrategy } from './start-failure.js';
import { annotations } from './vmi-builder.js';
import type { DataVolumeState } from './datavolumes.js';

/** Why a pass could not do what the VM asks; lands in the `Failure` condition. */
export interface SyncError {
  reason: string;
  message: string;
  /** True when retrying cannot help until the VM (or what it references) changes. */
  terminal: boolean;
}

/** A `status.instancetypeRef` / `status.preferenceRef`. */
export interface MatcherRef {
  kind: string;
  name: string;
}

/** What {@link computeStatus} looks at. */
export interface StatusInput {
  vm: KObject;
  /** The VMI after this pass: the one created, or the one asked to stop. */
  vmi: KObject | undefined;
  strategy: RunStrategy | undefined;
  /** This pass asked the VMI to stop (delete). */
  stopExpected: boolean;
  requests: readonly StateChangeRequest[];
  startFailure: StartFailure | undefined;
  syncError: SyncError | undefined;
  /** Hash of the VM template now; a VMI from another one needs a restart to pick it up. */
  templateHash: string;
  instancetypeRef: MatcherRef | undefined;
  preferenceRef: MatcherRef | undefined;
  /** What the DataVolumes the template uses say (KubeVirt's DataVolumeError / Provisioning). */
  dataVolumes?: DataVolumeState;
  now: number;
}

/** Conditions the VM owns; every other VMI condition is mirrored as it is. */
const vmOwnedConditions: readonly string[] = [conditionTypes.ready, conditionTypes.failure, conditionTypes.restartRequired];

const startingPhases: readonly string[] = [vmiPhases.unset, vmiPhases.pending, vmiPhases.scheduling, vmiPhases.scheduled];

/** The new `status` of the VM. Fields this controller does not own are kept. */
export function computeStatus(input: StatusInput): Record<string, unknown> {
  const { vm, vmi } = input;
  const previous = recordAt(vm, 'status') ?? {};
  const status: Record<string, unknown> = { ...previous };
  const created = vmi !== undefined;
  status.created = created;
  status.ready = created && hasCondition(vmi, conditionTypes.ready, 'True');
  status.printableStatus = printableStatus(input);
  status.conditions = computeConditions(input);
  if (typeof previous.runStrategy === 'string' || created) {
    if (input.strategy !== undefined) status.runStrategy = input.strategy;
  }
  setOrDelete(status, 'stateChangeRequests', input.requests.length > 0 ? input.requests : undefined);
  setOrDelete(status, 'startFailure', input.startFailure);
  setOrDelete(status, 'instancetypeRef', input.instancetypeRef);
  setOrDelete(status, 'preferenceRef', input.preferenceRef);
  const observed = vmi === undefined ? undefined : Number(vmi.metadata.annotations?.[annotations.vmGeneration]);
  if (observed !== undefined && Number.isInteger(observed)) {
    status.observedGeneration = observed;
    status.desiredGeneration = vm.metadata.generation ?? observed;
  }
  return status;
}

function setOrDelete(target: Record<string, unknown>, key: string, value: unknown): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}

/** KubeVirt's printable status: the first that holds, in KubeVirt's order. */
export function printableStatus(input: StatusInput): string {
  const { vm, vmi } = input;
  if (isMarkedForDeletion(vm)) return 'Terminating';
  if (vmi !== undefined && !isFinal(vmi) && (isMarkedForDeletion(vmi) || input.stopExpected)) return 'Stopping';
  if (vmi !== undefined && isMigrating(vmi)) return 'Migrating';
  const running = vmi !== undefined && vmiPhase(vmi) === vmiPhases.running;
  const paused = hasCondition(vmi, conditionTypes.paused, 'True');
  if (running && paused) return 'Paused';
  if (running) return 'Running';
  if (hasCondition(vmi, conditionTypes.synchronized, 'False', 'FailedPvcNotFound')) return 'ErrorPvcNotFound';
  if (input.dataVolumes?.error !== undefined) return 'DataVolumeError';
  if (hasCondition(vmi, conditionTypes.podScheduled, 'False', 'Unschedulable')) return 'ErrorUnschedulable';
  if (input.dataVolumes?.provisioning === true) return 'Provisioning';
  if (hasCondition(vmi, conditionTypes.synchronized, 'False', 'ErrImagePull')) return 'ErrImagePull';
  if (hasCondition(vmi, conditionTypes.synchronized, 'False', 'ImagePullBackOff')) return 'ImagePullBackOff';
  if (vmi !== undefined && startingPhases.includes(vmiPhase(vmi))) return 'Starting';
  const ended = vmi === undefined || isFinal(vmi);
  if (ended && (input.startFailure?.consecutiveFailCount ?? 0) > 0 && isRestartingStrategy(input.strategy)) return 'CrashLoopBackOff';
  if (ended) return 'Stopped';
  return 'Unknown';
}

/** A migration started and neither completed nor failed (KubeVirt's `IsMigrating`). */
function isMigrating(vmi: KObject): boolean {
  const state = recordAt(vmi, 'status', 'migrationState');
  if (state === undefined) return false;
  const started = at(state, 'startTimestamp');
  const ended = at(state, 'endTimestamp');
  return typeof started === 'string' && (ended === undefined || ended === null) && state.completed !== true && state.failed !== true;
}

function computeConditions(input: StatusInput): Condition[] {
  const { vmi } = input;
  const now = timestamp(input.now);
  let conditions = conditionsOf(input.vm);
  conditions = setCondition(conditions, readyCondition(vmi, now));
  conditions = input.syncError === undefined
    ? removeCondition(conditions, conditionTypes.failure)
    : setCondition(conditions, { type: conditionTypes.failure, status: 'True', reason: input.syncError.reason, message: input.syncError.message, lastProbeTime: null, lastTransitionTime: now });
  const mirrored = conditionsOf(vmi).filter((c) => !vmOwnedConditions.includes(c.type));
  conditions = conditions.filter((c) => vmOwnedConditions.includes(c.type) || mirrored.some((m) => m.type === c.type));
  for (const c of mirrored) conditions = setCondition(conditions, c);
  const hash = vmi?.metadata.annotations?.[annotations.templateHash];
  const stale = vmi !== undefined && !isFinal(vmi) && !isMarkedForDeletion(vmi) && !input.stopExpected && hash !== undefined && hash !== input.templateHash;
  conditions = stale
    ? setCondition(conditions, { type: conditionTypes.restartRequired, status: 'True', message: 'a non-live-updatable field was changed in the template spec', lastProbeTime: null, lastTransitionTime: now })
    : removeCondition(conditions, conditionTypes.restartRequired);
  return conditions;
}

/** `Ready` follows the VMI's, or says why there is none. */
function readyCondition(vmi: KObject | undefined, now: string): Condition {
  if (vmi === undefined) return { type: conditionTypes.ready, status: 'False', reason: 'VMINotExists', message: 'VMI does not exist', lastProbeTime: null, lastTransitionTime: now };
  const ready = findCondition(conditionsOf(vmi), conditionTypes.ready);
  if (ready === undefined) return { type: conditionTypes.ready, status: 'False', reason: 'VMIConditionMissing', message: 'VMI is missing the Ready condition', lastProbeTime: null, lastTransitionTime: now };
  return { ...ready, lastTransitionTime: ready.lastTransitionTime ?? now };
}

/** True when two statuses differ in anything a reader would see. */
export function statusChanged(before: unknown, after: Record<string, unknown>): boolean {
  return canonicalJson(isPlainObject(before) ? before : {}) !== canonicalJson(after);
}
