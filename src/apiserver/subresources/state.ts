/**
 * What the subresources read from VirtualMachines and their instances
 * beyond the shared readers of `api/kinds/vm-state.ts`: the run strategy
 * as admission left it, conditions, and the VM's pending state-change
 * requests, with KubeVirt's meaning of each.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { arrayAt, recordsAt } from '../../api/kinds/read.js';
import type { RunStrategy } from '../../api/kinds/vm-state.js';
import { runStrategyOf as parseRunStrategy } from '../../api/kinds/vm-state.js';

/**
 * The VM's run strategy; Halted for a spec admission would have refused
 * (it keeps `running` and `runStrategy` exclusive and the value known).
 */
export function runStrategyOf(vm: KObject): RunStrategy {
  const parsed = parseRunStrategy(vm);
  return 'strategy' in parsed ? parsed.strategy : 'Halted';
}

/** True when the VM spells its strategy with the deprecated `spec.running`. */
export function usesRunningField(vm: KObject): boolean {
  return isPlainObject(vm.spec) && typeof vm.spec.running === 'boolean' && vm.spec.runStrategy === undefined;
}

/** True when the object has a condition of `type` whose status is True. */
export function hasTrueCondition(obj: KObject, type: string): boolean {
  return recordsAt(obj, 'status', 'conditions').some((c) => c.type === type && c.status === 'True');
}

/** The VM's pending state-change requests (kept raw: they are only compared and replaced). */
export function pendingRequestsOf(vm: KObject): unknown[] {
  return arrayAt(vm, 'status', 'stateChangeRequests');
}
