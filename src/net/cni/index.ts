/**
 * Secondary networks on real CNI plugins (Multus' role): what the agent
 * uses to attach a VMI's `networks[].multus` entries to its sandbox, and to
 * write the `k8s.v1.cni.cncf.io/network-status` annotation.
 */
export { SecondaryNetworks, defaultMultusConfDir, qualifiedName } from './attach.js';
export type { AttachedNetwork, NetworkRequest, Sandbox, SecondaryNetworksOptions, VmiIdentity } from './attach.js';
export { CniRuntime, defaultCniPath } from './runtime.js';
export type { CniAttachment, CniRuntimeOptions } from './runtime.js';
export { parseNetworkConfig } from './config.js';
export type { NetworkConfigList, PluginConfig, RuntimeValues } from './config.js';
export { CniError } from './errors.js';
export type { CniFailure, PluginErrorReport } from './errors.js';
export type { CniResult, ResultDns, ResultInterface, ResultIp, ResultRoute } from './result.js';
export { networkStatusAnnotation, networkStatusEntries, networkStatusValue } from './network-status.js';
export type { NetworkStatusEntry, NetworkStatusInput, PodNetworkStatus } from './network-status.js';
export { multusPlanOf } from './requests.js';
export type { MultusPlan } from './requests.js';
