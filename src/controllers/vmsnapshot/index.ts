/** KubeVirt's snapshot, restore and clone controllers (`snapshot.kubevirt.io`, `clone.kubevirt.io`). */
export { SnapshotControllers } from './controller.js';
export type { SnapshotControllerOptions } from './controller.js';
