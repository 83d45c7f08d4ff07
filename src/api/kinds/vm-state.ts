/**
 * What every component reads off KubeVirt's VMs and VMIs with one meaning:
 * the VMI's phase (KubeVirt's `IsFinal`), its node, whether its deletion
 * began; the VM's effective run strategy and its pending state-change
 * requests. The controllers, the scheduler, the agent and the
 * subresources all read them from here.
 */
import type { KObject } from '../object.js';
import { isPlainObject } from '../object.js';
import { arrayAt, at, stringAt } from './read.js';

/** The VMI phases (`VirtualMachineInstancePhase`). */
export const vmiPhases = {
  unset: '',
  pending: 'Pending',
  scheduling: 'Scheduling',
  scheduled: 'Scheduled',
  running: 'Running',
  succeeded: 'Succeeded',
  failed: 'Failed',
  waitingForSync: 'WaitingForSync',
  unknown: 'Unknown',
} as const;

/** `status.phase`, '' when unset. */
export function vmiPhase(vmi: KObject): string {
  return stringAt(vmi, 'status', 'phase') ?? '';
}

/** Succeeded or Failed: the VMI will not run again. */
export function isFinal(vmi: KObject): boolean {
  const phase = vmiPhase(vmi);
  return phase === vmiPhases.succeeded || phase === vmiPhases.failed;
}

/** True once a delete was accepted and finalizers hold the object. */
export function isMarkedForDeletion(obj: KObject): boolean {
  return obj.metadata.deletionTimestamp !== undefined;
}

/** `status.nodeName`, or undefined while unbound. */
export function nodeNameOf(vmi: KObject): string | undefined {
  const node = stringAt(vmi, 'status', 'nodeName');
  return node === undefined || node === '' ? undefined : node;
}

/** The run strategies Vireo runs (KubeVirt's, less WaitAsReceiver, which admission refuses). */
export const runStrategies = ['Always', 'RerunOnFailure', 'Manual', 'Halted', 'Once'] as const;
/** One of {@link runStrategies}. */
export type RunStrategy = (typeof runStrategies)[number];

/**
 * The effective run strategy: `spec.runStrategy`, or the deprecated
 * `spec.running` (true is Always, false or absent is Halted). An error
 * message when the spec says something else.
 */
export function runStrategyOf(vm: KObject): { strategy: RunStrategy } | { error: string } {
  const strategy = at(vm, 'spec', 'runStrategy');
  const running = at(vm, 'spec', 'running');
  const hasStrategy = strategy !== undefined && strategy !== null;
  if (hasStrategy && running !== undefined && running !== null) {
    return { error: 'running and runStrategy are mutually exclusive: keep runStrategy and remove the deprecated running field' };
  }
  if (hasStrategy) {
    const known = runStrategies.find((s) => s === strategy);
    return known === undefined ? { error: `unknown runStrategy ${JSON.stringify(strategy)}: use one of ${runStrategies.join(', ')}` } : { strategy: known };
  }
  return { strategy: running === true ? 'Always' : 'Halted' };
}

/** A `status.stateChangeRequests` entry, as the start/stop/restart subresources write them. */
export interface StateChangeRequest {
  action: string;
  /** For Stop: the VMI to stop, so a stale request never stops its successor. */
  uid?: string;
  /** For Start: `{paused: "true"}` starts the guest paused. */
  data?: Record<string, string>;
}

/** The well-formed `status.stateChangeRequests`. */
export function stateChangeRequestsOf(vm: KObject): StateChangeRequest[] {
  const out: StateChangeRequest[] = [];
  for (const item of arrayAt(vm, 'status', 'stateChangeRequests')) {
    if (!isPlainObject(item) || typeof item.action !== 'string') continue;
    const request: StateChangeRequest = { action: item.action };
    if (typeof item.uid === 'string') request.uid = item.uid;
    if (isPlainObject(item.data)) {
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(item.data)) if (typeof v === 'string') data[k] = v;
      request.data = data;
    }
    out.push(request);
  }
  return out;
}
