/** The VMI scheduler. */
export { Scheduler } from './scheduler.js';
export type { SchedulerOptions } from './scheduler.js';
