/**
 * What the subresources read from VirtualMachines and their instances: the
 * effective run strategy, the VMI's phase and node, conditions, and the
 * VM's pending state-change requests, with KubeVirt's meaning of each.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { arrayAt, recordsAt, stringAt } from '../../api/kinds/read.js';

export type RunStrategy = 'Always' | 'RerunOnFailure' | 'Once' | 'Manual' | 'Halted' | 'WaitAsReceiver';

const runStrategies: readonly string[] = ['Always', 'RerunOnFailure', 'Once', 'Manual', 'Halted', 'WaitAsReceiver'];

function isRunStrategy(value: string): value is RunStrategy {
  return runStrategies.includes(value);
}

/**
 * The VM's run strategy as KubeVirt derives it (`vm.RunStrategy()`): the
 * deprecated `spec.running` maps to Always/Halted, an absent one is Halted.
 * Admission keeps the two fields exclusive and the value valid.
 */
export function runStrategyOf(vm: KObject): RunStrategy {
  const spec = isPlainObject(vm.spec) ? vm.spec : {};
  if (typeof spec.running === 'boolean') return spec.running ? 'Always' : 'Halted';
  const strategy = spec.runStrategy;
  return typeof strategy === 'string' && isRunStrategy(strategy) ? strategy : 'Halted';
}

/** True when the VM spells its strategy with the deprecated `spec.running`. */
export function usesRunningField(vm: KObject): boolean {
  return isPlainObject(vm.spec) && typeof vm.spec.running === 'boolean' && vm.spec.runStrategy === undefined;
}

export function phaseOf(vmi: KObject): string {
  return stringAt(vmi, 'status', 'phase') ?? '';
}

/** Succeeded or Failed: the guest is gone for good (`vmi.IsFinal()`). */
export function isFinal(vmi: KObject): boolean {
  const phase = phaseOf(vmi);
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The node a running VMI is on; undefined before scheduling. */
export function nodeNameOf(vmi: KObject): string | undefined {
  const node = stringAt(vmi, 'status', 'nodeName');
  return node === undefined || node === '' ? undefined : node;
}

/** True when the object has a condition of `type` whose status is True. */
export function hasTrueCondition(obj: KObject, type: string): boolean {
  return recordsAt(obj, 'status', 'conditions').some((c) => c.type === type && c.status === 'True');
}

/** A `status.stateChangeRequests` entry, as the VM controller reads it. */
export interface StateChangeRequest {
  action: 'Start' | 'Stop';
  /** For Stop: the VMI to stop, so a stale request never stops its successor. */
  uid?: string;
  /** For Start: `{paused: "true"}` starts the guest paused. */
  data?: Record<string, string>;
}

/** The VM's pending state-change requests (kept raw: they are only compared and replaced). */
export function pendingRequestsOf(vm: KObject): unknown[] {
  return arrayAt(vm, 'status', 'stateChangeRequests');
}
