/**
 * Picking a node for one VMI: filter every node, then prefer the one left
 * least allocated (kube-scheduler's `LeastAllocated` score over CPU and
 * memory), plus its preferred node affinity; ties go to the first name.
 * A node `preferred` says holds the data of a clone comes before all
 * others that fit (the clone is instant there, a full copy elsewhere).
 * A pure function of the VMI, the nodes and what is already placed. The
 * volume step (`volumes.ts`) runs after the resource fit, as
 * kube-scheduler's VolumeBinding filter follows NodeResourcesFit.
 */
import type { KObject } from '../api/object.js';
import { filterNode, preferredAffinityWeight, unschedulableMessage } from './filters.js';
import type { Resources } from './resources.js';
import { nodeAllocatable, zero } from './resources.js';

/** The node chosen, or kube-scheduler's message for why there is none. */
export type Placement = { node: string } | { unschedulable: string };

/** Where `vmi` (needing `request`) goes, given `used` per node name and why its volumes refuse a node. */
export function place(vmi: KObject, request: Resources, nodes: readonly KObject[], used: ReadonlyMap<string, Resources>, volumes: (node: KObject) => string[] = () => [], preferred: (node: KObject) => boolean = () => false): Placement {
  const failures: string[][] = [];
  const candidates: { name: string; fit: number; affinity: number; preferred: boolean }[] = [];
  for (const node of nodes) {
    const name = node.metadata.name ?? '';
    const allocatable = nodeAllocatable(node);
    const taken = used.get(name) ?? zero;
    const free = { cpu: allocatable.cpu - taken.cpu, memory: allocatable.memory - taken.memory };
    const short = filterNode(vmi, node, free, request);
    const reasons = short.length > 0 ? short : volumes(node);
    if (reasons.length > 0) {
      failures.push(reasons);
      continue;
    }
    const share = (left: number, total: number): number => (total > 0 ? Math.max(0, left) / total : 0);
    const fit = ((share(free.cpu - request.cpu, allocatable.cpu) + share(free.memory - request.memory, allocatable.memory)) / 2) * 100;
    candidates.push({ name, fit, affinity: preferredAffinityWeight(vmi, node), preferred: preferred(node) });
  }
  if (candidates.length === 0) return { unschedulable: unschedulableMessage(nodes.length, failures) };
  const maxAffinity = Math.max(1, ...candidates.map((c) => c.affinity));
  // kube-scheduler weighs NodeAffinity twice NodeResourcesFit, each normalised to 0–100.
  const score = (c: { fit: number; affinity: number }): number => c.fit + 2 * ((c.affinity / maxAffinity) * 100);
  candidates.sort((a, b) => Number(b.preferred) - Number(a.preferred) || score(b) - score(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const best = candidates[0];
  return best === undefined ? { unschedulable: unschedulableMessage(nodes.length, failures) } : { node: best.name };
}
