/**
 * The garbage collector's view of ownership, after kube's GraphBuilder: for
 * every stored object its uid, the uids it names as owners and whether it
 * is being deleted, plus the reverse edges (owner uid → dependent keys).
 * It is fed every store change in revision order and answers which keys
 * need a look after each one; the reconciles still read the objects
 * themselves.
 */
import { isPlainObject } from '../../api/object.js';

/** What the graph keeps of one stored object. */
export interface GraphNode {
  key: string;
  uid: string;
  /** Uids named in `metadata.ownerReferences`. */
  owners: string[];
  deleting: boolean;
  /** True when deleting with the `foregroundDeletion` or `orphan` finalizer: the GC has work on it. */
  awaitsGc: boolean;
}

/** Finalizer of a Foreground deletion: the owner waits for its dependents. */
export const foregroundFinalizer = 'foregroundDeletion';

/** Finalizer of an Orphan deletion: the owner's dependents are released first. */
export const orphanFinalizer = 'orphan';

/** Objects by key and uid, and who owns whom, as of the last observed revision. */
export class OwnerGraph {
  private readonly byKey = new Map<string, GraphNode>();
  private readonly keyByUid = new Map<string, string>();
  private readonly dependents = new Map<string, Set<string>>();

  /** Number of objects known. */
  get size(): number {
    return this.byKey.size;
  }

  /**
   * Records the latest value of `key` (undefined: it is gone) and returns
   * the keys whose reconcile may now act: the object itself when it has
   * owners or awaits the GC, its dependents when it is gone or being
   * deleted, and any owner waiting on it in a Foreground deletion.
   */
  observe(key: string, value: string | undefined): string[] {
    const before = this.byKey.get(key);
    const after = value === undefined ? undefined : parseNode(key, value);
    if (before !== undefined) this.remove(before);
    if (after !== undefined) this.insert(after);
    const affected = new Set<string>();
    if (after !== undefined && (after.owners.length > 0 || after.awaitsGc)) affected.add(key);
    for (const node of [before, after]) {
      if (node === undefined) continue;
      for (const owner of node.owners) {
        const ownerKey = this.keyByUid.get(owner);
        if (ownerKey !== undefined && this.byKey.get(ownerKey)?.awaitsGc === true) affected.add(ownerKey);
      }
    }
    const released = before !== undefined && (after === undefined || after.uid !== before.uid || after.deleting);
    if (released) for (const dependent of this.dependentsOf(before.uid)) affected.add(dependent);
    if (after?.deleting === true) for (const dependent of this.dependentsOf(after.uid)) affected.add(dependent);
    return [...affected];
  }

  /** Keys of objects naming `uid` as an owner. */
  dependentsOf(uid: string): string[] {
    return [...(this.dependents.get(uid) ?? [])];
  }

  /** True when some object names `uid` as an owner. */
  hasDependents(uid: string): boolean {
    return (this.dependents.get(uid)?.size ?? 0) > 0;
  }

  /** The key of the object with this uid, if it exists. */
  keyOf(uid: string): string | undefined {
    return this.keyByUid.get(uid);
  }

  /** Every key whose reconcile may act right now (after a full load). */
  actionable(): string[] {
    const out: string[] = [];
    for (const node of this.byKey.values()) if (node.owners.length > 0 || node.awaitsGc) out.push(node.key);
    return out;
  }

  private insert(node: GraphNode): void {
    this.byKey.set(node.key, node);
    this.keyByUid.set(node.uid, node.key);
    for (const owner of node.owners) {
      let set = this.dependents.get(owner);
      if (set === undefined) this.dependents.set(owner, (set = new Set()));
      set.add(node.key);
    }
  }

  private remove(node: GraphNode): void {
    this.byKey.delete(node.key);
    if (this.keyByUid.get(node.uid) === node.key) this.keyByUid.delete(node.uid);
    for (const owner of node.owners) {
      const set = this.dependents.get(owner);
      if (set === undefined) continue;
      set.delete(node.key);
      if (set.size === 0) this.dependents.delete(owner);
    }
  }
}

/** Reads the ownership facts of a stored value; values that are not objects with a uid are not part of the graph. */
export function parseNode(key: string, value: string): GraphNode | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!isPlainObject(parsed) || !isPlainObject(parsed.metadata)) return undefined;
  const meta = parsed.metadata;
  if (typeof meta.uid !== 'string' || meta.uid === '') return undefined;
  const owners: string[] = [];
  if (Array.isArray(meta.ownerReferences)) {
    for (const ref of meta.ownerReferences as unknown[]) {
      if (isPlainObject(ref) && typeof ref.uid === 'string' && ref.uid !== '' && !owners.includes(ref.uid)) owners.push(ref.uid);
    }
  }
  const deleting = typeof meta.deletionTimestamp === 'string';
  const finalizers = Array.isArray(meta.finalizers) ? (meta.finalizers as unknown[]) : [];
  const awaitsGc = deleting && (finalizers.includes(foregroundFinalizer) || finalizers.includes(orphanFinalizer));
  return { key, uid: meta.uid, owners, deleting, awaitsGc };
}
