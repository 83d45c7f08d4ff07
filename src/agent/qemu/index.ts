/**
 * QEMU for the agent: the command line of a VMI (a pure function, see
 * `cmdline.ts`) and starting the process.
 */
export { buildQemuCommand } from './cmdline.js';
export type { DiskSource, NicSource, NodeFacts, QemuCommand, SealedSecret, VmiPaths } from './types.js';
export { efiVarsTemplate } from './firmware.js';
export { diskDeviceId, fileNodeOf, keySecretOf } from './disk-devices.js';
export { hotplugCommands, hotplugNodeName } from './hotplug.js';
export type { HotplugCommands } from './hotplug.js';
export { DomainConfigError, invalidDomain } from './errors.js';
export type { DomainConfigErrorCode } from './errors.js';
