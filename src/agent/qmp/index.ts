/**
 * QMP, QEMU's control protocol: a typed, schema-checked client.
 */
export { QmpClient } from './client.js';
export type { QmpArgsParam, QmpConnectOptions } from './client.js';
export { QmpError } from './errors.js';
export type { QmpErrorCode } from './errors.js';
export { balloonGuestStats } from './schema.js';
export type {
  BalloonGuestStats,
  BlockdevNodeArgs,
  QmpArgs,
  QmpBlockInfo,
  QmpCommandName,
  QmpCpuInfo,
  QmpEvent,
  QmpEventName,
  QmpGreeting,
  QmpReturn,
  QmpStatusInfo,
  RunState,
  ShutdownCause,
} from './schema.js';
