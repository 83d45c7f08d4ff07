/**
 * What the agent reports for each outcome, in KubeVirt's terms: the status
 * update (phase, conditions and their reasons) and the Event virt-handler
 * would record. Pure functions of the outcome.
 */
import { PodNetworkNotReady } from '../net/pod/index.js';
import type { KObject } from '../api/object.js';
import { DomainConfigError } from './qemu/index.js';
import type { MachineExit, QemuRunState } from './machine.js';
import { QemuStartError } from './machine.js';
import type { VmiRecord } from './layout.js';
import { VolumeError } from './volume-error.js';
import type { DesiredCondition, StatusUpdate } from './vmi-status.js';
import { runtimeFields } from './vmi-status.js';

/** A core/v1 Event about the VMI. */
export interface AgentEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

/** What a failed start means for the VMI. */
export type StartProblem =
  /** Worth retrying after `delayMs` (an image or a Secret may appear); the VMI stays Scheduled. */
  | { kind: 'retry'; reason: 'ErrImagePull' | 'ImagePullBackOff' | 'VolumeNotReady' | 'PodNetworkNotReady'; message: string; delayMs: number }
  /** The VMI cannot run as specified, or QEMU refused it: Failed. */
  | { kind: 'fail'; message: string }
  /** Something on the node went wrong (a tool, the disk): retried with the queue's backoff. */
  | { kind: 'error'; message: string };

/** Sorts a start error; `failures` is how many retryable failures came before. */
export function startProblem(err: unknown, failures: number): StartProblem {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof VolumeError && err.problem !== 'Invalid') {
    // KubeVirt shows the launcher pod's pull state: ErrImagePull first, ImagePullBackOff while backing off.
    const reason = err.problem === 'NotReady' ? 'VolumeNotReady' : failures === 0 ? 'ErrImagePull' : 'ImagePullBackOff';
    return { kind: 'retry', reason, message, delayMs: Math.min(60_000, 1000 * 2 ** Math.min(failures, 6)) };
  }
  if (err instanceof PodNetworkNotReady) return { kind: 'retry', reason: 'PodNetworkNotReady', message, delayMs: Math.min(30_000, 1000 * 2 ** Math.min(failures, 5)) };
  if (err instanceof VolumeError || err instanceof DomainConfigError || err instanceof QemuStartError) return { kind: 'fail', message };
  return { kind: 'error', message };
}

/** The status of a VMI whose start is retried or failed. */
export function startProblemUpdate(problem: StartProblem): StatusUpdate {
  switch (problem.kind) {
    case 'retry':
      return { set: [{ type: 'Synchronized', status: 'False', reason: problem.reason, message: problem.message }] };
    case 'fail':
      return {
        phase: 'Failed',
        set: [
          { type: 'Synchronized', status: 'False', reason: 'FailedCreate', message: problem.message },
          { type: 'Ready', status: 'False', reason: 'FailedCreate', message: problem.message },
        ],
      };
    case 'error':
      return { set: [{ type: 'Synchronized', status: 'False', reason: 'SyncFailed', message: problem.message }] };
  }
}

/** The Event for a failed start. */
export function startProblemEvent(problem: StartProblem): AgentEvent {
  return { type: 'Warning', reason: problem.kind === 'retry' ? problem.reason : problem.kind === 'fail' ? 'FailedCreate' : 'SyncFailed', message: problem.message };
}

/** What a running guest's status says: Running, Ready, Paused from QMP's run state, SoftwareEmulation under TCG. */
export function runningUpdate(vmi: KObject, machine: { runState: QemuRunState; record: VmiRecord }, nodeName: string): StatusUpdate {
  const set: DesiredCondition[] = [{ type: 'Ready', status: 'True' }];
  const remove = ['Synchronized'];
  const paused = pausedCondition(machine.runState);
  if (paused === undefined) remove.push('Paused');
  else set.push(paused);
  if (machine.record.accel === 'tcg') {
    set.push({
      type: 'SoftwareEmulation',
      status: 'True',
      reason: 'NoHardwareAcceleration',
      message: `the guest runs under QEMU's software emulation (TCG), much slower than KVM: ${machine.record.accelReason}`,
    });
  } else {
    remove.push('SoftwareEmulation');
  }
  return { phase: 'Running', set, remove, fields: runtimeFields(vmi, nodeName) };
}

/** KubeVirt's Paused condition for QEMU's run state; undefined when the guest is not paused. */
export function pausedCondition(runState: QemuRunState): DesiredCondition | undefined {
  switch (runState) {
    case 'paused':
      return { type: 'Paused', status: 'True', reason: 'PausedByUser', message: 'VMI was paused by user' };
    case 'prelaunch':
      return { type: 'Paused', status: 'True', reason: 'PausedStartStrategy', message: 'VMI was started paused (spec.startStrategy: Paused)' };
    case 'io-error':
      return { type: 'Paused', status: 'True', reason: 'PausedIOError', message: 'VMI was paused, low-level IO error detected' };
    default:
      return undefined;
  }
}

/** The final status of a VMI whose QEMU ended. */
export function endedUpdate(exit: MachineExit): StatusUpdate {
  const reason = exit.phase === 'Succeeded' ? 'GuestShutdown' : 'GuestFailed';
  return { phase: exit.phase, set: [{ type: 'Ready', status: 'False', reason, message: exit.message }], remove: ['Paused'] };
}

/** The Event for a guest that ended (KubeVirt's `Stopped`). */
export function endedEvent(exit: MachineExit): AgentEvent {
  return exit.phase === 'Succeeded'
    ? { type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' }
    : { type: 'Warning', reason: 'Stopped', message: `The VirtualMachineInstance crashed: ${exit.message}` };
}
