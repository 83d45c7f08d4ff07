/**
 * The resource endpoints: one function per HTTP method on
 * `/api[s]/.../{resource}[/{name}[/{subresource}]]`, translating requests
 * into ObjectStore calls and results into responses (JSON or Table).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { KList, KObject, ManagedFieldsEntry } from '../api/object.js';
import { updateManagedFields } from '../api/patch/apply.js';
import { isPlainObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { ApiError, badRequest, notFound, statusOf } from '../api/errors.js';
import type { Store } from '../store/types.js';
import { decodeBody, mediaType, readBody } from './body.js';
import { negotiateObject } from './negotiate.js';
import { nowTimestamp } from './object-store.js';
import type { DeleteOptions, ObjectStore, WriteResult } from './object-store.js';
import { applyPatchBody, patchTypeOf } from './patching.js';
import type { RequestQuery } from './query.js';
import { parseQuery } from './query.js';
import type { ResourceRequestInfo } from './request-info.js';
import { objectMatcher } from './selection.js';
import { renderTable } from './tables.js';
import { serveWatch } from './watch.js';

export interface HandlerDeps {
  store: Store;
  objects: ObjectStore;
  /** Called after a successful write, before the response (e.g. CRD registration). */
  afterWrite?: (def: ResourceDef, obj: KObject, deleted: boolean) => Promise<void> | void;
}

/** Who writes: a user (KubeVirt's full admission rules) or one of Vireo's components. */
export type Writer = 'user' | 'controller';

export interface ResourceRequest {
  info: ResourceRequestInfo;
  def: ResourceDef;
  query: RequestQuery;
  req: IncomingMessage;
  res: ServerResponse;
  signal: AbortSignal;
  writer: Writer;
  /** Checks the decoded body of a create before it is stored (a node creates only its own Node and Lease). */
  admitCreate?: (input: unknown) => void;
}

export function buildResourceRequest(
  info: ResourceRequestInfo,
  def: ResourceDef,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
  signal: AbortSignal,
  writer: Writer,
): ResourceRequest {
  if (def.namespaced && info.name !== undefined && info.namespace === undefined) {
    throw notFound(def.plural, def.group, info.name);
  }
  if (!def.namespaced && info.namespace !== undefined) {
    throw new ApiError('NotFound', `the server could not find the requested resource: ${def.plural} is not namespaced`, {
      details: { group: def.group, kind: def.plural },
    });
  }
  const sub = info.subresource;
  if (sub !== undefined && !(sub === 'status' && def.subresources.status) && !(sub === 'scale' && def.subresources.scale !== undefined)) {
    throw new ApiError('NotFound', `the server could not find the requested resource: ${def.plural} has no "${sub}" subresource`, {
      details: { group: def.group, kind: `${def.plural}/${sub}` },
    });
  }
  const query = parseQuery(url.searchParams);
  if (info.watchPrefix) query.watch = true;
  return { info, def, query, req, res, signal, writer };
}

export async function handleResource(r: ResourceRequest, deps: HandlerDeps): Promise<void> {
  const method = r.req.method ?? 'GET';
  const name = r.info.name;
  switch (method) {
    case 'GET':
      if (name === undefined) return r.query.watch ? watch(r, deps) : list(r, deps);
      if (r.query.watch) return watch(r, deps, name);
      return get(r, deps, name);
    case 'POST':
      if (name !== undefined) throw methodNotAllowed(method, r);
      return create(r, deps);
    case 'PUT':
      if (name === undefined) throw methodNotAllowed(method, r);
      return update(r, deps, name);
    case 'PATCH':
      if (name === undefined) throw methodNotAllowed(method, r);
      return patch(r, deps, name);
    case 'DELETE':
      return name === undefined ? deleteCollection(r, deps) : remove(r, deps, name);
    default:
      throw methodNotAllowed(method, r);
  }
}

function methodNotAllowed(method: string, r: ResourceRequest): ApiError {
  return new ApiError('MethodNotAllowed', `the server does not allow this method on the requested resource: ${method} ${r.req.url ?? ''}`);
}

async function get(r: ResourceRequest, deps: HandlerDeps, name: string): Promise<void> {
  const shape = negotiateObject(r.req.headers.accept);
  const obj = await deps.objects.get(r.def, r.info.namespace, name);
  if (r.info.subresource === 'scale') { sendJson(r.res, 200, toScale(r.def, obj)); return; }
  if (shape.kind === 'table') { sendJson(r.res, 200, renderTable(r.def, [obj], { withHeader: true, includeObject: r.query.includeObject, resourceVersion: obj.metadata.resourceVersion ?? '' })); return; }
  sendJson(r.res, 200, obj);
}

