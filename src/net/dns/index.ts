/** The cluster DNS: `<service>.<namespace>.svc.cluster.local` and VMI hostnames, from Services and EndpointSlices. */
export { ClusterDns } from './server.js';
export type { ClusterDnsOptions } from './server.js';
export { ClusterZone } from './cluster-zone.js';
export type { ClusterZoneOptions, ZoneSource } from './cluster-zone.js';
