/**
 * Status conditions as Kubernetes and KubeVirt keep them: one entry per
 * type, `lastTransitionTime` moving only when the status flips, so a
 * level-based controller that recomputes conditions on every pass writes
 * nothing when nothing changed.
 */
import { isPlainObject } from '../../api/object.js';
import type { KObject } from '../../api/object.js';
import { arrayAt } from '../../api/kinds/read.js';

/** One status condition (VM, VMI, replica set, node). */
export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string | null;
}

/** An RFC 3339 timestamp with second precision, as `metav1.Time` serialises. */
export function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The well-formed conditions under `status.conditions`. */
export function conditionsOf(obj: KObject | undefined): Condition[] {
  const out: Condition[] = [];
  for (const item of arrayAt(obj, 'status', 'conditions')) {
    if (!isPlainObject(item) || typeof item.type !== 'string' || typeof item.status !== 'string') continue;
    const c: Condition = { type: item.type, status: item.status };
    if (typeof item.reason === 'string') c.reason = item.reason;
    if (typeof item.message === 'string') c.message = item.message;
    if (typeof item.lastProbeTime === 'string' || item.lastProbeTime === null) c.lastProbeTime = item.lastProbeTime;
    if (typeof item.lastTransitionTime === 'string' || item.lastTransitionTime === null) c.lastTransitionTime = item.lastTransitionTime;
    out.push(c);
  }
  return out;
}

/** The condition of `type`, if any. */
export function findCondition(conditions: readonly Condition[], type: string): Condition | undefined {
  return conditions.find((c) => c.type === type);
}

/** True when `obj` has condition `type` with `status` (and `reason`, when given). */
export function hasCondition(obj: KObject | undefined, type: string, status: string, reason?: string): boolean {
  const c = findCondition(conditionsOf(obj), type);
  return c !== undefined && c.status === status && (reason === undefined || c.reason === reason);
}

/**
 * Puts `next` in place of the condition of the same type. An unchanged
 * status keeps the old `lastTransitionTime`; an entry identical in status,
 * reason and message is kept as it was, timestamps included.
 */
export function setCondition(conditions: readonly Condition[], next: Condition): Condition[] {
  const old = findCondition(conditions, next.type);
  if (old !== undefined && old.status === next.status && old.reason === next.reason && old.message === next.message) return [...conditions];
  const merged: Condition = { ...next };
  if (old !== undefined && old.status === next.status && old.lastTransitionTime !== undefined) merged.lastTransitionTime = old.lastTransitionTime;
  const index = conditions.findIndex((c) => c.type === next.type);
  if (index < 0) return [...conditions, merged];
  return conditions.map((c, i) => (i === index ? merged : c));
}

/** The conditions without `type`. */
export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}
