/**
 * What the agent reports for each outcome, in KubeVirt's terms: the status
 * update (phase, conditions and their reasons) and the Event virt-handler
 * would record. Pure functions of the outcome.
 */
import { CniError } from '../net/cni/index.js';
import { PodNetworkNotReady } from '../net/pod/index.js';
import type { KObject } from '../api/object.js';
import { recordAt } from '../api/kinds/read.js';
import type { GuestAgentState, GuestOsInfo } from './guest-agent/index.js';
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

/** How often a start waits for the Node's pod range (1 + 2 + 4 + 8 s) before the VMI fails. */
const podNetworkRetries = 4;

/** Sorts a start error; `failures` is how many retryable failures came before. */
export function startProblem(err: unknown, failures: number): StartProblem {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof VolumeError && err.problem !== 'Invalid') {
    // KubeVirt shows the launcher pod's pull state: ErrImagePull first, ImagePullBackOff while backing off.
    const reason = err.problem === 'NotReady' ? 'VolumeNotReady' : failures === 0 ? 'ErrImagePull' : 'ImagePullBackOff';
    return { kind: 'retry', reason, message, delayMs: Math.min(60_000, 1000 * 2 ** Math.min(failures, 6)) };
  }
  if (err instanceof PodNetworkNotReady) {
    // A new Node gets its range from the node IPAM within moments; one that still has none after ~15 s will not get it by waiting.
    if (failures >= podNetworkRetries) return { kind: 'fail', message: `the pod network is not available on this node (${failures + 1} attempts in 15 s): ${message}. The VMI has a pod network interface (a VMI created without networks gets one, KubeVirt's autoattachPodInterface): give the Node a pod range, schedule the VMI elsewhere, or set spec.domain.devices.autoattachPodInterface: false for a VMI without a NIC` };
    return { kind: 'retry', reason: 'PodNetworkNotReady', message, delayMs: 1000 * 2 ** failures };
  }
  if (err instanceof VolumeError || err instanceof DomainConfigError || err instanceof QemuStartError) return { kind: 'fail', message };
  // A Multus network that cannot be attached (no NAD, the plugin refused): the user's to fix, in the plugin's words.
  if (err instanceof CniError && err.failure !== 'PluginTimeout') return { kind: 'fail', message };
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

/**
 * What a running guest's status says: Running, Ready, Paused from QMP's run
 * state, SoftwareEmulation under TCG, AgentConnected with `guestOSInfo`
 * while the guest agent answers, `fsFreezeStatus` while it is frozen.
 */
export function runningUpdate(vmi: KObject, machine: { runState: QemuRunState; record: VmiRecord; guestAgent: { state: GuestAgentState } }, nodeName: string): StatusUpdate {
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
  const agent = machine.guestAgent.state;
  const fields = runtimeFields(vmi, nodeName);
  if (agent.connected) {
    // KubeVirt sets the condition with no reason while the agent answers, and removes it when it stops.
    set.push({ type: 'AgentConnected', status: 'True' });
    if (agent.osInfo !== undefined) fields.guestOSInfo = guestOsInfoStatus(agent.osInfo);
  } else {
    remove.push('AgentConnected');
  }
  if (agent.frozen) fields.fsFreezeStatus = 'frozen';
  else if (recordAt(vmi, 'status')?.fsFreezeStatus !== undefined) fields.fsFreezeStatus = null;
  return { phase: 'Running', set, remove, fields };
}

/** KubeVirt's `status.guestOSInfo` from qemu-ga's `guest-get-osinfo` (fields the guest does not report are left out). */
export function guestOsInfoStatus(info: GuestOsInfo): Record<string, string> {
  const out: Record<string, string> = {};
  const put = (key: string, value: string | undefined): void => { if (value !== undefined && value !== '') out[key] = value; };
  put('id', info.id);
  put('kernelRelease', info['kernel-release']);
  put('kernelVersion', info['kernel-version']);
  put('machine', info.machine);
  put('name', info.name);
  put('prettyName', info['pretty-name']);
  put('version', info.version);
  put('versionId', info['version-id']);
  return out;
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
  const reason = exit.reason ?? (exit.phase === 'Succeeded' ? 'GuestShutdown' : 'GuestFailed');
  return { phase: exit.phase, set: [{ type: 'Ready', status: 'False', reason, message: exit.message }], remove: ['Paused', 'AgentConnected'], ...(exit.reason === undefined ? {} : { fields: { reason: exit.reason } }) };
}

/**
 * The Event for a guest that ended (KubeVirt's `Stopped`). One the agent
 * killed itself because its VMI is being deleted stopped as asked: no crash.
 */
export function endedEvent(exit: MachineExit, options: { killedForDeletion?: boolean } = {}): AgentEvent {
  if (exit.reason !== undefined) return { type: 'Warning', reason: exit.reason, message: exit.message };
  return exit.phase === 'Succeeded' || options.killedForDeletion === true
    ? { type: 'Normal', reason: 'Stopped', message: 'The VirtualMachineInstance was shut down.' }
    : { type: 'Warning', reason: 'Stopped', message: `The VirtualMachineInstance crashed: ${exit.message}` };
}
