/** The resources Vireo's own components read and write. */
import type { ResourceRef } from './types.js';

const kv = (plural: string): ResourceRef => ({ group: 'kubevirt.io', version: 'v1', plural, namespaced: true });

export const resources = {
  namespaces: { group: '', version: 'v1', plural: 'namespaces', namespaced: false },
  nodes: { group: '', version: 'v1', plural: 'nodes', namespaced: false },
  events: { group: '', version: 'v1', plural: 'events', namespaced: true },
  configMaps: { group: '', version: 'v1', plural: 'configmaps', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespaced: true },
  persistentVolumeClaims: { group: '', version: 'v1', plural: 'persistentvolumeclaims', namespaced: true },
  persistentVolumes: { group: '', version: 'v1', plural: 'persistentvolumes', namespaced: false },
  storageClasses: { group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses', namespaced: false },
  virtualMachines: kv('virtualmachines'),
  virtualMachineInstances: kv('virtualmachineinstances'),
  virtualMachineInstanceMigrations: kv('virtualmachineinstancemigrations'),
  virtualMachineInstanceReplicaSets: kv('virtualmachineinstancereplicasets'),
  kubeVirts: kv('kubevirts'),
  instancetypes: { group: 'instancetype.kubevirt.io', version: 'v1beta1', plural: 'virtualmachineinstancetypes', namespaced: true },
  clusterInstancetypes: { group: 'instancetype.kubevirt.io', version: 'v1beta1', plural: 'virtualmachineclusterinstancetypes', namespaced: false },
  preferences: { group: 'instancetype.kubevirt.io', version: 'v1beta1', plural: 'virtualmachinepreferences', namespaced: true },
  clusterPreferences: { group: 'instancetype.kubevirt.io', version: 'v1beta1', plural: 'virtualmachineclusterpreferences', namespaced: false },
  virtualMachineSnapshots: { group: 'snapshot.kubevirt.io', version: 'v1beta1', plural: 'virtualmachinesnapshots', namespaced: true },
  virtualMachineSnapshotContents: { group: 'snapshot.kubevirt.io', version: 'v1beta1', plural: 'virtualmachinesnapshotcontents', namespaced: true },
  virtualMachineRestores: { group: 'snapshot.kubevirt.io', version: 'v1beta1', plural: 'virtualmachinerestores', namespaced: true },
  virtualMachineClones: { group: 'clone.kubevirt.io', version: 'v1beta1', plural: 'virtualmachineclones', namespaced: true },
  dataVolumes: { group: 'cdi.kubevirt.io', version: 'v1beta1', plural: 'datavolumes', namespaced: true },
  dataSources: { group: 'cdi.kubevirt.io', version: 'v1beta1', plural: 'datasources', namespaced: true },
  volumeSnapshots: { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots', namespaced: true },
  volumeSnapshotClasses: { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotclasses', namespaced: false },
  networkAttachmentDefinitions: { group: 'k8s.cni.cncf.io', version: 'v1', plural: 'network-attachment-definitions', namespaced: true },
} satisfies Record<string, ResourceRef>;
