/** KubeVirt's `subresources.kubevirt.io` API, as the API server mounts it. */
export { SubresourceApi } from './api.js';
export type { SubresourceApiOptions } from './api.js';
export { subresourceAggregatedGroup, subresourceEntries, subresourceGroup, subresourceResourceList, subresourceVersion } from './discovery.js';
export type { SubresourceEntry } from './discovery.js';
export { rejectUpgrade } from '../../console/index.js';
