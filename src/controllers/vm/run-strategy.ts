/**
 * What a VirtualMachine's run strategy and its pending state change
 * requests ask of its VMI, as KubeVirt's `syncRunStrategy` decides it: a
 * pure function of the VM, the VMI and the crash-loop backoff left.
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import type { RunStrategy, StateChangeRequest } from '../../api/kinds/vm-state.js';
import { isFinal, isMarkedForDeletion, vmiPhase, vmiPhases } from '../vmi/index.js';

export { runStrategies, runStrategyOf, stateChangeRequestsOf } from '../../api/kinds/vm-state.js';
export type { RunStrategy, StateChangeRequest } from '../../api/kinds/vm-state.js';

/** What to do with the VMI on this pass. */
export type Decision =
  | { action: 'none' }
  | { action: 'start'; paused: boolean }
  /** Delete the VMI; `rerun` asks for a Start request first (RerunOnFailure after a failure). */
  | { action: 'stop'; rerun: boolean }
  /** The crash-loop backoff has `ms` left before the next start. */
  | { action: 'wait'; ms: number }
  /** A Halted VM got a Start request: it becomes Always. */
  | { action: 'runAlways' };

function hasStartRequest(requests: readonly StateChangeRequest[]): boolean {
  return requests[0]?.action === 'Start';
}

function hasStartPausedRequest(requests: readonly StateChangeRequest[]): boolean {
  return hasStartRequest(requests) && requests[0]?.data?.paused === 'true';
}

/** KubeVirt acts on one request at a time: the first, when it stops this very VMI. */
function hasStopRequestFor(requests: readonly StateChangeRequest[], vmi: KObject): boolean {
  const first = requests[0];
  return first?.action === 'Stop' && first.uid !== undefined && first.uid === vmi.metadata.uid;
}

/** What {@link decide} looks at. */
export interface DecideInput {
  strategy: RunStrategy;
  /** The VMI of the same name, owned by the VM; undefined when there is none. */
  vmi: KObject | undefined;
  requests: readonly StateChangeRequest[];
  /** `status.runStrategy`: the strategy seen when a VMI last existed (RerunOnFailure starts once after a switch). */
  lastRunStrategy: string | undefined;
  /** Crash-loop backoff left before a start, in ms (0 when none). */
  backoffLeftMs: number;
}

/** The step toward what the run strategy and requests ask for. */
export function decide(input: DecideInput): Decision {
  const { strategy, vmi, requests } = input;
  const start = (): Decision => (input.backoffLeftMs > 0 ? { action: 'wait', ms: input.backoffLeftMs } : { action: 'start', paused: hasStartPausedRequest(requests) });
  const none: Decision = { action: 'none' };
  const stop: Decision = { action: 'stop', rerun: false };
  switch (strategy) {
    case 'Always':
      if (vmi === undefined) return start();
      // A restart is a stop of this VMI; the next pass starts a new one.
      return !isMarkedForDeletion(vmi) && (hasStopRequestFor(requests, vmi) || isFinal(vmi)) ? stop : none;
    case 'RerunOnFailure': {
      if (vmi !== undefined) {
        if (isMarkedForDeletion(vmi)) return none;
        const failed = vmiPhase(vmi) === vmiPhases.failed;
        if (hasStopRequestFor(requests, vmi) || failed || vmiPhase(vmi) === vmiPhases.succeeded) return { action: 'stop', rerun: failed };
        return none;
      }
      return hasStartRequest(requests) || input.lastRunStrategy !== strategy ? start() : none;
    }
    case 'Manual':
      if (vmi !== undefined) return !isMarkedForDeletion(vmi) && hasStopRequestFor(requests, vmi) ? stop : none;
      return hasStartRequest(requests) ? { action: 'start', paused: hasStartPausedRequest(requests) } : none;
    case 'Halted':
      if (vmi === undefined) return hasStartRequest(requests) ? { action: 'runAlways' } : none;
      return isMarkedForDeletion(vmi) ? none : stop;
    case 'Once':
      return vmi === undefined ? { action: 'start', paused: hasStartPausedRequest(requests) } : none;
  }
}

/**
 * Drops the first request once it was acted on (KubeVirt's
 * `isTrimFirstChangeRequestNeeded`): a Stop when its VMI is gone (or is
 * another one), a Start once a live VMI exists. `vmi` is the VMI after this
 * pass's action; a VMI this pass asked to delete still counts as there.
 */
export function trimRequests(requests: readonly StateChangeRequest[], vmi: KObject | undefined): StateChangeRequest[] {
  const first = requests[0];
  if (first === undefined) return [];
  let done = false;
  if (first.action === 'Stop') done = vmi === undefined || first.uid === undefined || first.uid !== vmi.metadata.uid;
  else if (first.action === 'Start') done = vmi !== undefined && !isMarkedForDeletion(vmi) && !isFinal(vmi);
  return done ? requests.slice(1) : [...requests];
}

/** The VM's `status.runStrategy`, if recorded. */
export function lastRunStrategyOf(vm: KObject): string | undefined {
  return stringAt(vm, 'status', 'runStrategy');
}
