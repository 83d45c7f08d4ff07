/**
 * Snapshots and clones of local volumes, and the CSI snapshot API they are
 * exposed through. What the controllers, the scheduler and the admission
 * use of it: names, resources and pure functions on API objects. The node
 * agent's parts, which do the I/O, are `chain.ts` (qcow2 backing chains
 * and raw copies), `operations.ts` (snapshot, clone, restore of one
 * volume), `sidecar.ts` (VolumeSnapshotContents of the node) and
 * `populate.ts` (claims with a data source).
 */
export * from './names.js';
export { volumeSnapshotClasses, volumeSnapshotContents, volumeSnapshots } from './resources.js';
export { bytesQuantity, formatSnapshotHandle, parseSnapshotHandle, snapshotDir, snapshotsRoot } from './handle.js';
export type { SnapshotHandle } from './handle.js';
export { defaultSnapshotClass, defaultSnapshotClassName, pickSnapshotClass, snapshotDeletionPolicy } from './snapshot-class.js';
export { claimDataSource, sourceNodeOf } from './data-source.js';
export type { DataSource, SourceLookup, SourceNode } from './data-source.js';
export type { LiveGuest, LiveGuests, LiveUse } from './live.js';
