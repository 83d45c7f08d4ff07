/**
 * Whether a VMI may go to a node, as kube-scheduler's default filter
 * plugins decide it, in their order (NodeUnschedulable, TaintToleration,
 * NodeAffinity, NodeResourcesFit), with their reasons, so "nothing fits"
 * reads as Kubernetes users know it: `0/2 nodes are available: 1 Insufficient
 * memory, 1 node(s) didn't match Pod's node affinity/selector.`
 */
import type { KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
import { arrayAt, booleanAt, numberAt, recordAt, recordsAt, stringMapAt } from '../api/kinds/read.js';
import { conditionsOf, findCondition } from '../controllers/vmi/index.js';
import type { Resources } from './resources.js';

/** A node taint (`spec.taints[]`), with `value` '' when unset. */
export interface Taint {
  key: string;
  value: string;
  effect: string;
}

/** The taint Kubernetes puts on cordoned nodes; tolerating it ignores the cordon. */
const unschedulableTaint = 'node.kubernetes.io/unschedulable';

/** kube-scheduler's per-node failure reasons, word for word. */
export const reasons = {
  unschedulable: 'node(s) were unschedulable',
  affinity: "node(s) didn't match Pod's node affinity/selector",
  cpu: 'Insufficient cpu',
  memory: 'Insufficient memory',
  taint: (t: Taint): string => `node(s) had untolerated taint {${t.key}: ${t.value}}`,
} as const;

/**
 * The node's taints, with those Kubernetes' node lifecycle controller adds
 * for a node that is not Ready (`not-ready`) or not heard from
 * (`unreachable`), so a node whose agent is down takes no new VMIs.
 */
export function nodeTaints(node: KObject): Taint[] {
  const taints: Taint[] = recordsAt(node, 'spec', 'taints')
    .filter((t) => typeof t.key === 'string' && typeof t.effect === 'string')
    .map((t) => ({ key: String(t.key), value: typeof t.value === 'string' ? t.value : '', effect: String(t.effect) }));
  const ready = findCondition(conditionsOf(node), 'Ready');
  const implicit = ready?.status === 'True' ? undefined : ready?.status === 'Unknown' ? 'node.kubernetes.io/unreachable' : 'node.kubernetes.io/not-ready';
  if (implicit !== undefined && !taints.some((t) => t.key === implicit && t.effect === 'NoSchedule')) taints.push({ key: implicit, value: '', effect: 'NoSchedule' });
  return taints;
}

/** True when one of `tolerations` tolerates `taint` (`Toleration.ToleratesTaint`). */
export function tolerates(tolerations: readonly Record<string, unknown>[], taint: Taint): boolean {
  return tolerations.some((t) => {
    const effect = typeof t.effect === 'string' ? t.effect : '';
    if (effect !== '' && effect !== taint.effect) return false;
    const key = typeof t.key === 'string' ? t.key : '';
    const operator = typeof t.operator === 'string' && t.operator !== '' ? t.operator : 'Equal';
    if (key === '') return operator === 'Exists';
    if (key !== taint.key) return false;
    if (operator === 'Exists') return true;
    return operator === 'Equal' && (typeof t.value === 'string' ? t.value : '') === taint.value;
  });
}

/** One `NodeSelectorRequirement` against a node's labels or (for `matchFields`) its name. */
function requirementMatches(requirement: Record<string, unknown>, value: string | undefined): boolean {
  const values = arrayAt(requirement, 'values').filter((v): v is string => typeof v === 'string');
  switch (requirement.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1 || !/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0] ?? '')) return false;
      const have = Number(value);
      const want = Number(values[0]);
      return requirement.operator === 'Gt' ? have > want : have < want;
    }
    default:
      return false;
  }
}

/** A `NodeSelectorTerm`: its expressions and fields ANDed; an empty term matches nothing. */
function termMatches(term: Record<string, unknown>, node: KObject): boolean {
  const expressions = recordsAt(term, 'matchExpressions');
  const fields = recordsAt(term, 'matchFields');
  if (expressions.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  return (
    expressions.every((r) => requirementMatches(r, typeof r.key === 'string' ? labels[r.key] : undefined)) &&
    fields.every((r) => r.key === 'metadata.name' && requirementMatches(r, node.metadata.name))
  );
}

/** A `NodeSelector`: its terms ORed (a VMI's required affinity, a PersistentVolume's node affinity). */
export function matchesNodeSelector(selector: Record<string, unknown>, node: KObject): boolean {
  return recordsAt(selector, 'nodeSelectorTerms').some((term) => termMatches(term, node));
}

/** `spec.nodeSelector` and the required node affinity terms (ORed). */
export function matchesNodeAffinity(vmi: KObject, node: KObject): boolean {
  const labels = node.metadata.labels ?? {};
  for (const [key, value] of Object.entries(stringMapAt(vmi, 'spec', 'nodeSelector'))) if (labels[key] !== value) return false;
  const required = recordAt(vmi, 'spec', 'affinity', 'nodeAffinity', 'requiredDuringSchedulingIgnoredDuringExecution');
  if (required === undefined) return true;
  return matchesNodeSelector(required, node);
}

/** Sum of the weights of the preferred node affinity terms the node matches. */
export function preferredAffinityWeight(vmi: KObject, node: KObject): number {
  let total = 0;
  for (const term of arrayAt(vmi, 'spec', 'affinity', 'nodeAffinity', 'preferredDuringSchedulingIgnoredDuringExecution')) {
    if (!isPlainObject(term)) continue;
    const preference = recordAt(term, 'preference');
    if (preference !== undefined && termMatches(preference, node)) total += numberAt(term, 'weight') ?? 0;
  }
  return total;
}

/**
 * Why `node` cannot take `vmi` (the first failing filter's reasons); empty
 * when it can. `free` is what the node has left; `request` what the VMI needs.
 */
export function filterNode(vmi: KObject, node: KObject, free: Resources, request: Resources): string[] {
  const tolerations = recordsAt(vmi, 'spec', 'tolerations');
  if (booleanAt(node, 'spec', 'unschedulable') === true && !tolerates(tolerations, { key: unschedulableTaint, value: '', effect: 'NoSchedule' })) return [reasons.unschedulable];
  const untolerated = nodeTaints(node).find((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerates(tolerations, t));
  if (untolerated !== undefined) return [reasons.taint(untolerated)];
  if (!matchesNodeAffinity(vmi, node)) return [reasons.affinity];
  const short: string[] = [];
  if (request.cpu > free.cpu) short.push(reasons.cpu);
  if (request.memory > free.memory) short.push(reasons.memory);
  return short;
}

/** kube-scheduler's `FitError` message for `nodes` nodes that all failed with `failures`. */
export function unschedulableMessage(nodes: number, failures: readonly string[][]): string {
  if (nodes === 0) return 'no nodes available to schedule pods';
  const histogram = new Map<string, number>();
  for (const node of failures) for (const reason of node) histogram.set(reason, (histogram.get(reason) ?? 0) + 1);
  const parts = [...histogram].map(([reason, count]) => `${count} ${reason}`).sort();
  return `0/${nodes} nodes are available: ${parts.join(', ')}.`;
}

