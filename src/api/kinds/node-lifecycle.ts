/**
 * What the server's node lifecycle controller and the node agent agree on
 * when a node stops heartbeating: the grace period (kube-controller-manager's
 * `--node-monitor-grace-period`), which the server publishes on every Node
 * so that its agent learns it; the agent's fencing timeout and lease renew
 * interval derived from it; the taint and the reasons both write. Pure: no
 * I/O.
 */

/** kube-controller-manager's default `--node-monitor-grace-period` since Kubernetes 1.32 (40 s before). */
export const defaultNodeMonitorGracePeriodMs = 50_000;

/** Below this the agent could not renew often enough to keep a margin before it fences itself. */
export const minimumNodeMonitorGracePeriodMs = 6_000;

/** The annotation on each Node through which the server tells its agent the grace period, as a Go duration ("50s"). */
export const nodeMonitorGracePeriodAnnotation = 'vireo.io/node-monitor-grace-period';

/** The taint Kubernetes' node lifecycle controller puts on a node it no longer hears from. */
export const unreachableTaintKey = 'node.kubernetes.io/unreachable';

/** A VMI failed because its node's agent stopped heartbeating (KubeVirt's `NodeUnresponsiveReason`). */
export const nodeUnresponsiveReason = 'NodeUnresponsive';

/** A VMI whose guest its own agent killed, cut off from every server for too long (self-fencing). */
export const nodeFencedReason = 'NodeFenced';

/**
 * How long an agent may go without a successful Lease renew before it kills
 * its guests: the grace period less a margin (10 s, or a third of a short
 * grace period). The margin covers what makes the agent late (its kill,
 * its own checks, a stalled event loop); see {@link FenceClock} in the
 * agent for why counting from the renew's send is safe.
 */
export function fenceTimeoutMs(graceMs: number): number {
  return graceMs - Math.min(10_000, Math.floor(graceMs / 3));
}

/** How often the agent renews its Lease: the kubelet's 10 s, or often enough for four tries within a short fencing timeout. */
export function leaseRenewIntervalMs(graceMs: number): number {
  return Math.min(10_000, Math.floor(fenceTimeoutMs(graceMs) / 4));
}

/** Go's duration format, as kube's flags take it ("50s", "1m30s", "500ms"); undefined when `text` is not one. */
export function parseDurationMs(text: string): number | undefined {
  const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(m[1]) * (units[m[2] ?? ''] ?? 0);
  return Math.round(total);
}

/** `ms` as a Go duration, in whole seconds when it is one ("12s"), else milliseconds. */
export function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
