/**
 * The kinds compiled into the server: the subset of Kubernetes' own API that
 * Vireo serves itself, with Kubernetes' names, scopes, subresources and
 * `kubectl get` columns.
 */
import type { BuiltinResourceDef } from './builtin-def.js';
import {
  configMapResource,
  eventResource,
  namespaceResource,
  nodeResource,
  secretResource,
  serviceAccountResource,
  serviceResource,
} from './builtin-core.js';
import { customResourceDefinitionResource, leaseResource, networkPolicyResource, priorityClassResource } from './builtin-cluster.js';
import { endpointSliceResource, endpointsResource } from './builtin-endpoints.js';
import { persistentVolumeClaimResource, persistentVolumeResource, storageClassResource } from './builtin-storage.js';

/**
 * Every built-in resource, freshly built. Each carries `printRow` (cells for
 * its full `printerColumns`, Name included) and a schema computed on first
 * read from the Kubernetes OpenAPI model.
 */
export function builtinResources(): BuiltinResourceDef[] {
  return [
    namespaceResource(),
    nodeResource(),
    eventResource(),
    configMapResource(),
    secretResource(),
    serviceAccountResource(),
    serviceResource(),
    endpointsResource(),
    endpointSliceResource(),
    persistentVolumeResource(),
    persistentVolumeClaimResource(),
    storageClassResource(),
    leaseResource(),
    customResourceDefinitionResource(),
    networkPolicyResource(),
    priorityClassResource(),
  ];
}
