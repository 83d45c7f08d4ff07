/** Event recording and expiry, for every controller. */
export { EventRecorder } from './recorder.js';
export type { EventRecorderOptions, EventType } from './recorder.js';
export { EventTtlCleaner } from './ttl.js';
export type { EventTtlOptions } from './ttl.js';