async function list(r: ResourceRequest, deps: HandlerDeps): Promise<void> {
  const shape = negotiateObject(r.req.headers.accept);
  const matcher = objectMatcher(r.def, r.query.labelSelector, r.query.fieldSelector);
  const exact = r.query.resourceVersionMatch === 'Exact' ? Number(r.query.resourceVersion) : undefined;
  if (exact !== undefined && !(exact > 0)) throw badRequest('resourceVersionMatch=Exact needs resourceVersion set to a revision');
  const opts: Parameters<ObjectStore['list']>[2] = {};
  if (matcher !== undefined) opts.matcher = matcher;
  if (r.query.limit !== undefined) opts.limit = r.query.limit;
  if (r.query.continueToken !== undefined) opts.continueToken = r.query.continueToken;
  if (exact !== undefined) opts.exactRevision = exact;
  const result: KList = await deps.objects.list(r.def, r.info.namespace, opts);
  if (shape.kind === 'table') {
    sendJson(
      r.res,
      200,
      renderTable(r.def, result.items, {
        withHeader: true,
        includeObject: r.query.includeObject,
        resourceVersion: result.metadata.resourceVersion ?? '',
        ...(result.metadata.continue === undefined ? {} : { continueToken: result.metadata.continue }),
      }),
    );
    return;
  }
  sendJson(r.res, 200, result);
}

async function watch(r: ResourceRequest, deps: HandlerDeps, name?: string): Promise<void> {
  const shape = negotiateObject(r.req.headers.accept);
  const fieldSelector = name === undefined ? r.query.fieldSelector : [r.query.fieldSelector, `metadata.name=${name}`].filter((s) => s !== undefined && s !== '').join(',');
  const matcher = objectMatcher(r.def, r.query.labelSelector, fieldSelector);
  await serveWatch(
    r.res,
    deps,
    {
      def: r.def,
      namespace: r.info.namespace,
      matcher,
      resourceVersion: r.query.resourceVersion,
      sendInitialEvents: r.query.sendInitialEvents,
      allowBookmarks: r.query.allowWatchBookmarks,
      timeoutSeconds: r.query.timeoutSeconds,
      table:
        shape.kind === 'table'
          ? (objects, withHeader) => renderTable(r.def, objects, { withHeader, includeObject: r.query.includeObject, resourceVersion: '' })
          : undefined,
    },
    r.signal,
  );
}

async function readObjectBody(r: ResourceRequest): Promise<unknown> {
  const body = await readBody(r.req);
  return decodeBody(body, r.req.headers['content-type']);
}

function writeOptions(r: ResourceRequest): { dryRun: boolean; fieldValidation: RequestQuery['fieldValidation']; fieldManager?: string; writer: Writer } {
  return { dryRun: r.query.dryRun, fieldValidation: r.query.fieldValidation, writer: r.writer, ...(r.query.fieldManager === undefined ? {} : { fieldManager: r.query.fieldManager }) };
}

async function create(r: ResourceRequest, deps: HandlerDeps): Promise<void> {
  if (r.info.subresource !== undefined) throw methodNotAllowed('POST', r);
  const input = await readObjectBody(r);
  r.admitCreate?.(input);
  const result = await deps.objects.create(r.def, r.info.namespace, input, writeOptions(r));
  await afterWrite(deps, r, result);
  sendWrite(r, 201, result);
}

async function update(r: ResourceRequest, deps: HandlerDeps, name: string): Promise<void> {
  const input = await readObjectBody(r);
  if (r.info.subresource === 'scale') return updateScale(r, deps, name, input);
  const result = await deps.objects.update(r.def, r.info.namespace, name, input, {
    ...writeOptions(r),
    ...(r.info.subresource === undefined ? {} : { subresource: r.info.subresource }),
  });
  await afterWrite(deps, r, result);
  sendWrite(r, 200, result);
}

