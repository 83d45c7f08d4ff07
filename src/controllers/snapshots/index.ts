/** The CSI snapshot controller: VolumeSnapshots bound to contents, their status, deletion, and where clones and restores go. */
export { SnapshotController } from './controller.js';
