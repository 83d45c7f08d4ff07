/**
 * Turns `labelSelector` and `fieldSelector` query parameters into one
 * predicate over objects, compiled once per request.
 */
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { parseLabelSelector } from '../api/labels.js';
import { defaultFieldValue, parseFieldSelector } from '../api/fields.js';

export type ObjectMatcher = (obj: KObject) => boolean;

/** Every resource can select on these; others are accepted where the object has a plain value there. */
const universalFields = new Set(['metadata.name', 'metadata.namespace']);

export function objectMatcher(def: ResourceDef, labelSelector: string | undefined, fieldSelector: string | undefined): ObjectMatcher | undefined {
  const labels = labelSelector === undefined || labelSelector.trim() === '' ? undefined : parseLabelSelector(labelSelector);
  const fields =
    fieldSelector === undefined || fieldSelector.trim() === ''
      ? undefined
      : parseFieldSelector(fieldSelector, { supported: (f) => universalFields.has(f) || supportedField(def, f) });
  const labelMatch = labels === undefined || labels.matchesEverything ? undefined : labels;
  const fieldMatch = fields === undefined || fields.matchesEverything ? undefined : fields;
  if (labelMatch === undefined && fieldMatch === undefined) return undefined;
  return (obj) =>
    (labelMatch === undefined || labelMatch.matches(obj.metadata.labels)) &&
    (fieldMatch === undefined || fieldMatch.matches(obj, fieldValue));
}

function fieldValue(obj: KObject, field: string): string | undefined {
  if (field === 'metadata.namespace') return obj.metadata.namespace ?? '';
  return defaultFieldValue(obj, field);
}

/**
 * Fields kube-apiserver lets clients select on besides name and namespace
 * (e.g. `kubectl describe` lists events by `involvedObject.*`, controllers
 * list VMIs by `status.nodeName`-like fields). Any dotted path into spec,
 * status and a few top-level fields is allowed; values that are objects or
 * lists simply never match.
 */
function supportedField(_def: ResourceDef, field: string): boolean {
  return /^(spec|status|involvedObject|source|type|reason|metadata\.(labels|annotations|uid|generateName))(\.[A-Za-z0-9_/-]+)*$/.test(field) || /^[a-zA-Z]+$/.test(field);
}
