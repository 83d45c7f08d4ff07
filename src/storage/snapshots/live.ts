/**
 * What snapshots and clones need of a running guest, provided by the node
 * agent (`src/agent/volume-snapshot.ts`), which owns the QEMUs: the
 * provisioner and the snapshot sidecar ask who uses a claim, and switch a
 * running guest's disk onto a new overlay through QMP instead of touching
 * files QEMU writes.
 */

/** A running guest that uses a claim. */
export interface LiveGuest {
  /** `namespace/name` of its VMI, for messages. */
  vmi: string;
  /**
   * Puts the qcow2 file at `path` (whose backing file is the disk's current
   * top) on top of the guest's disks of the claim as block node
   * `nodeName`: QMP `blockdev-add` and `blockdev-snapshot`, the guest runs
   * on. Idempotent: a disk whose top is already `nodeName` is left alone.
   */
  snapshot(overlay: { path: string; nodeName: string }): Promise<void>;
  /** Runs `work` with the guest paused (its I/O drained and flushed); resumes it after unless it was paused before. */
  whilePaused<T>(work: () => Promise<T>): Promise<T>;
}

/** Who uses a claim on this node. */
export type LiveUse =
  /** No guest: the files may change offline. */
  | { kind: 'idle' }
  /** A guest is starting or stopping: wait. */
  | { kind: 'busy'; reason: string }
  | { kind: 'running'; guest: LiveGuest };

/** The use of claim `namespace/name` on this node, now. */
export type LiveGuests = (claim: { namespace: string; name: string }) => Promise<LiveUse>;
