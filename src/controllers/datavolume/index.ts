/** The DataVolume (CDI) controller. */
export { DataVolumeController } from './controller.js';
export type { DataVolumeControllerOptions } from './controller.js';
export { computeStatus as dataVolumeStatus } from './status.js';
export type { DataVolumeCondition, DataVolumeEvent } from './status.js';
