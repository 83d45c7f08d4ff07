/**
 * The scheduler's volume step, as kube-scheduler's VolumeBinding plugin
 * does it for a pod's claims: a VMI's `persistentVolumeClaim` and
 * `dataVolume` volumes (a DataVolume's claim has its name) may only go
 * where their bound volumes are (each PersistentVolume's node affinity);
 * claims of WaitForFirstConsumer classes not bound yet go to a node with
 * room for them (local volumes: the node's free local storage), and the
 * scheduler sends them there (`volume.kubernetes.io/selected-node`) when
 * it binds the VMI. A claim cloned or restored from a local source waits
 * until the node holding the source is known (`storage.vireo.io/data-source-node`,
 * set by the snapshot controller); that node is preferred (an instant
 * copy-on-write clone or restore), but the claim may go to any node with
 * room when the source's node serves exports (its agent publishes an
 * endpoint, or runs inside `vireo server`): a full copy. A missing claim, one being deleted, or an unbound
 * Immediate claim makes the VMI unschedulable on every node.
 */
import type { KObject } from '../api/object.js';
import { booleanAt, recordAt, stringAt } from '../api/kinds/read.js';
import { bindingModeOf, claimNamesOf, isLocalClass, requestedBytes, selectedNodeAnnotation, volumeNode } from '../storage/local/index.js';
import { claimDataSource, dataSourceNodeAnnotation } from '../storage/snapshots/index.js';
import { servesExports } from '../agent/index.js';
import { matchesNodeSelector } from './filters.js';

/** Where the scheduler reads claims, volumes and classes. */
export interface VolumeLookup {
  claim: (namespace: string, name: string) => KObject | undefined;
  volume: (name: string) => KObject | undefined;
  storageClass: (name: string) => KObject | undefined;
  /** The Node of a name; without it, clones stay on their source's node. */
  node?: (name: string) => KObject | undefined;
}

/** An unbound claim the VMI waits for, sent to a node by the scheduler. */
export interface UnboundClaim {
  pvc: KObject;
  /** The node it was already sent to, if any. */
  selectedNode: string | undefined;
  /** Its class provisions local volumes: it needs room on the node. */
  local: boolean;
  bytes: number;
  /** A clone or restore: the node holding its data source, where it goes by preference. */
  sourceNode: string | undefined;
  /** A clone or restore whose source's node serves exports (an agent endpoint, or the control plane's node): any node can copy it from there. */
  copyable: boolean;
}

/** What a VMI's volumes ask of a node. */
export interface VolumeNeeds {
  /** The required node affinity of each bound volume. */
  boundAffinities: Record<string, unknown>[];
  unbound: UnboundClaim[];
}

/** kube-scheduler's VolumeBinding reasons, word for word. */
export const volumeReasons = {
  conflict: 'node(s) had volume node affinity conflict',
  noSpace: 'node(s) did not have enough free storage',
  noVolume: "node(s) didn't find available persistent volumes to bind",
  /** Vireo's: a local volume whose source's node has no agent to copy from is cloned or restored only there. */
  notSourceNode: 'node(s) did not hold the data source of a cloned or restored local volume whose node\'s agent cannot be copied from',
} as const;

function hasDataSource(pvc: KObject): boolean {
  return recordAt(pvc, 'spec', 'dataSourceRef') !== undefined || recordAt(pvc, 'spec', 'dataSource') !== undefined || claimDataSource(pvc) !== undefined;
}

/** A clone or restore whose source's node has an agent other nodes can copy from. */
function isCopyable(sourceNode: string | undefined, lookup: VolumeLookup): boolean {
  return sourceNode !== undefined && servesExports(lookup.node?.(sourceNode));
}

