/** The VirtualMachine controller. */
export { VirtualMachineController } from './controller.js';
export type { VirtualMachineControllerOptions } from './options.js';
