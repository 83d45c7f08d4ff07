/**
 * Where an Immediate claim of a local class goes: a Ready, uncordoned node
 * that reports local storage with room for it, the one with the most left
 * (ties to the first name). Pure, for the volume controller.
 */
import type { KObject } from '../../api/object.js';
import { booleanAt, recordsAt } from '../../api/kinds/read.js';
import { formatBytes, freeBytes } from '../../storage/local/index.js';
import type { StorageView } from '../../storage/local/index.js';

function isReady(node: KObject): boolean {
  return recordsAt(node, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'True') && booleanAt(node, 'spec', 'unschedulable') !== true;
}

/** The node for a claim of `bytes`, or why none fits. */
export function pickNodeFor(bytes: number, nodes: readonly KObject[], view: StorageView): { node: string } | { reason: string } {
  const candidates: { name: string; free: number }[] = [];
  const refused: string[] = [];
  for (const node of nodes) {
    const name = node.metadata.name ?? '';
    const free = freeBytes(node, view);
    if (!isReady(node)) refused.push(`${name} is not ready or is cordoned`);
    else if (free === undefined) refused.push(`${name} reports no local storage`);
    else if (free < bytes) refused.push(`${name} has ${formatBytes(Math.max(0, free))} free`);
    else candidates.push({ name, free });
  }
  candidates.sort((a, b) => b.free - a.free || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const best = candidates[0];
  if (best !== undefined) return { node: best.name };
  return { reason: refused.length === 0 ? 'the cluster has no nodes' : refused.sort().join('; ') };
}
