/**
 * What the VM controller, the replica set controller and the scheduler read
 * off a VirtualMachineInstance: its phase (KubeVirt's `IsFinal`,
 * `IsUnprocessed`…), its node, its controller, and the constants KubeVirt's
 * components agree on.
 */
import type { KObject, OwnerReference } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { arrayAt } from '../../api/kinds/read.js';
import { vmiPhase, vmiPhases } from '../../api/kinds/vm-state.js';

export { isFinal, isMarkedForDeletion, nodeNameOf, vmiPhase, vmiPhases } from '../../api/kinds/vm-state.js';

/** `kubevirt.io/v1`, the version Vireo's controllers write. */
export const kubevirtApiVersion = 'kubevirt.io/v1';

/** Condition types KubeVirt puts on VMIs and mirrors onto VMs. */
export const conditionTypes = {
  ready: 'Ready',
  paused: 'Paused',
  failure: 'Failure',
  restartRequired: 'RestartRequired',
  podScheduled: 'PodScheduled',
  synchronized: 'Synchronized',
} as const;

/** Not yet picked up: no phase, or Pending. */
export function isUnprocessed(vmi: KObject): boolean {
  const phase = vmiPhase(vmi);
  return phase === vmiPhases.unset || phase === vmiPhases.pending;
}

/**
 * True when the VMI ever reached Running, by its phase transition history
 * (KubeVirt's `wasVMIInRunningPhase`) or because it runs now.
 */
export function wasRunning(vmi: KObject | undefined): boolean {
  if (vmi === undefined) return false;
  if (vmiPhase(vmi) === vmiPhases.running) return true;
  return arrayAt(vmi, 'status', 'phaseTransitionTimestamps').some((t) => isPlainObject(t) && t.phase === vmiPhases.running);
}

/** The owner reference marked `controller: true`, if any. */
export function controllerRefOf(obj: KObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** True when `owner` is the controller of `obj` (by uid, as Kubernetes matches it). */
export function isControlledBy(obj: KObject, owner: KObject): boolean {
  const ref = controllerRefOf(obj);
  return ref !== undefined && ref.uid === owner.metadata.uid;
}

/** A controller reference to `owner`, as `metav1.NewControllerRef` makes it. */
export function controllerRefTo(owner: KObject): OwnerReference {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name ?? '',
    uid: owner.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** `namespace/name` of an object, as informers key it. */
export function keyOf(obj: KObject): string {
  const ns = obj.metadata.namespace;
  return ns === undefined || ns === '' ? (obj.metadata.name ?? '') : `${ns}/${obj.metadata.name ?? ''}`;
}

/** The fields every structured log line about `obj` carries. */
export function logFieldsOf(obj: KObject): { namespace: string | undefined; name: string | undefined; uid: string | undefined; kind: string } {
  return { namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid, kind: obj.kind };
}

/** The message of any thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** JSON with sorted keys and no undefined members, so equal values compare and hash equal. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