/** What the VMI's claims ask of any node, or why no node can take it. */
export function volumeNeeds(vmi: KObject, lookup: VolumeLookup): VolumeNeeds | { unresolvable: string } {
  const namespace = vmi.metadata.namespace ?? '';
  const needs: VolumeNeeds = { boundAffinities: [], unbound: [] };
  for (const name of claimNamesOf(vmi)) {
    const pvc = lookup.claim(namespace, name);
    if (pvc === undefined) return { unresolvable: `PersistentVolumeClaim "${name}" not found` };
    if (pvc.metadata.deletionTimestamp !== undefined) return { unresolvable: `persistentvolumeclaim "${name}" is being deleted` };
    const volumeName = stringAt(pvc, 'spec', 'volumeName') ?? '';
    if (volumeName !== '') {
      const pv = lookup.volume(volumeName);
      if (pv === undefined) return { unresolvable: `persistentvolume "${volumeName}" of claim "${name}" not found` };
      const required = recordAt(pv, 'spec', 'nodeAffinity', 'required');
      if (required !== undefined) needs.boundAffinities.push(required);
      continue;
    }
    const className = stringAt(pvc, 'spec', 'storageClassName') ?? '';
    const sc = className === '' ? undefined : lookup.storageClass(className);
    if (className !== '' && sc === undefined) return { unresolvable: `storageclass.storage.k8s.io "${className}" not found` };
    const selectedNode = pvc.metadata.annotations?.[selectedNodeAnnotation];
    if (sc !== undefined && bindingModeOf(sc) === 'Immediate' && selectedNode === undefined) return { unresolvable: 'pod has unbound immediate PersistentVolumeClaims' };
    // The snapshot controller names the node holding a clone's or restore's source once it is known.
    const sourceNode = pvc.metadata.annotations?.[dataSourceNodeAnnotation];
    if (isLocalClass(sc) && sourceNode === undefined && selectedNode === undefined && hasDataSource(pvc)) {
      return { unresolvable: `persistentvolumeclaim "${name}" waits for its data source (a VolumeSnapshot or PersistentVolumeClaim) to be ready` };
    }
    needs.unbound.push({ pvc, selectedNode, local: isLocalClass(sc), bytes: sc === undefined ? 0 : (requestedBytes(pvc) ?? 0), sourceNode, copyable: isCopyable(sourceNode, lookup) });
  }
  return needs;
}

/**
 * Why `node` cannot hold the VMI's volumes; empty when it can. `freeLocal`
 * is the node's free local storage (undefined: it has none), with claims
 * already sent to it counted.
 */
export function volumeFilter(needs: VolumeNeeds, node: KObject, freeLocal: number | undefined): string[] {
  const name = node.metadata.name ?? '';
  if (!needs.boundAffinities.every((required) => matchesNodeSelector(required, node))) return [volumeReasons.conflict];
  if (needs.unbound.some((c) => c.selectedNode !== undefined && c.selectedNode !== name)) return [volumeReasons.conflict];
  if (needs.unbound.some((c) => c.local && c.sourceNode !== undefined && c.sourceNode !== name && !c.copyable)) return [volumeReasons.notSourceNode];
  // A claim without a class waits for a volume made by hand, which Vireo does not match to claims.
  if (needs.unbound.some((c) => (stringAt(c.pvc, 'spec', 'storageClassName') ?? '') === '')) return [volumeReasons.noVolume];
  const wanted = needs.unbound.filter((c) => c.local && c.selectedNode === undefined).reduce((sum, c) => sum + c.bytes, 0);
  if (needs.unbound.some((c) => c.local && c.selectedNode === undefined) && (freeLocal === undefined || wanted > freeLocal)) return [volumeReasons.noSpace];
  return [];
}

/** True when `node` holds the data source of one of the VMI's unbound clones: there the clone is instant. */
export function holdsDataSource(needs: VolumeNeeds, node: KObject): boolean {
  const name = node.metadata.name ?? '';
  return needs.unbound.some((c) => c.local && c.selectedNode === undefined && c.sourceNode === name);
}

/**
 * Vireo's hint after kube-scheduler's message when the VMI's bound local
 * volumes are on a cordoned node (a drained node's VMIs come back Pending
 * this way): which claims hold it there and what to do. Undefined when no
 * claim is on a cordoned node.
 */
export function cordonedVolumeHint(vmi: KObject, lookup: VolumeLookup): string | undefined {
  const namespace = vmi.metadata.namespace ?? '';
  const pinned = new Map<string, string[]>();
  for (const name of claimNamesOf(vmi)) {
    const volumeName = stringAt(lookup.claim(namespace, name), 'spec', 'volumeName');
    const pv = volumeName === undefined ? undefined : lookup.volume(volumeName);
    const node = pv === undefined ? undefined : volumeNode(pv);
    if (node === undefined || booleanAt(lookup.node?.(node), 'spec', 'unschedulable') !== true) continue;
    pinned.set(node, [...(pinned.get(node) ?? []), name]);
  }
  if (pinned.size === 0) return undefined;
  const parts = [...pinned].map(([node, claims]) => `${claims.length === 1 ? 'claim' : 'claims'} ${claims.map((c) => `"${c}"`).join(', ')} ${claims.length === 1 ? 'is a local volume' : 'are local volumes'} of node ${node}, which is cordoned`);
  const nodes = [...pinned.keys()];
  return `${parts.join('; ')}: uncordon ${nodes.join(' and ')} to run it there again (a local volume does not follow its VMI to another node)`;
}
