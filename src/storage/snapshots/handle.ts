/**
 * The snapshot handle of a local snapshot (VolumeSnapshotContent
 * `status.snapshotHandle`, or `spec.source.snapshotHandle` of a
 * pre-provisioned one): `<node>/<directory>`, the node holding the
 * snapshot and its directory under the agent's `snapshots/`. Opaque to
 * users, as CSI handles are; the node part tells where a restore must run.
 */
import { join } from 'node:path';

const directoryName = /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/;

/** A parsed local snapshot handle. */
export interface SnapshotHandle {
  node: string;
  /** The directory name under `<dataDir>/snapshots/`. */
  id: string;
}

/** The handle of snapshot directory `id` on `node`. */
export function formatSnapshotHandle(handle: SnapshotHandle): string {
  return `${handle.node}/${handle.id}`;
}

/** The node and directory of `handle`; undefined when it is not a local snapshot handle. */
export function parseSnapshotHandle(handle: string | undefined): SnapshotHandle | undefined {
  if (handle === undefined) return undefined;
  const slash = handle.indexOf('/');
  if (slash <= 0) return undefined;
  const node = handle.slice(0, slash);
  const id = handle.slice(slash + 1);
  // Node names are DNS subdomains; the directory is one path segment, never `..`.
  if (!directoryName.test(node) || !directoryName.test(id) || id.includes('..')) return undefined;
  return { node, id };
}

/** The directory of all snapshots of an agent. */
export function snapshotsRoot(dataDir: string): string {
  return join(dataDir, 'snapshots');
}

/** The directory of snapshot `id`. */
export function snapshotDir(dataDir: string, id: string): string {
  return join(snapshotsRoot(dataDir), id);
}

/**
 * `bytes` as a canonical Kubernetes quantity, exact: the largest binary
 * suffix that divides it (`10Gi`), else plain bytes.
 */
export function bytesQuantity(bytes: number): string {
  const units = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  let value = bytes;
  let unit = -1;
  while (value !== 0 && value % 1024 === 0 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value}${unit < 0 ? '' : (units[unit] ?? '')}`;
}
