/**
 * The OpenAPI v3 document of one group-version, as kube-apiserver serves it
 * at `/openapi/v3/apis/<group>/<version>` and kubectl reads it:
 * - `kubectl explain` finds a resource's kind from the
 *   `x-kubernetes-group-version-kind` of its path operations, then the
 *   `components.schemas` entry listing that GVK;
 * - `kubectl apply` uses server-side field validation when the kind's PATCH
 *   operation has a `fieldValidation` query parameter, and strategic merge
 *   patch only when that operation's request body lists it (built-ins only,
 *   as custom resources answer it with 415).
 */
import type { JSONSchemaProps, ResourceDef } from '../resource.js';
import { modelSchema } from '../models.js';
import { operationsFor, ref, sharedSchemas } from './openapi-paths.js';
import { withObjectMetaListMetadata } from './patch-metadata.js';

type Json = Record<string, unknown>;

/**
 * The definition name Kubernetes gives a kind's schema:
 * `io.k8s.api.core.v1.ConfigMap` for built-ins, the reversed group for
 * custom resources (`io.kubevirt.v1.VirtualMachine`,
 * `io.kubevirt.cdi.v1beta1.DataVolume`).
 */
export function definitionName(def: Pick<ResourceDef, 'group' | 'version' | 'kind'>): string {
  const { group, version, kind } = def;
  if (group === '') return `io.k8s.api.core.${version}.${kind}`;
  if (group === 'apiextensions.k8s.io') return `io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.${version}.${kind}`;
  if (group === 'apiregistration.k8s.io') return `io.k8s.kube-aggregator.pkg.apis.apiregistration.${version}.${kind}`;
  // Kubernetes' own groups are named after their Go package: rbac.authorization.k8s.io is io.k8s.api.rbac.
  if (group.endsWith('.k8s.io') || !group.includes('.')) return `io.k8s.api.${group.split('.')[0] ?? group}.${version}.${kind}`;
  return `${group.split('.').reverse().join('.')}.${version}.${kind}`;
}

/**
 * One OpenAPI v3 document for the resources in `defs` (normally one
 * group-version's): a component schema per kind and list kind tagged with
 * its GVK, the shared meta/v1 schemas they refer to, and the paths with
 * their operations.
 */
export function openApiDocument(defs: ResourceDef[]): Json {
  const schemas: Json = sharedComponents(defs.some((d) => d.subresources.scale !== undefined));
  const paths: Json = {};
  for (const def of defs) {
    const name = definitionName(def);
    schemas[name] = kindSchema(def);
    schemas[`${name}List`] = listSchema(def, name);
    Object.assign(paths, operationsFor(def, name));
  }
  const first = defs[0];
  const title = first === undefined ? 'Kubernetes' : first.group === '' ? 'Kubernetes' : first.group;
  return { openapi: '3.0.0', info: { title, version: 'unversioned' }, paths, components: { schemas } };
}

const gvkList = (group: string, version: string, kind: string): Json[] => [{ group, kind, version }];

const typeMetaProps = (): Record<string, JSONSchemaProps> => ({
  apiVersion: {
    type: 'string',
    description:
      'APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources',
  },
  kind: {
    type: 'string',
    description:
      'Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds',
  },
});

function kindSchema(def: ResourceDef): Json {
  const schema: JSONSchemaProps = def.schema ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const metadata = schema.properties?.['metadata'];
  const properties: Record<string, unknown> = { ...typeMetaProps(), ...schema.properties };
  // metadata is always ObjectMeta; referring to the shared schema is what lets `kubectl explain <kind>.metadata` work.
  properties['metadata'] = {
    allOf: [ref(sharedSchemas.objectMeta)],
    default: {},
    description: metadata?.description ?? "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
  };
  return { ...schema, type: 'object', properties, 'x-kubernetes-group-version-kind': gvkList(def.group, def.version, def.kind) };
}

function listSchema(def: ResourceDef, name: string): Json {
  return {
    type: 'object',
    description: `${def.listKind} is a list of ${def.kind}`,
    required: ['items'],
    properties: {
      ...typeMetaProps(),
      items: { type: 'array', description: `List of ${def.plural}.`, items: { allOf: [ref(name)], default: {} } },
      metadata: { allOf: [ref(sharedSchemas.listMeta)], default: {}, description: 'Standard list metadata.' },
    },
    'x-kubernetes-group-version-kind': gvkList(def.group, def.version, def.listKind),
  };
}

function sharedComponents(withScale: boolean): Json {
  const schemas: Json = {
    [sharedSchemas.objectMeta]: withObjectMetaListMetadata(modelSchema('IoK8sApimachineryPkgApisMetaV1ObjectMeta')),
    [sharedSchemas.listMeta]: modelSchema('IoK8sApimachineryPkgApisMetaV1ListMeta'),
    [sharedSchemas.status]: { ...modelSchema('IoK8sApimachineryPkgApisMetaV1Status'), 'x-kubernetes-group-version-kind': gvkList('', 'v1', 'Status') },
    [sharedSchemas.deleteOptions]: { ...modelSchema('IoK8sApimachineryPkgApisMetaV1DeleteOptions'), 'x-kubernetes-group-version-kind': gvkList('', 'v1', 'DeleteOptions') },
    [sharedSchemas.patch]: { type: 'object', description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.' },
  };
  if (withScale) schemas[sharedSchemas.scale] = { ...modelSchema('IoK8sApiAutoscalingV1Scale'), 'x-kubernetes-group-version-kind': gvkList('autoscaling', 'v1', 'Scale') };
  return schemas;
}
