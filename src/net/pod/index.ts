/** The pod network: CIDR math, the node's bridge and rules, per-VMI sandboxes with their leases and DHCP. */
export * from './cidr.js';
export { PodNetwork, PodNetworkNotReady } from './pod-network.js';
export type { PodNetworkOptions } from './pod-network.js';
export type { ForwardedPort, PodBinding, SandboxSpec, SandboxState } from './sandbox.js';
export { masqueradeGateway, masqueradeGateway6, masqueradeGuest, masqueradeGuest6 } from './sandbox.js';
export { sandboxBridge, sandboxTap } from './names.js';
export { isDefaultNetworkSandbox } from './default-network.js';
export type { SecondaryLink, SecondaryNic } from './secondary.js';
