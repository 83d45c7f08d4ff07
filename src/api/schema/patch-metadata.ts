/**
 * The list-merge metadata of Kubernetes' built-in types that our generated
 * models lack: the `patchStrategy`/`patchMergeKey` struct tags of
 * k8s.io/api, which kube-apiserver publishes as `x-kubernetes-patch-*`.
 * Without them a strategic merge patch replaces lists Kubernetes merges (a
 * patch adding one finalizer would drop the others), and kubectl, which
 * reads the same extensions from `/openapi/v3`, computes replacing patches.
 * Server-side apply derives its list types from them too. The `+listType`
 * markers are left out on purpose: on a schema they would add duplicate
 * checks that kube-apiserver does not run on built-in kinds. Only fields
 * of the built-in kinds Vireo serves are listed.
 */
import type { JSONSchemaProps } from '../resource.js';

type ListMetadata = Pick<JSONSchemaProps, 'x-kubernetes-patch-strategy' | 'x-kubernetes-patch-merge-key'>;

const mergeByType: ListMetadata = { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'type' };

/** `ObjectMeta` (k8s.io/apimachinery meta/v1), relative to the ObjectMeta schema. */
const objectMetaListMetadata: Record<string, ListMetadata> = {
  ownerReferences: { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'uid' },
  finalizers: { 'x-kubernetes-patch-strategy': 'merge' },
};

/** Per kind (`group/Kind`, core group empty), relative to the kind's schema. */
const kindListMetadata: Record<string, Record<string, ListMetadata>> = {
  '/Service': {
    'spec.ports': { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'port' },
    'status.conditions': mergeByType,
  },
  '/ServiceAccount': { secrets: { 'x-kubernetes-patch-strategy': 'merge', 'x-kubernetes-patch-merge-key': 'name' } },
  '/Namespace': { 'status.conditions': mergeByType },
  '/Node': {
    'spec.podCIDRs': { 'x-kubernetes-patch-strategy': 'merge' },
    'status.conditions': mergeByType,
    'status.addresses': mergeByType,
  },
  '/PersistentVolumeClaim': { 'status.conditions': mergeByType },
};

/** A copy of `schema` with `metadata` at `path` (dot-separated properties); shared, frozen sub-schemas are copied, not changed. */
function withAt(schema: JSONSchemaProps, path: string[], metadata: ListMetadata): JSONSchemaProps {
  const [head, ...rest] = path;
  if (head === undefined) return { ...schema, ...metadata };
  const child = schema.properties?.[head];
  if (child === undefined) return schema;
  return { ...schema, properties: { ...schema.properties, [head]: withAt(child, rest, metadata) } };
}

/** ObjectMeta's schema with Kubernetes' list-merge metadata. */
export function withObjectMetaListMetadata(objectMeta: JSONSchemaProps): JSONSchemaProps {
  let out = objectMeta;
  for (const [field, metadata] of Object.entries(objectMetaListMetadata)) out = withAt(out, [field], metadata);
  return out;
}

/** A built-in kind's schema with Kubernetes' list-merge metadata, in its metadata and its own fields. */
export function withBuiltinListMetadata(schema: JSONSchemaProps, group: string, kind: string): JSONSchemaProps {
  const meta = schema.properties?.metadata;
  let out = meta === undefined ? schema : { ...schema, properties: { ...schema.properties, metadata: withObjectMetaListMetadata(meta) } };
  for (const [path, metadata] of Object.entries(kindListMetadata[`${group}/${kind}`] ?? {})) out = withAt(out, path.split('.'), metadata);
  return out;
}
