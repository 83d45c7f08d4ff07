/**
 * A replica set's status (KubeVirt's `updateStatus`, `checkPaused`,
 * `checkFailure`), and which VMIs go first when it scales down.
 */
import type { KObject } from '../../api/object.js';
import { booleanAt, recordAt } from '../../api/kinds/read.js';
import type { LabelSelector } from '../../api/labels.js';
import { canonicalJson, conditionsOf, conditionTypes, findCondition, hasCondition, nodeNameOf, removeCondition, setCondition, timestamp, vmiPhase, vmiPhases } from '../vmi/index.js';

const pausedCondition = 'ReplicaPaused';
const failureCondition = 'ReplicaFailure';

/** The new status, and whether `ReplicaPaused` flipped (for the Paused/Resumed event). */
export function replicaSetStatus(
  rs: KObject,
  active: readonly KObject[],
  selector: LabelSelector,
  scaleError: { reason: string; message: string } | undefined,
  now: number,
): { status: Record<string, unknown>; pausedChanged: boolean } {
  const paused = booleanAt(rs, 'spec', 'paused') === true;
  let conditions = conditionsOf(rs);
  const wasPaused = findCondition(conditions, pausedCondition) !== undefined;
  const at = timestamp(now);
  conditions = paused
    ? setCondition(conditions, { type: pausedCondition, status: 'True', reason: 'Paused', message: 'Controller got paused', lastTransitionTime: at })
    : removeCondition(conditions, pausedCondition);
  conditions = scaleError === undefined
    ? removeCondition(conditions, failureCondition)
    : setCondition(conditions, { type: failureCondition, status: 'True', reason: scaleError.reason, message: scaleError.message, lastTransitionTime: at });
  const status: Record<string, unknown> = {
    ...recordAt(rs, 'status'),
    replicas: active.length,
    readyReplicas: active.filter((v) => hasCondition(v, conditionTypes.ready, 'True')).length,
    labelSelector: selector.toString(),
  };
  if (conditions.length > 0) status.conditions = conditions;
  else delete status.conditions;
  return { status, pausedChanged: paused !== wasPaused };
}

/** True when `status` differs from what `rs` holds. */
export function statusDiffers(rs: KObject, status: Record<string, unknown>): boolean {
  return canonicalJson(recordAt(rs, 'status') ?? {}) !== canonicalJson(status);
}

/**
 * The order in which to delete VMIs when scaling down: those not yet on a
 * node, then those not yet running, then those not ready, newest first
 * within each (kube's ReplicaSet ranks pods much the same way).
 */
export function deletionOrder(vmis: readonly KObject[]): KObject[] {
  const rank = (v: KObject): number => {
    if (nodeNameOf(v) === undefined) return 0;
    if (vmiPhase(v) !== vmiPhases.running) return 1;
    return hasCondition(v, conditionTypes.ready, 'True') ? 3 : 2;
  };
  return [...vmis].sort((a, b) => rank(a) - rank(b) || (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
}
