/**
 * The cluster's parallel migration limits, as KubeVirt's migration
 * controller applies them: at most `parallelMigrationsPerCluster`
 * migrations past Pending at once, and at most
 * `parallelOutboundMigrationsPerNode` of them leaving one source node. The
 * others wait in Pending and start as slots free, oldest first (creation
 * time, then name); one that waits for its node's slot does not hold back
 * younger ones from other nodes. Pure: the controller says which
 * migrations are in flight and which wait.
 */

/** A migration that holds a slot or asks for one. */
export interface SlotHolder {
  uid: string;
  /** The node the guest leaves. */
  sourceNode: string;
}

/** A Pending migration ready to start but for the limits. */
export interface SlotRequest extends SlotHolder {
  name: string;
  creationTimestamp: string;
}

export interface ParallelLimits {
  perCluster: number;
  perSourceNode: number;
}

/** Start now, or wait, with why (for the migration's Event). */
export type SlotVerdict = { start: true } | { start: false; message: string };

/**
 * Whether `request` may start now, given the migrations in flight and all
 * that wait (itself among them): the waiting ones are admitted oldest
 * first while the limits allow.
 */
export function slotVerdict(request: SlotRequest, inFlight: readonly SlotHolder[], waiting: readonly SlotRequest[], limits: ParallelLimits): SlotVerdict {
  let cluster = inFlight.length;
  const perNode = new Map<string, number>();
  for (const holder of inFlight) perNode.set(holder.sourceNode, (perNode.get(holder.sourceNode) ?? 0) + 1);
  const queue = [...waiting.filter((w) => w.uid !== request.uid), request].sort(olderFirst);
  for (const candidate of queue) {
    const fromNode = perNode.get(candidate.sourceNode) ?? 0;
    const fits = cluster < limits.perCluster && fromNode < limits.perSourceNode;
    if (candidate.uid === request.uid) {
      if (fits) return { start: true };
      if (cluster >= limits.perCluster) {
        const ahead = Math.max(0, cluster - inFlight.length);
        return { start: false, message: `waiting to start: ${inFlight.length} migrations run${ahead > 0 ? ` and ${ahead} older ones start` : ''}, the cluster's limit is ${limits.perCluster} (the KubeVirt CR's spec.configuration.migrations.parallelMigrationsPerCluster)` };
      }
      return { start: false, message: `waiting to start: ${fromNode} migrations leave node ${candidate.sourceNode}, the limit per node is ${limits.perSourceNode} (the KubeVirt CR's spec.configuration.migrations.parallelOutboundMigrationsPerNode)` };
    }
    if (fits) {
      cluster += 1;
      perNode.set(candidate.sourceNode, fromNode + 1);
    }
  }
  return { start: true };
}

function olderFirst(a: SlotRequest, b: SlotRequest): number {
  if (a.creationTimestamp !== b.creationTimestamp) return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
