/** What other parts may use of the API server. */
export { ApiServer } from './server.js';
export type { ApiServerOptions, TlsMaterial } from './server.js';
export { ObjectStore, isFinalized, nowTimestamp } from './object-store.js';
export type { DeleteOptions, ListOptions, PropagationPolicy, WriteOptions, WriteResult } from './object-store.js';
export { ResourceRegistry } from './resources.js';
export { objectKey, resourcePrefix, decodeValue } from './codec.js';
export { parseServiceNetwork, defaultServiceClusterIpRange, defaultNodePortRange } from './admission-service.js';
export type { ServiceNetwork } from './admission-service.js';
