/**
 * `authentication.k8s.io/v1` TokenReview, as kube-apiserver serves it: a
 * virtual, create-only, cluster-scoped resource. `spec.token` in,
 * `status.authenticated` and `status.user` out; nothing is stored. A node
 * agent's endpoint asks it who presented a bearer token (the kubelet's
 * webhook authentication), so another node's credential opens its volume
 * exports without the agent knowing every credential. Users, components
 * and node credentials may create one; a join token may not (the server
 * refuses it everywhere but the join).
 */
import { metricsReaderGroup, metricsReaderUsername } from '../api/metrics-token.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError, invalid } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { decodeBody, readBody } from './body.js';
import type { Credentials, Identity } from './credentials.js';
import { sendJson } from './handlers.js';
import type { ResourceRequestInfo } from './request-info.js';

const group = 'authentication.k8s.io';
const kind = 'TokenReview';

/** The user name of a node credential, as Kubernetes names a kubelet: `system:node:<node>`. */
export const nodeUserPrefix = 'system:node:';

/** The resource's definition, for routing and discovery (verbs: create). */
export function tokenReviewDef(): ResourceDef {
  return {
    group,
    version: 'v1',
    kind,
    listKind: `${kind}List`,
    plural: 'tokenreviews',
    singular: 'tokenreview',
    namespaced: false,
    shortNames: [],
    categories: [],
    subresources: { status: false },
    printerColumns: [],
    schema: {
      type: 'object',
      description: 'TokenReview attempts to authenticate a token to a known user.',
      properties: {
        apiVersion: { type: 'string' },
        kind: { type: 'string' },
        metadata: { type: 'object' },
        spec: { type: 'object', properties: { token: { type: 'string' }, audiences: { type: 'array', items: { type: 'string' } } } },
        status: { type: 'object', properties: { authenticated: { type: 'boolean' }, user: { type: 'object' }, audiences: { type: 'array', items: { type: 'string' } }, error: { type: 'string' } } },
      },
    },
    builtin: false,
    verbs: ['create'],
  };
}

/** True when `info` addresses TokenReviews. */
export function isTokenReview(info: ResourceRequestInfo): boolean {
  return info.group === group && info.resource === 'tokenreviews';
}

/** Who an identity is, in Kubernetes' user terms (`status.user` of a review). */
export function userInfoOf(identity: Identity): { username: string; groups: string[] } {
  switch (identity.kind) {
    case 'user':
      return { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] };
    case 'controller':
      return { username: 'system:vireo:components', groups: ['system:vireo-components', 'system:authenticated'] };
    case 'node':
      return { username: `${nodeUserPrefix}${identity.nodeName}`, groups: ['system:nodes', 'system:authenticated'] };
    case 'metrics':
      return { username: metricsReaderUsername, groups: [metricsReaderGroup, 'system:authenticated'] };
    case 'joining':
      return { username: `system:bootstrap:${identity.token.id}`, groups: ['system:bootstrappers', 'system:authenticated'] };
  }
}

/** Answers `POST /apis/authentication.k8s.io/v1/tokenreviews` with the review and its status. */
export async function createTokenReview(info: ResourceRequestInfo, req: IncomingMessage, res: ServerResponse, credentials: Credentials): Promise<void> {
  if (req.method !== 'POST' || info.name !== undefined || info.subresource !== undefined || info.namespace !== undefined) {
    req.resume();
    throw new ApiError('MethodNotAllowed', `the server does not allow this method on the requested resource: ${kind} only supports create (POST /apis/${group}/v1/tokenreviews)`);
  }
  const body = decodeBody(await readBody(req), req.headers['content-type']);
  if (!isPlainObject(body)) throw new ApiError('BadRequest', `the body of a ${kind} must be an object with spec.token`);
  const spec = isPlainObject(body.spec) ? body.spec : {};
  const token = spec.token;
  if (typeof token !== 'string' || token === '') {
    throw invalid(kind, group, '', [{ field: 'spec.token', reason: 'FieldValueRequired', message: 'Required value: the bearer token to review' }]);
  }
  let status: Record<string, unknown>;
  try {
    const identity = await credentials.authenticateBearer(token);
    status = { authenticated: true, user: userInfoOf(identity) };
  } catch (err) {
    if (!(err instanceof ApiError && err.reason === 'Unauthorized')) throw err;
    status = { authenticated: false, user: {}, error: err.message };
  }
  const response: KObject = {
    apiVersion: `${group}/v1`,
    kind,
    metadata: {},
    spec: { token },
    status,
  };
  sendJson(res, 201, response);
}