async function patch(r: ResourceRequest, deps: HandlerDeps, name: string): Promise<void> {
  const patchType = patchTypeOf(mediaType(r.req.headers['content-type']), r.def);
  const body = await readObjectBody(r);
  if (patchType === 'apply' && r.query.fieldManager === undefined) {
    throw badRequest('fieldManager is required for apply requests: pass ?fieldManager=<your-client-name>');
  }
  for (let attempt = 0; ; attempt++) {
    const current = await deps.objects.tryGet(r.def, r.info.namespace, name);
    if (current === undefined) {
      if (patchType !== 'apply' || r.info.subresource !== undefined) throw notFound(r.def.plural, r.def.group, name);
      const intent = applyPatchBody('apply', undefined, body, r.def);
      if (!isPlainObject(intent)) throw badRequest('an apply patch must be an object');
      const meta = isPlainObject(intent.metadata) ? intent.metadata : {};
      if (meta.name !== undefined && meta.name !== name) throw badRequest(`the name in the body (${JSON.stringify(meta.name)}) does not match the name on the URL (${name})`);
      const managedFields = recordApply(r, undefined, intent, body);
      const result = await deps.objects.create(r.def, r.info.namespace, { ...intent, metadata: { ...meta, name, managedFields } }, writeOptions(r));
      await afterWrite(deps, r, result);
      sendWrite(r, 201, result); return;
    }
    if (r.info.subresource === 'scale') {
      return updateScale(r, deps, name, applyPatchBody(patchType === 'strategic' ? 'merge' : patchType, toScale(r.def, current) as KObject, body, r.def));
    }
    const patched = applyPatchBody(patchType, current, body, r.def, r.query.fieldManager);
    if (!isPlainObject(patched) || !isPlainObject(patched.metadata)) throw badRequest('the patch did not produce an object with metadata');
    if (patchType === 'apply') patched.metadata.managedFields = recordApply(r, current, patched, body);
    if (patched.metadata.name !== undefined && patched.metadata.name !== name) {
      throw badRequest(`the patch changes metadata.name to ${JSON.stringify(patched.metadata.name)}, but the name of an object cannot change: create a new object instead`);
    }
    const patchedRv = patched.metadata.resourceVersion;
    const pinned = patchedRv !== current.metadata.resourceVersion;
    try {
      if (pinned) throw conflictFor(r, name);
      const result = await deps.objects.replace(r.def, current, patched as KObject, {
        ...writeOptions(r),
        ...(r.info.subresource === undefined ? {} : { subresource: r.info.subresource }),
      });
      await afterWrite(deps, r, result);
      sendWrite(r, 200, result); return;
    } catch (err) {
      // Without a resourceVersion in the patch the client asked for "apply to whatever is there": retry on races.
      if (err instanceof ApiError && err.reason === 'Conflict' && !pinned && attempt < 5) continue;
      throw err;
    }
  }
}

/** Server-side apply: the field manager now owns exactly the fields it applied. */
function recordApply(r: ResourceRequest, before: KObject | undefined, after: unknown, applied: unknown): ManagedFieldsEntry[] {
  return updateManagedFields(before?.metadata.managedFields, {
    manager: r.query.fieldManager ?? 'unknown',
    operation: 'Apply',
    apiVersion: r.def.group === '' ? r.def.version : `${r.def.group}/${r.def.version}`,
    time: nowTimestamp(),
    before,
    after,
    applied,
    schema: r.def.schema,
  });
}

function conflictFor(r: ResourceRequest, name: string): ApiError {
  return new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${r.def.group === '' ? r.def.plural : `${r.def.plural}.${r.def.group}`} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { details: { name, group: r.def.group, kind: r.def.plural } },
  );
}

async function remove(r: ResourceRequest, deps: HandlerDeps, name: string): Promise<void> {
  if (r.info.subresource !== undefined) throw methodNotAllowed('DELETE', r);
  const options = await deleteOptions(r);
  const { object, pending } = await deps.objects.delete(r.def, r.info.namespace, name, options);
  if (!options.dryRun) await deps.afterWrite?.(r.def, object, !pending);
  sendJson(r.res, 200, object);
}

