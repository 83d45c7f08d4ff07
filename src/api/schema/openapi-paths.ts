/**
 * The `paths` of an OpenAPI v3 document for one resource, with the
 * operations kube-apiserver documents: each carries
 * `x-kubernetes-action` and `x-kubernetes-group-version-kind`, and every
 * write its `dryRun`, `fieldManager` and `fieldValidation` query parameters.
 * Parameters are inlined because kubectl's field-validation check only
 * looks at an operation's own parameters.
 */
import type { ResourceDef } from '../resource.js';

type Json = Record<string, unknown>;

const metaV1 = 'io.k8s.apimachinery.pkg.apis.meta.v1';
/** Component names of the shared schemas operations refer to. */
export const sharedSchemas = {
  objectMeta: `${metaV1}.ObjectMeta`,
  listMeta: `${metaV1}.ListMeta`,
  status: `${metaV1}.Status`,
  deleteOptions: `${metaV1}.DeleteOptions`,
  patch: `${metaV1}.Patch`,
  scale: 'io.k8s.api.autoscaling.v1.Scale',
} as const;

/** `{ $ref: "#/components/schemas/<name>" }`. */
export function ref(name: string): Json {
  return { $ref: `#/components/schemas/${name}` };
}

const allVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const patchTypes = ['application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json', 'application/apply-patch+yaml'];

const param = (name: string, type: string, description: string, where = 'query'): Json => ({
  name,
  in: where,
  description,
  ...(where === 'path' ? { required: true } : {}),
  schema: { type, uniqueItems: true },
});

