/**
 * Discovery documents: legacy (`/api`, `/apis`, `/apis/<g>/<v>`) and
 * aggregated (`apidiscovery.k8s.io` v2 and v2beta1, one request for
 * everything). Both are derived from the resource registry and list the
 * groups in kube-apiserver's order (`group-priority.ts`).
 */
import type { ResourceDef } from '../api/resource.js';
import { compareGroups } from './group-priority.js';
import type { ResourceRegistry } from './resources.js';
import { subresourceAggregatedGroup, subresourceGroup, subresourceResourceList, subresourceVersion } from './subresources/index.js';

const allVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const subresourceVerbs = ['get', 'patch', 'update'];

export function apiVersions(serverAddress: string): object {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

function groupEntry(group: string, versions: string[]): object {
  const entries = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions: entries, preferredVersion: entries[0] };
}

/** The groups of the registry plus `subresources.kubevirt.io`, which has no ResourceDefs of its own. */
function namedGroups(registry: ResourceRegistry): [string, string[]][] {
  const groups = [...registry.groups()].filter(([g]) => g !== '');
  groups.push([subresourceGroup, [subresourceVersion]]);
  return groups.sort(([a], [b]) => compareGroups(a, b));
}

export function apiGroupList(registry: ResourceRegistry): object {
  const groups = namedGroups(registry);
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(([g, vs]) => groupEntry(g, vs)) };
}

export function apiGroup(registry: ResourceRegistry, group: string): object | undefined {
  const versions = group === subresourceGroup ? [subresourceVersion] : registry.groups().get(group);
  if (versions === undefined || group === '') return undefined;
  return { kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(group, versions) };
}

export function apiResourceList(registry: ResourceRegistry, group: string, version: string): object | undefined {
  if (group === subresourceGroup) return version === subresourceVersion ? subresourceResourceList() : undefined;
  const defs = registry.inGroupVersion(group, version);
  if (defs.length === 0) return undefined;
  const resources: object[] = [];
  for (const def of defs) {
    resources.push({
      name: def.plural,
      singularName: def.singular,
      namespaced: def.namespaced,
      kind: def.kind,
      verbs: def.verbs ?? allVerbs,
      ...(def.shortNames.length > 0 ? { shortNames: def.shortNames } : {}),
      ...(def.categories.length > 0 ? { categories: def.categories } : {}),
    });
    for (const sub of subresourcesOf(def)) {
      resources.push({ name: `${def.plural}/${sub.name}`, singularName: '', namespaced: def.namespaced, kind: sub.kind, ...(sub.group === undefined ? {} : { group: sub.group, version: sub.version }), verbs: subresourceVerbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group === '' ? version : `${group}/${version}`, resources };
}

interface SubresourceInfo {
  name: string;
  kind: string;
  group?: string;
  version?: string;
}

function subresourcesOf(def: ResourceDef): SubresourceInfo[] {
  const out: SubresourceInfo[] = [];
  if (def.subresources.status) out.push({ name: 'status', kind: def.kind });
  if (def.subresources.scale !== undefined) out.push({ name: 'scale', kind: 'Scale', group: 'autoscaling', version: 'v1' });
  return out;
}

/** The aggregated discovery document for `/api` (core) or `/apis` (every named group). */
export function aggregatedDiscovery(registry: ResourceRegistry, core: boolean, version: 'v2' | 'v2beta1'): object {
  const items = [...registry.groups()]
    .filter(([g]) => (core ? g === '' : g !== ''))
    .sort(([a], [b]) => compareGroups(a, b))
    .map(([group, versions]) => ({
      metadata: { name: group },
      versions: versions.map((v) => ({
        version: v,
        freshness: 'Current',
        resources: registry.inGroupVersion(group, v).map((def) => ({
          resource: def.plural,
          singularResource: def.singular,
          scope: def.namespaced ? 'Namespaced' : 'Cluster',
          responseKind: { group: def.group, version: def.version, kind: def.kind },
          verbs: def.verbs ?? allVerbs,
          ...(def.shortNames.length > 0 ? { shortNames: def.shortNames } : {}),
          ...(def.categories.length > 0 ? { categories: def.categories } : {}),
          ...(subresourcesOf(def).length > 0
            ? {
                subresources: subresourcesOf(def).map((s) => ({
                  subresource: s.name,
                  responseKind: { group: s.group ?? def.group, version: s.version ?? def.version, kind: s.kind },
                  verbs: subresourceVerbs,
                })),
              }
            : {}),
        })),
      })),
    }));
  const all = core ? items : [...items, subresourceAggregatedGroup()].sort((a, b) => compareGroups(a.metadata.name, b.metadata.name));
  return { kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${version}`, metadata: {}, items: all };
}
