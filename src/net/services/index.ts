/** The node's service proxy: Services and EndpointSlices compiled into one nftables table (kube-proxy's nftables mode). */
export { compileServices, masqueradeMark, removeServicesProgram } from './compile.js';
export type { ServiceCompileOptions } from './compile.js';
export { proxiedPorts } from './model.js';
export type { AddressFamily, ProxiedPort, ProxyEndpoint, ServiceProtocol } from './model.js';
export { ServiceProxy, ServiceTableApplier } from './proxy.js';
export type { ServiceProxyOptions } from './proxy.js';
