/**
 * KubeVirt's `subresources.kubevirt.io/v1` group as discovery shows it. In
 * KubeVirt it is an aggregated APIService served by virt-api, whose
 * resource list names only subresources (`virtualmachines/start`, …); the
 * verbs here are the ones KubeVirt's RBAC roles grant on each of them.
 */

export const subresourceGroup = 'subresources.kubevirt.io';
export const subresourceVersion = 'v1';

/** The operations served on one parent resource, and the verb each needs. */
export interface SubresourceEntry {
  /** `virtualmachines` or `virtualmachineinstances`. */
  parent: 'virtualmachines' | 'virtualmachineinstances';
  name: string;
  verb: 'get' | 'update';
}

export const subresourceEntries: readonly SubresourceEntry[] = [
  { parent: 'virtualmachines', name: 'start', verb: 'update' },
  { parent: 'virtualmachines', name: 'stop', verb: 'update' },
  { parent: 'virtualmachines', name: 'restart', verb: 'update' },
  { parent: 'virtualmachines', name: 'migrate', verb: 'update' },
  { parent: 'virtualmachines', name: 'addvolume', verb: 'update' },
  { parent: 'virtualmachines', name: 'removevolume', verb: 'update' },
  { parent: 'virtualmachines', name: 'portforward', verb: 'get' },
  { parent: 'virtualmachineinstances', name: 'console', verb: 'get' },
  { parent: 'virtualmachineinstances', name: 'vnc', verb: 'get' },
  { parent: 'virtualmachineinstances', name: 'consolelog', verb: 'get' },
  { parent: 'virtualmachineinstances', name: 'pause', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'unpause', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'softreboot', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'reset', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'freeze', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'unfreeze', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'addvolume', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'removevolume', verb: 'update' },
  { parent: 'virtualmachineinstances', name: 'portforward', verb: 'get' },
];

/** The `APIResourceList` of `/apis/subresources.kubevirt.io/v1`. */
export function subresourceResourceList(): object {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: `${subresourceGroup}/${subresourceVersion}`,
    resources: subresourceEntries.map((e) => ({
      name: `${e.parent}/${e.name}`,
      singularName: '',
      namespaced: true,
      kind: '',
      verbs: [e.verb],
    })),
  };
}

/**
 * The group in aggregated discovery. It has no resources of its own, only
 * subresources of kinds in `kubevirt.io`; listing those as resources here
 * would give kubectl a second, kind-less `virtualmachines` to resolve names
 * against, so the version is listed empty.
 */
export function subresourceAggregatedGroup(): { metadata: { name: string }; versions: object[] } {
  return {
    metadata: { name: subresourceGroup },
    versions: [{ version: subresourceVersion, freshness: 'Current', resources: [] }],
  };
}
