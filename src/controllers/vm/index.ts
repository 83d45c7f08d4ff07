/** The VirtualMachine controller. */
export { VirtualMachineController, vmFinalizer } from './controller.js';
export type { VirtualMachineControllerOptions } from './options.js';
export { annotations as vmiAnnotations, templateHash } from './vmi-builder.js';
export { expandedTemplateSpec } from './instancetype.js';
export type { MatcherLookup } from './instancetype.js';
