/** The VMI scheduler. */
export { Scheduler } from './scheduler.js';
export type { SchedulerOptions } from './scheduler.js';
/** The placement a migration's target is chosen by (the source node left out). */
export { place } from './placement.js';
export { add, vmiRequests, zero } from './resources.js';
export type { Resources } from './resources.js';
