/**
 * `start`, `stop`, `restart` and `migrate` on a VirtualMachine, with the
 * semantics of KubeVirt's virt-api (`pkg/virt-api/rest/lifecycle.go`): each
 * run strategy either flips `spec.runStrategy` (Always ⇄ Halted) or leaves
 * a request in `status.stateChangeRequests` for the VM controller, which
 * acts on `[{action: Stop, uid}, {action: Start}]`. The decisions are pure
 * functions of the VM and its VMI; the writes retry on a concurrent update.
 */
import { ApiError, conflict } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import type { SubresourceContext } from './context.js';
import { kubevirtDefs, migrationDef } from './context.js';
import type { MigrateOptions, RestartOptions, StartOptions, StopOptions } from './options.js';
import type { StateChangeRequest } from '../../api/kinds/vm-state.js';
import { isFinal, vmiPhase } from '../../api/kinds/vm-state.js';
import { hasTrueCondition, pendingRequestsOf, runStrategyOf, usesRunningField } from './state.js';

/** What an action changes on the VM. */
export type VmWrite =
  | { target: 'runStrategy'; value: 'Always' | 'Halted' }
  | { target: 'stateChangeRequests'; requests: StateChangeRequest[] };

export interface LifecycleDecision {
  write: VmWrite;
  /** Set the running VMI's `terminationGracePeriodSeconds` first (stop with a grace period, force restart). */
  vmiGracePeriod?: number;
}

function vmConflict(vm: KObject, why: string): ApiError {
  return conflict('virtualmachine', 'kubevirt.io', vm.metadata.name ?? '', why);
}

/**
 * Adds requests the way KubeVirt's `getChangeRequestJson` does: onto an
 * empty list; a lone Stop replaces whatever is pending; anything else while
 * requests are pending is refused.
 */
export function requestsWrite(vm: KObject, changes: StateChangeRequest[]): VmWrite {
  const pending = pendingRequestsOf(vm);
  const loneStop = changes.length === 1 && changes[0]?.action === 'Stop';
  if (pending.length > 0 && !loneStop) {
    throw vmConflict(vm, 'a start or stop of this VM is already underway (status.stateChangeRequests is not empty): wait until the VM controller has acted on it, then try again');
  }
  return { target: 'stateChangeRequests', requests: changes };
}

function uidOf(vmi: KObject): string {
  return vmi.metadata.uid ?? '';
}

export function decideStart(vm: KObject, vmi: KObject | undefined, options: StartOptions): LifecycleDecision {
  if (vmi !== undefined && !isFinal(vmi) && vmiPhase(vmi) !== 'Unknown' && vmiPhase(vmi) !== '') {
    throw vmConflict(vm, 'VM is already running');
  }
  const start: StateChangeRequest = options.paused ? { action: 'Start', data: { paused: 'true' } } : { action: 'Start' };
  const strategy = runStrategyOf(vm);
  switch (strategy) {
    case 'Halted':
      // A paused start needs the request's data; the VM controller then sets the run strategy itself.
      return { write: options.paused ? requestsWrite(vm, [start]) : { target: 'runStrategy', value: 'Always' } };
    case 'RerunOnFailure':
      if (vmi !== undefined && vmiPhase(vmi) === 'Failed') throw vmConflict(vm, 'RerunOnFailure does not support starting VM from failed state: the VM controller restarts a failed guest by itself');
      return { write: requestsWrite(vm, vmi !== undefined && vmiPhase(vmi) === 'Succeeded' ? [{ action: 'Stop', uid: uidOf(vmi) }, start] : [start]) };
    case 'Manual':
      return { write: requestsWrite(vm, vmi !== undefined && isFinal(vmi) ? [{ action: 'Stop', uid: uidOf(vmi) }, start] : [start]) };
    case 'Always':
    case 'Once':
      throw vmConflict(vm, `${strategy} does not support manual start requests: the VM controller starts it by itself`);
  }
}

export function decideStop(vm: KObject, vmi: KObject | undefined, options: StopOptions): LifecycleDecision {
  const running = vmi !== undefined && !isFinal(vmi);
  const grace = running && options.gracePeriod !== undefined ? { vmiGracePeriod: options.gracePeriod } : {};
  const strategy = runStrategyOf(vm);
  switch (strategy) {
    case 'Always':
    case 'Once':
      return { write: { target: 'runStrategy', value: 'Halted' }, ...grace };
    case 'RerunOnFailure':
    case 'Manual':
      if (vmi === undefined || !running) throw vmConflict(vm, 'VM is not running');
      return { write: requestsWrite(vm, [{ action: 'Stop', uid: uidOf(vmi) }]), ...grace };
    case 'Halted': {
      if (vmi === undefined || !running) throw vmConflict(vm, 'VM is not running');
      const current = vmi.spec !== undefined && isPlainObject(vmi.spec) ? vmi.spec.terminationGracePeriodSeconds : undefined;
      if (options.gracePeriod === undefined || (typeof current === 'number' && options.gracePeriod >= current)) {
        throw vmConflict(vm, 'Halted only supports manual stop requests with a shorter graceperiod: the VM is already stopping; pass a shorter grace period to stop it sooner');
      }
      return { write: requestsWrite(vm, [{ action: 'Stop', uid: uidOf(vmi) }]), ...grace };
    }
  }
}

