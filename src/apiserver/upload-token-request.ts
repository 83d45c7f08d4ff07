/**
 * `upload.cdi.kubevirt.io/v1beta1` UploadTokenRequest, as CDI's aggregated
 * API serves it: a virtual, create-only resource (discovery lists the verb
 * `create` and nothing else). `spec.pvcName` in, `status.token` out: a
 * short-lived token for the upload proxy, naming the namespace and the PVC.
 * Nothing is stored. Unlike CDI, a name that is neither a PVC nor a
 * DataVolume of the namespace is refused at once, not when the upload fails.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, invalid } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { decodeBody, readBody } from './body.js';
import { sendJson } from './handlers.js';
import type { ObjectStore } from './object-store.js';
import type { ResourceRequestInfo } from './request-info.js';
import type { ResourceRegistry } from './resources.js';
import type { UploadTokens } from './upload-token.js';

const group = 'upload.cdi.kubevirt.io';
const kind = 'UploadTokenRequest';

/** The resource's definition, for routing and discovery (verbs: create). */
export function uploadTokenRequestDef(): ResourceDef {
  return {
    group,
    version: 'v1beta1',
    kind,
    listKind: `${kind}List`,
    plural: 'uploadtokenrequests',
    singular: 'uploadtokenrequest',
    namespaced: true,
    shortNames: ['utr', 'utrs'],
    categories: [],
    subresources: { status: false },
    printerColumns: [],
    schema: {
      type: 'object',
      description: 'UploadTokenRequest is the CR used to initiate a CDI upload: its status carries a token for the upload proxy.',
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object' },
        spec: { type: 'object', required: ['pvcName'], properties: { pvcName: { type: 'string', description: 'The PVC (or DataVolume) to upload into.' } } },
        status: { type: 'object', properties: { token: { type: 'string', description: 'The token for the upload proxy; good for 5 minutes.' } } },
      },
    },
    builtin: false,
    verbs: ['create'],
  };
}

/** True when `info` addresses UploadTokenRequests. */
export function isUploadTokenRequest(info: ResourceRequestInfo): boolean {
  return info.group === group && info.resource === 'uploadtokenrequests';
}

/** What the handler reads and signs with. */
export interface UploadTokenRequestDeps {
  objects: ObjectStore;
  registry: ResourceRegistry;
  tokens: UploadTokens;
}

/** Answers `POST …/namespaces/NS/uploadtokenrequests` with the request and its `status.token`. */
export async function createUploadTokenRequest(info: ResourceRequestInfo, req: IncomingMessage, res: ServerResponse, deps: UploadTokenRequestDeps): Promise<void> {
  if (req.method !== 'POST' || info.name !== undefined || info.subresource !== undefined) {
    req.resume();
    throw new ApiError('MethodNotAllowed', `the server does not allow this method on the requested resource: ${kind} only supports create (POST /apis/${group}/${info.version}/namespaces/NS/uploadtokenrequests)`);
  }
  const namespace = info.namespace;
  if (namespace === undefined) throw new ApiError('NotFound', `${kind} is namespaced: POST to /apis/${group}/${info.version}/namespaces/NS/uploadtokenrequests`);
  const body = decodeBody(await readBody(req), req.headers['content-type']);
  if (!isPlainObject(body)) throw new ApiError('BadRequest', `the body of an ${kind} must be an object with spec.pvcName`);
  const metadata = isPlainObject(body.metadata) ? body.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : '';
  const spec = isPlainObject(body.spec) ? body.spec : {};
  const pvcName = spec.pvcName;
  if (typeof pvcName !== 'string' || pvcName === '') {
    throw invalid(kind, group, name, [{ field: 'spec.pvcName', reason: 'FieldValueRequired', message: 'Required value: name the PVC or DataVolume to upload into' }]);
  }
  if (!(await claimOrDataVolumeExists(deps, namespace, pvcName))) {
    throw invalid(kind, group, name, [
      { field: 'spec.pvcName', reason: 'FieldValueNotFound', message: `Not found: "${pvcName}": there is no PersistentVolumeClaim or DataVolume ${pvcName} in namespace ${namespace}; create the DataVolume (spec.source.upload) first, e.g. with vireo image-upload dv` },
    ]);
  }
  const response: KObject = {
    apiVersion: `${group}/${info.version}`,
    kind,
    metadata: { ...(name === '' ? {} : { name }), namespace, creationTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') },
    spec: { pvcName },
    status: { token: deps.tokens.issue(namespace, pvcName) },
  };
  sendJson(res, 201, response);
}

async function claimOrDataVolumeExists(deps: UploadTokenRequestDeps, namespace: string, name: string): Promise<boolean> {
  for (const [g, v, plural] of [['', 'v1', 'persistentvolumeclaims'], ['cdi.kubevirt.io', 'v1beta1', 'datavolumes']] as const) {
    const def = deps.registry.lookup(g, v, plural);
    if (def !== undefined && (await deps.objects.tryGet(def, namespace, name)) !== undefined) return true;
  }
  return false;
}
