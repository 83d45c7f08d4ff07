/**
 * The parts of a VMI's status the agent writes (virt-handler's share in
 * KubeVirt): phase with its transition timestamps, conditions with
 * KubeVirt's types and reasons, and the runtime facts of a running guest.
 * Updates are computed against the object as read and sent as merge
 * patches pinned to its resourceVersion, so nobody's write is lost.
 */
import type { KObject } from '../api/object.js';
import { numberAt, recordAt, recordsAt, stringAt } from '../api/kinds/read.js';
import { parseQuantity } from '../api/validation/quantity.js';
import { vmiPhase } from '../api/kinds/vm-state.js';

/** KubeVirt's VMI phases. */
export type VmiPhase = 'Pending' | 'Scheduling' | 'Scheduled' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

/** A condition's status, as Kubernetes spells it. */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A VMI condition as stored. */
export interface VmiCondition {
  type: string;
  status: ConditionStatus;
  reason?: string;
  message?: string;
  lastProbeTime: string | null;
  lastTransitionTime: string | null;
}

/** A condition as the agent wants it; times are filled in. */
export type DesiredCondition = Pick<VmiCondition, 'type' | 'status'> & { reason?: string; message?: string };

/** What the agent wants changed in a VMI's status. */
export interface StatusUpdate {
  phase?: VmiPhase;
  /** Conditions to set (their transition time is kept when the status does not change). */
  set?: DesiredCondition[];
  /** Condition types to remove. */
  remove?: string[];
  /** Other top-level status fields, replaced as given. */
  fields?: Record<string, unknown>;
}

/** The VMI finalizer the agent holds while the node has anything of the VMI (QEMU, files). */
export const agentFinalizer = 'vireo.io/agent-cleanup';

/** True while the agent's finalizer holds the VMI. */
export function hasAgentFinalizer(vmi: KObject): boolean {
  return (vmi.metadata.finalizers ?? []).includes(agentFinalizer);
}

/** The VMI's conditions that parse as conditions. */
export function conditionsOf(vmi: KObject): VmiCondition[] {
  return recordsAt(vmi, 'status', 'conditions').flatMap((c) => {
    const type = stringAt(c, 'type');
    const status = stringAt(c, 'status');
    if (type === undefined || (status !== 'True' && status !== 'False' && status !== 'Unknown')) return [];
    const out: VmiCondition = { type, status, lastProbeTime: stringAt(c, 'lastProbeTime') ?? null, lastTransitionTime: stringAt(c, 'lastTransitionTime') ?? null };
    const reason = stringAt(c, 'reason');
    const message = stringAt(c, 'message');
    if (reason !== undefined) out.reason = reason;
    if (message !== undefined) out.message = message;
    return [out];
  });
}

/** The VMI's condition of `type`, if any. */
export function conditionOf(vmi: KObject, type: string): VmiCondition | undefined {
  return conditionsOf(vmi).find((c) => c.type === type);
}

/**
 * The merge-patch body that applies `update` to `vmi`'s status, pinned to
 * its resourceVersion; undefined when the status already says all of it.
 */
export function statusPatch(vmi: KObject, update: StatusUpdate, now: Date = new Date()): Record<string, unknown> | undefined {
  const stamp = rfc3339(now);
  const status: Record<string, unknown> = {};
  const phase = vmiPhase(vmi);
  if (update.phase !== undefined && update.phase !== phase) {
    status.phase = update.phase;
    const transitions = recordsAt(vmi, 'status', 'phaseTransitionTimestamps');
    status.phaseTransitionTimestamps = [...transitions, { phase: update.phase, phaseTransitionTimestamp: stamp }];
  }
  const before = conditionsOf(vmi);
  let after = before.filter((c) => !(update.remove ?? []).includes(c.type));
  for (const want of update.set ?? []) after = withCondition(after, want, stamp);
  if (!sameConditions(before, after)) status.conditions = after;
  for (const [field, value] of Object.entries(update.fields ?? {})) {
    if (JSON.stringify(recordAt(vmi, 'status')?.[field]) !== JSON.stringify(value)) status[field] = value;
  }
  if (Object.keys(status).length === 0) return undefined;
  return { metadata: { resourceVersion: vmi.metadata.resourceVersion }, status };
}

function withCondition(list: VmiCondition[], want: DesiredCondition, stamp: string): VmiCondition[] {
  const old = list.find((c) => c.type === want.type);
  const next: VmiCondition = {
    type: want.type,
    status: want.status,
    lastProbeTime: null,
    lastTransitionTime: old !== undefined && old.status === want.status ? old.lastTransitionTime : stamp,
  };
  if (want.reason !== undefined) next.reason = want.reason;
  if (want.message !== undefined) next.message = want.message;
  if (old === undefined) return [...list, next];
  return list.map((c) => (c === old ? next : c));
}

function sameConditions(a: VmiCondition[], b: VmiCondition[]): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Kubernetes' metav1.Time: seconds precision, UTC. */
export function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Status fields a running guest reports besides phase and conditions. */
export function runtimeFields(vmi: KObject, nodeName: string): Record<string, unknown> {
  const cpu = ['spec', 'domain', 'cpu'];
  const memory = stringAt(vmi, 'spec', 'domain', 'memory', 'guest') ?? quantityString(vmi, 'spec', 'domain', 'resources', 'requests', 'memory');
  const fields: Record<string, unknown> = {
    nodeName,
    guestOSInfo: {},
    machine: { type: stringAt(vmi, 'spec', 'domain', 'machine', 'type') ?? 'q35' },
    currentCPUTopology: {
      sockets: numberAt(vmi, ...cpu, 'sockets') ?? 1,
      cores: numberAt(vmi, ...cpu, 'cores') ?? 1,
      threads: numberAt(vmi, ...cpu, 'threads') ?? 1,
    },
    qosClass: qosClass(vmi),
  };
  if (memory !== undefined) fields.memory = { guestAtBoot: memory, guestCurrent: memory, guestRequested: memory };
  return fields;
}

function quantityString(vmi: KObject, ...path: string[]): string | undefined {
  const value = recordAt(vmi, ...path.slice(0, -1))?.[path[path.length - 1] ?? ''];
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : undefined;
}

/** Kubernetes' QoS class of the compute resources, as a launcher pod would get it. */
function qosClass(vmi: KObject): 'Guaranteed' | 'Burstable' | 'BestEffort' {
  const requests = recordAt(vmi, 'spec', 'domain', 'resources', 'requests') ?? {};
  const limits = recordAt(vmi, 'spec', 'domain', 'resources', 'limits') ?? {};
  if (Object.keys(requests).length === 0 && Object.keys(limits).length === 0) return 'BestEffort';
  const guaranteed = ['cpu', 'memory'].every((r) => {
    const limit = parseQuantity(limits[r]);
    const request = requests[r] === undefined ? limit : parseQuantity(requests[r]);
    return limit !== undefined && request === limit;
  });
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

