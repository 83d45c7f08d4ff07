/** What other parts may use of the node lifecycle controller. */
export { NodeLifecycleController } from './controller.js';
export type { NodeLifecycleOptions } from './controller.js';
