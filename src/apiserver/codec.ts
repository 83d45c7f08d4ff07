/**
 * How objects sit in the store: JSON without `metadata.resourceVersion`
 * (the store's modRevision is the resourceVersion, as in kube-apiserver on
 * etcd), and where each object's key is.
 */
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { groupVersion } from '../api/resource.js';
import type { KeyValue } from '../store/types.js';

/** Store key prefix of a resource, optionally within a namespace. */
export function resourcePrefix(def: ResourceDef, namespace?: string): string {
  const base = `/registry/${def.group === '' ? 'core' : def.group}/${def.plural}/`;
  return def.namespaced && namespace !== undefined ? `${base}${namespace}/` : base;
}

export function objectKey(def: ResourceDef, namespace: string | undefined, name: string): string {
  return `${resourcePrefix(def, namespace)}${name}`;
}

/** Serializes an object for the store. The resourceVersion is never stored. */
export function encodeObject(obj: KObject): string {
  const rv = obj.metadata.resourceVersion;
  delete obj.metadata.resourceVersion;
  const text = JSON.stringify(obj);
  if (rv !== undefined) obj.metadata.resourceVersion = rv;
  return text;
}

/** Parses a stored value and stamps it with its revision and the requested version. */
export function decodeValue(value: string, revision: number, def: ResourceDef): KObject {
  const obj = JSON.parse(value) as KObject;
  obj.metadata.resourceVersion = String(revision);
  // One storage version per resource; other served versions are the same shape (conversion: None).
  obj.apiVersion = groupVersion(def);
  return obj;
}

export function decodeKeyValue(kv: KeyValue, def: ResourceDef): KObject {
  return decodeValue(kv.value, kv.modRevision, def);
}
