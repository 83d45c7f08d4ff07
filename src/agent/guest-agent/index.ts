/** The QEMU guest agent: the client of its channel and the per-VMI monitor. */
export { GuestAgentClient } from './client.js';
export type { GuestAgentConnectOptions } from './client.js';
export { GuestAgentError } from './errors.js';
export type { GuestAgentErrorCode } from './errors.js';
export { GuestAgentMonitor, defaultUnfreezeTimeoutMs } from './monitor.js';
export type { GuestAgentMonitorOptions, GuestAgentState } from './monitor.js';
export type { FsFreezeStatus, GuestFsInfo, GuestInfo, GuestLoad, GuestOsInfo } from './schema.js';
export { guestStatsIntervalMs } from './stats.js';
export type { GuestAgentStats } from './stats.js';
