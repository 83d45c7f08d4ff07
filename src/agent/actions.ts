/**
 * What the agent does next for one VMI, decided from what is (the VMI as
 * stored, and the QEMU the node runs or ran for it), never from which
 * event arrived. A pure function: the runner executes the action.
 */
import type { KObject } from '../api/object.js';
import { numberAt } from '../api/kinds/read.js';
import type { VmiLayout } from './layout.js';
import type { Machine, MachineExit } from './machine.js';
import { isFinal, isMarkedForDeletion, vmiPhase } from '../api/kinds/vm-state.js';
import { hasAgentFinalizer } from './vmi-status.js';

/** What the node holds for one VMI uid. */
export type Runtime =
  /** A QEMU this agent watches (its `exit` is set once it ended). */
  | { kind: 'machine'; machine: Machine }
  /** A directory found after a restart whose QEMU had already ended. */
  | { kind: 'leftover'; key: string; uid: string; layout: VmiLayout; exit: MachineExit };

/** The one thing the agent does next for a VMI; executed by the runner, exhaustively. */
export type VmiAction =
  /** Prepare the volumes, spawn QEMU, report Running. */
  | { kind: 'start'; vmi: KObject }
  /** Report the running guest's state (Running, Paused, SoftwareEmulation…). */
  | { kind: 'observe'; vmi: KObject; machine: Machine }
  /** Power the guest off (ACPI) and kill QEMU after the grace period. */
  | { kind: 'shutdown'; machine: Machine; graceSeconds: number }
  /**
   * QEMU is gone (or never came): report the final phase when there is one
   * to report, remove the VMI's files, release the finalizer.
   */
  | { kind: 'cleanup'; vmi: KObject | undefined; uid: string; exit: MachineExit | undefined }
  /** Nothing to do now. */
  | { kind: 'none' };

/** KubeVirt's default `terminationGracePeriodSeconds`. */
export const defaultGraceSeconds = 30;

/** A Running VMI without a QEMU lost it (node reboot, QEMU died while no agent watched). */
export const lostMachine: MachineExit = {
  phase: 'Failed',
  message: 'the QEMU process of this VMI is gone: the node or the agent restarted without it',
};

/** The VMI uid a runtime belongs to. */
export function runtimeUid(runtime: Runtime): string {
  return runtime.kind === 'machine' ? runtime.machine.record.uid : runtime.uid;
}

function runtimeExit(runtime: Runtime): MachineExit | undefined {
  return runtime.kind === 'machine' ? runtime.machine.exit : runtime.exit;
}

/**
 * The next action for the VMI `vmi` (undefined when it no longer exists
 * or is no longer bound to this node) and what the node holds for its uid.
 * Runtimes of other uids under the same name are decided with `vmi`
 * undefined.
 */
export function decideAction(vmi: KObject | undefined, runtime: Runtime | undefined): VmiAction {
  if (runtime !== undefined) {
    const exit = runtimeExit(runtime);
    if (exit !== undefined || runtime.kind === 'leftover') {
      // A guest that never reported Running (the agent stopped mid-start) starts again rather than failing the VMI.
      const report = vmi !== undefined && vmiPhase(vmi) === 'Scheduled' && runtime.kind === 'leftover' ? undefined : exit;
      return { kind: 'cleanup', vmi, uid: runtimeUid(runtime), exit: report };
    }
    const { machine } = runtime;
    // A VMI that is gone (deleted past its finalizer, or moved off this node) has no grace left to give.
    if (vmi === undefined) return { kind: 'shutdown', machine, graceSeconds: 0 };
    if (isMarkedForDeletion(vmi)) return { kind: 'shutdown', machine, graceSeconds: graceSecondsOf(vmi) };
    if (isFinal(vmi)) return { kind: 'shutdown', machine, graceSeconds: 0 };
    return { kind: 'observe', vmi, machine };
  }
  if (vmi === undefined) return { kind: 'none' };
  const uid = vmi.metadata.uid ?? '';
  const phase = vmiPhase(vmi);
  if (isMarkedForDeletion(vmi) || isFinal(vmi)) {
    return hasAgentFinalizer(vmi) ? { kind: 'cleanup', vmi, uid, exit: undefined } : { kind: 'none' };
  }
  switch (phase) {
    case 'Scheduled':
      return { kind: 'start', vmi };
    case 'Running':
      return { kind: 'cleanup', vmi, uid, exit: lostMachine };
    default:
      // Pending or Scheduling with a node already named: the scheduler has not finished binding it.
      return { kind: 'none' };
  }
}

/** How long a deleted VMI's guest gets to power off before QEMU is killed. */
export function graceSecondsOf(vmi: KObject): number {
  const fromDelete = vmi.metadata.deletionGracePeriodSeconds;
  const fromSpec = numberAt(vmi, 'spec', 'terminationGracePeriodSeconds');
  // A delete that named a grace period shorter than the spec's wins, as for pods.
  const grace = fromDelete !== undefined && fromDelete > 0 && (fromSpec === undefined || fromDelete < fromSpec) ? fromDelete : (fromSpec ?? defaultGraceSeconds);
  return Math.max(0, grace);
}

/** Makes a switch over a union exhaustive at compile time; throws if reached anyway. */
export function assertNever(value: never): never {
  throw new Error(`unhandled action ${JSON.stringify(value)}`);
}
