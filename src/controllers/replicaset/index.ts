/** The VirtualMachineInstanceReplicaSet controller. */
export { ReplicaSetController } from './controller.js';
export type { ReplicaSetControllerOptions } from './controller.js';