const pretty = param('pretty', 'string', "If 'true', then the output is pretty printed.");
const nameParam = param('name', 'string', 'name of the object', 'path');
const namespaceParam = param('namespace', 'string', 'object name and auth scope, such as for teams and projects', 'path');
const writeParams = [
  param('dryRun', 'string', 'When present, indicates that modifications should not be persisted. The only valid value is All.'),
  param('fieldManager', 'string', 'A name associated with the actor or entity that is making these changes.'),
  param('fieldValidation', 'string', 'How the server handles unknown or duplicate fields in the request body: Ignore, Warn (the default) or Strict.'),
];
const forceParam = param('force', 'boolean', 'Force is going to "force" Apply requests. It must be unset for non-apply patch requests.');
const listParams = [
  param('allowWatchBookmarks', 'boolean', 'Requests watch events of type BOOKMARK.'),
  param('continue', 'string', 'The continue option from the previous page of a list.'),
  param('fieldSelector', 'string', 'A selector to restrict the list of returned objects by their fields.'),
  param('labelSelector', 'string', 'A selector to restrict the list of returned objects by their labels.'),
  param('limit', 'integer', 'The maximum number of items to return in one page.'),
  param('resourceVersion', 'string', 'Constrains the resource versions a request may be served from.'),
  param('resourceVersionMatch', 'string', 'How resourceVersion is applied to list calls.'),
  param('sendInitialEvents', 'boolean', 'With watch=true, begins the stream with synthetic events for the current state.'),
  param('timeoutSeconds', 'integer', 'Timeout for the list/watch call.'),
  param('watch', 'boolean', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.'),
];
const deleteParams = [
  param('dryRun', 'string', 'When present, indicates that modifications should not be persisted. The only valid value is All.'),
  param('gracePeriodSeconds', 'integer', 'The duration in seconds before the object should be deleted.'),
  param('orphanDependents', 'boolean', 'Deprecated: use propagationPolicy.'),
  param('propagationPolicy', 'string', "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
];

const json = (schema: Json, types = ['application/json', 'application/yaml']): Json => Object.fromEntries(types.map((t) => [t, { schema }]));
const ok = (schema: Json, codes: string[]): Json => ({
  ...Object.fromEntries(codes.map((c) => [c, { description: c === '201' ? 'Created' : c === '202' ? 'Accepted' : 'OK', content: json(schema) }])),
  '401': { description: 'Unauthorized' },
});

interface Target {
  gvk: Json;
  /** Schema of the object this path reads and writes. */
  object: string;
  /** `KubevirtIoV1` in `readKubevirtIoV1NamespacedVirtualMachine`. */
  groupVersion: string;
  /** `Namespaced` or empty. */
  scope: string;
  verbs: Set<string>;
  /** Custom resources take no strategic merge patch. */
  builtin: boolean;
}

const idVerb: Record<string, string> = { get: 'read', list: 'list', post: 'create', put: 'replace', patch: 'patch', delete: 'delete', deletecollection: 'delete' };

/** An operation; its id is spelled as Kubernetes does, e.g. `deleteCoreV1CollectionNamespacedConfigMap`. */
function operation(t: Target, action: string, id: string, parameters: Json[], extra: Json): Json {
  const collection = action === 'deletecollection' ? 'Collection' : '';
  return {
    operationId: `${idVerb[action] ?? action}${t.groupVersion}${collection}${t.scope}${id}`,
    parameters,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': t.gvk,
    ...extra,
  };
}

function itemOperations(t: Target, id: string): Json {
  const ops: Json = {};
  const body = { content: { '*/*': { schema: ref(t.object) } }, required: true };
  if (t.verbs.has('get')) ops['get'] = operation(t, 'get', id, [], { responses: ok(ref(t.object), ['200']) });
  if (t.verbs.has('update')) ops['put'] = operation(t, 'put', id, writeParams, { requestBody: body, responses: ok(ref(t.object), ['200', '201']) });
  if (t.verbs.has('patch')) {
    const types = t.builtin ? patchTypes : patchTypes.filter((p) => p !== 'application/strategic-merge-patch+json');
    const patchBody = { content: Object.fromEntries(types.map((p) => [p, { schema: ref(sharedSchemas.patch) }])), required: true };
    ops['patch'] = operation(t, 'patch', id, [...writeParams, forceParam], { requestBody: patchBody, responses: ok(ref(t.object), ['200', '201']) });
  }
  return ops;
}

/** The paths of one resource (collection, item, status and scale), keyed by path. */
export function operationsFor(def: ResourceDef, definition: string): Json {
  const prefix = def.group === '' ? `/api/${def.version}` : `/apis/${def.group}/${def.version}`;
  const groupId = def.group === '' ? 'Core' : def.group.replace(/\.k8s\.io$/, '').split(/[.-]/).map(capitalize).join('');
  const t: Target = {
    gvk: { group: def.group, kind: def.kind, version: def.version },
    object: definition,
    groupVersion: `${groupId}${capitalize(def.version)}`,
    scope: def.namespaced ? 'Namespaced' : '',
    verbs: new Set(def.verbs ?? allVerbs),
    builtin: def.builtin,
  };
  const collection = def.namespaced ? `${prefix}/namespaces/{namespace}/${def.plural}` : `${prefix}/${def.plural}`;
  const item = `${collection}/{name}`;
  const scopeParams = def.namespaced ? [namespaceParam, pretty] : [pretty];
  const paths: Json = {};

  const listResponse = ok(ref(`${definition}List`), ['200']);
  const coll: Json = { parameters: scopeParams };
  if (t.verbs.has('list')) coll['get'] = operation(t, 'list', def.kind, listParams, { responses: listResponse });
  if (t.verbs.has('create')) {
    coll['post'] = operation(t, 'post', def.kind, writeParams, { requestBody: { content: { '*/*': { schema: ref(definition) } }, required: true }, responses: ok(ref(definition), ['200', '201', '202']) });
  }
  if (t.verbs.has('deletecollection')) {
    coll['delete'] = operation(t, 'deletecollection', def.kind, [...listParams, ...deleteParams], { requestBody: { content: { '*/*': { schema: ref(sharedSchemas.deleteOptions) } } }, responses: ok(ref(sharedSchemas.status), ['200']) });
  }
  paths[collection] = coll;

  const one: Json = { parameters: [nameParam, ...scopeParams], ...itemOperations(t, def.kind) };
  if (t.verbs.has('delete')) {
    one['delete'] = operation(t, 'delete', def.kind, deleteParams, { requestBody: { content: { '*/*': { schema: ref(sharedSchemas.deleteOptions) } } }, responses: ok(ref(sharedSchemas.status), ['200', '202']) });
  }
  paths[item] = one;

  if (def.namespaced && t.verbs.has('list')) {
    const allNamespaces: Target = { ...t, scope: '' };
    paths[`${prefix}/${def.plural}`] = { parameters: [pretty], get: operation(allNamespaces, 'list', `${def.kind}ForAllNamespaces`, listParams, { responses: listResponse }) };
  }
  const sub = { get: true, update: true, patch: true };
  if (def.subresources.status) {
    paths[`${item}/status`] = { parameters: [nameParam, ...scopeParams], ...itemOperations({ ...t, verbs: intersect(t.verbs, sub) }, `${def.kind}Status`) };
  }
  if (def.subresources.scale !== undefined) {
    const scale: Target = { ...t, gvk: { group: 'autoscaling', kind: 'Scale', version: 'v1' }, object: sharedSchemas.scale, verbs: intersect(t.verbs, sub) };
    paths[`${item}/scale`] = { parameters: [nameParam, ...scopeParams], ...itemOperations(scale, `${def.kind}Scale`) };
  }
  return paths;
}

function intersect(verbs: Set<string>, allowed: Record<string, boolean>): Set<string> {
  return new Set([...verbs].filter((v) => allowed[v] === true));
}

function capitalize(s: string): string {
  return s.length === 0 ? s : `${s.charAt(0).toUpperCase()}${s.slice(1)}`;
}
