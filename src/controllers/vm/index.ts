/** The VirtualMachine controller. */
export { VirtualMachineController, vmFinalizer } from './controller.js';
export type { VirtualMachineControllerOptions } from './options.js';
