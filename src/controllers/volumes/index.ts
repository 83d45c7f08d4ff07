/** The volume controller: claim phases, the Immediate binder, pvc-protection and Released volumes. */
export { VolumeController } from './controller.js';
export { pickNodeFor } from './node-choice.js';
