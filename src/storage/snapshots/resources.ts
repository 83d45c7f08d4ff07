/** The resources of the CSI snapshot API, for clients and informers. */
import type { ResourceRef } from '../../client/index.js';

export const volumeSnapshots: ResourceRef = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots', namespaced: true };
export const volumeSnapshotContents: ResourceRef = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotcontents', namespaced: false };
export const volumeSnapshotClasses: ResourceRef = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotclasses', namespaced: false };
