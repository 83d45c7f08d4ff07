/**
 * NetworkPolicy and Calico policy enforcement on a node: what other parts
 * (the agent, the podnet datapath, benchmarks) may use.
 */
export { PolicyApplier } from './applier.js';
export type { PolicyApplierOptions } from './applier.js';
export { compilePolicies } from './compile.js';
export type { CompiledRuleset, CompileOptions, PolicyInput } from './compile.js';
export { PolicyController } from './controller.js';
export type { LocalEndpoint, LocalEndpointSource, PolicyControllerOptions } from './controller.js';
export type { NamedPort, PolicyEndpoint, PolicyNamespace } from './model.js';
export { NftError, deleteTable, runNft } from './nft.js';
export type { NftTarget } from './nft.js';