async function deleteCollection(r: ResourceRequest, deps: HandlerDeps): Promise<void> {
  const options = await deleteOptions(r);
  const matcher = objectMatcher(r.def, r.query.labelSelector, r.query.fieldSelector);
  const current = await deps.objects.list(r.def, r.info.namespace, matcher === undefined ? {} : { matcher });
  const items: KObject[] = [];
  for (const obj of current.items) {
    try {
      const { object, pending } = await deps.objects.delete(r.def, obj.metadata.namespace, obj.metadata.name ?? '', options);
      if (!options.dryRun) await deps.afterWrite?.(r.def, object, !pending);
      items.push(object);
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }
  sendJson(r.res, 200, { ...current, items });
}

async function deleteOptions(r: ResourceRequest): Promise<DeleteOptions & { dryRun: boolean }> {
  const out: DeleteOptions & { dryRun: boolean } = { dryRun: r.query.dryRun };
  if (r.query.propagationPolicy !== undefined) out.propagationPolicy = r.query.propagationPolicy;
  const raw = await readBody(r.req);
  if (raw.length === 0 || raw.toString('utf8').trim() === '') return out;
  const body = decodeBody(raw, r.req.headers['content-type']);
  if (!isPlainObject(body)) throw badRequest('the DeleteOptions body must be an object');
  const policy = body.propagationPolicy;
  if (policy !== undefined && policy !== null) {
    if (policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
      throw badRequest(`propagationPolicy ${JSON.stringify(policy)} is not valid: use Background, Foreground or Orphan`);
    }
    out.propagationPolicy = policy;
  } else if (body.orphanDependents === true) {
    out.propagationPolicy = 'Orphan';
  }
  if (Array.isArray(body.dryRun) && body.dryRun.includes('All')) out.dryRun = true;
  const grace = body.gracePeriodSeconds;
  if (grace !== undefined && grace !== null) {
    if (typeof grace !== 'number' || !Number.isSafeInteger(grace) || grace < 0) throw badRequest(`gracePeriodSeconds ${JSON.stringify(grace)} is not valid: give a whole number of seconds, 0 or more`);
    out.gracePeriodSeconds = grace;
  }
  const pre = body.preconditions;
  if (isPlainObject(pre)) {
    out.preconditions = {};
    if (typeof pre.uid === 'string') out.preconditions.uid = pre.uid;
    if (typeof pre.resourceVersion === 'string') out.preconditions.resourceVersion = pre.resourceVersion;
  }
  return out;
}

async function afterWrite(deps: HandlerDeps, r: ResourceRequest, result: WriteResult): Promise<void> {
  if (r.query.dryRun) return;
  await deps.afterWrite?.(r.def, result.object, false);
}

function sendWrite(r: ResourceRequest, code: number, result: WriteResult): void {
  for (const w of result.warnings) r.res.appendHeader('Warning', `299 - ${JSON.stringify(w)}`);
  const body = r.info.subresource === 'scale' ? toScale(r.def, result.object) : result.object;
  sendJson(r.res, result.created ? 201 : code === 201 ? 200 : code, body);
}

/** The `autoscaling/v1 Scale` view of an object with a scale subresource. */
function toScale(def: ResourceDef, obj: KObject): object {
  const scale = def.subresources.scale;
  const read = (path: string | undefined): unknown => {
    if (path === undefined) return undefined;
    let cur: unknown = obj;
    for (const part of path.replace(/^\./, '').split('.')) cur = isPlainObject(cur) ? cur[part] : undefined;
    return cur;
  };
  const selector = read(scale?.labelSelectorPath);
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion, creationTimestamp: obj.metadata.creationTimestamp },
    spec: { replicas: Number(read(scale?.specReplicasPath) ?? 0) },
    status: { replicas: Number(read(scale?.statusReplicasPath) ?? 0), ...(typeof selector === 'string' ? { selector } : {}) },
  };
}

async function updateScale(r: ResourceRequest, deps: HandlerDeps, name: string, input: unknown): Promise<void> {
  const scale = r.def.subresources.scale;
  if (scale === undefined) throw notFound(`${r.def.plural}/scale`, r.def.group, name);
  const spec = isPlainObject(input) && isPlainObject(input.spec) ? input.spec : {};
  const replicas = spec.replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw badRequest('spec.replicas must be a non-negative integer');
  }
  const current = await deps.objects.get(r.def, r.info.namespace, name);
  const next = structuredClone(current);
  let cur: Record<string, unknown> = next;
  const parts = scale.specReplicasPath.replace(/^\./, '').split('.');
  for (const part of parts.slice(0, -1)) {
    const child = cur[part];
    if (!isPlainObject(child)) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] ?? 'replicas'] = replicas;
  const result = await deps.objects.replace(r.def, current, next, writeOptions(r));
  sendJson(r.res, 200, toScale(r.def, result.object));
}

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendStatus(res: ServerResponse, code: number, message: string): void {
  sendJson(res, code, { ...statusOf('InternalError', code, message), status: code < 400 ? 'Success' : 'Failure' });
}
