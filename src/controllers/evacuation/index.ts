/** Node evacuation: the controller that live-migrates VMIs off a drained node. */
export { EvacuationController } from './controller.js';