export function decideRestart(vm: KObject, vmi: KObject | undefined, options: RestartOptions): LifecycleDecision {
  const strategy = runStrategyOf(vm);
  if (strategy === 'Halted' || strategy === 'Once') {
    throw vmConflict(vm, `RunStrategy ${strategy} does not support manual restart requests: start the VM instead`);
  }
  if (vmi === undefined) throw vmConflict(vm, 'VM is not running');
  const force = options.gracePeriodSeconds === 0 && !isFinal(vmi) ? { vmiGracePeriod: 0 } : {};
  return { write: requestsWrite(vm, [{ action: 'Stop', uid: uidOf(vmi) }, { action: 'Start' }]), ...force };
}

/** A write lost to a concurrent update (compare-and-swap), as opposed to a refusal: worth re-deciding. */
function isStaleWrite(err: unknown): boolean {
  return err instanceof ApiError && err.reason === 'Conflict' && err.message.includes('the object has been modified');
}

/** Reads the VM and its VMI, decides, writes; on a lost race reads again (KubeVirt's patches carry a `test` op instead). */
export async function applyLifecycle(
  context: SubresourceContext,
  target: { namespace: string; name: string; dryRun: boolean },
  decide: (vm: KObject, vmi: KObject | undefined) => LifecycleDecision,
): Promise<void> {
  const defs = kubevirtDefs(context.registry);
  for (let attempt = 1; ; attempt++) {
    const vm = await context.objects.get(defs.vm, target.namespace, target.name);
    const vmi = await context.objects.tryGet(defs.vmi, target.namespace, target.name);
    const decision = decide(vm, vmi);
    try {
      if (decision.vmiGracePeriod !== undefined && vmi !== undefined) await setGracePeriod(context, vmi, decision.vmiGracePeriod, target.dryRun);
      await writeVm(context, vm, decision.write, target.dryRun);
      return;
    } catch (err) {
      if (attempt < 5 && isStaleWrite(err)) continue;
      throw err;
    }
  }
}

async function setGracePeriod(context: SubresourceContext, vmi: KObject, seconds: number, dryRun: boolean): Promise<void> {
  const next = structuredClone(vmi);
  next.spec = { ...(isPlainObject(next.spec) ? next.spec : {}), terminationGracePeriodSeconds: seconds };
  // virt-api changes a running VMI's spec as a KubeVirt component; a user may not.
  await context.objects.replace(kubevirtDefs(context.registry).vmi, vmi, next, { writer: 'controller', dryRun });
}

async function writeVm(context: SubresourceContext, vm: KObject, write: VmWrite, dryRun: boolean): Promise<void> {
  const def = kubevirtDefs(context.registry).vm;
  const next = structuredClone(vm);
  if (write.target === 'runStrategy') {
    const spec = isPlainObject(next.spec) ? next.spec : {};
    if (usesRunningField(vm)) spec.running = write.value === 'Always';
    else spec.runStrategy = write.value;
    next.spec = spec;
    await context.objects.replace(def, vm, next, { writer: 'user', dryRun });
    return;
  }
  const status = isPlainObject(next.status) ? next.status : {};
  status.stateChangeRequests = write.requests;
  // A new request supersedes the last failed start, as in KubeVirt.
  delete status.startFailure;
  next.status = status;
  await context.objects.replace(def, vm, next, { subresource: 'status', writer: 'user', dryRun });
}

/** `migrate`: a VirtualMachineInstanceMigration for the running VMI (KubeVirt's `MigrateVMRequestHandler`). */
export async function migrateVm(context: SubresourceContext, target: { namespace: string; name: string }, options: MigrateOptions): Promise<void> {
  const defs = kubevirtDefs(context.registry);
  const vm = await context.objects.get(defs.vm, target.namespace, target.name);
  const vmi = await context.objects.get(defs.vmi, target.namespace, target.name);
  if (vmiPhase(vmi) !== 'Running') throw vmConflict(vm, 'VM is not running');
  if (hasTrueCondition(vm, 'Paused')) throw vmConflict(vm, 'VM is paused: unpause it before migrating');
  const migration: KObject = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { generateName: 'kubevirt-migrate-vm-', namespace: target.namespace },
    spec: { vmiName: target.name, ...(options.addedNodeSelector === undefined ? {} : { addedNodeSelector: options.addedNodeSelector }) },
  };
  await context.objects.create(migrationDef(context.registry), target.namespace, migration, { writer: 'user', dryRun: options.dryRun });
}
