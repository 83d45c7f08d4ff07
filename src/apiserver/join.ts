/**
 * The two requests of a host joining (kubeadm's token discovery and TLS
 * bootstrap, in one exchange):
 *  - `GET /vireo/v1/cluster-info?token-id=ID`, unauthenticated: the CA
 *    certificate, signed with the join token, so the host trusts the CA
 *    only if the server knows its token (and, with `--ca-cert-hash`, only
 *    if it is the pinned CA);
 *  - `POST /vireo/v1/join` with the join token as bearer and
 *    `{nodeName, version}`: the node's own credential, its hash kept in
 *    `kube-system/vireo-node-<name>`. Refused: an agent of another
 *    major.minor, and a name another credential already holds.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../api/errors.js';
import { caSignature, joinTokenNamespace } from '../api/join-token.js';
import type { JoinToken } from '../api/join-token.js';
import {
  clusterInfoPath, joinPath, joinedAnnotation, maxJoinedNodeNameLength, newNodeCredential, nodeCredentialSecret, nodeCredentialSecretName, parseJoinRequest, versionsCompatible, vireoVersion,
} from '../api/node-credential.js';
import type { ClusterInfo, JoinResponse } from '../api/node-credential.js';
import type { ResourceDef } from '../api/resource.js';
import { decodeBody, readBody } from './body.js';
import type { Credentials } from './credentials.js';
import { sendJson } from './handlers.js';
import type { ObjectStore } from './object-store.js';
import type { ResourceRegistry } from './resources.js';

export interface JoinDeps {
  objects: ObjectStore;
  registry: ResourceRegistry;
  credentials: Credentials;
  /** The CA certificate the joining host learns. */
  caCert: string;
  /** The bearer token this server presents to agent endpoints (the agent gets its SHA-256). */
  serverToken: string;
}

/** Node names are DNS subdomains (RFC 1123), as Kubernetes validates them. */
const nodeNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** True for the paths this module serves. */
export function isJoinPath(path: string): boolean {
  return path === joinPath || path === clusterInfoPath;
}

/** Serves one of the join paths; `authenticate` runs only for the exchange. */
export async function serveJoin(req: IncomingMessage, res: ServerResponse, deps: JoinDeps): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://vireo.invalid');
  if (url.pathname === clusterInfoPath) {
    if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method ?? ''} is not allowed on ${clusterInfoPath}: use GET`);
    sendJson(res, 200, await clusterInfo(url.searchParams.get('token-id') ?? '', deps));
    return;
  }
  if (req.method !== 'POST') throw new ApiError('MethodNotAllowed', `${req.method ?? ''} is not allowed on ${joinPath}: POST the join request with the join token as bearer`);
  const identity = await deps.credentials.authenticate(req);
  if (identity.kind !== 'joining') throw new ApiError('Forbidden', `${joinPath} takes a join token (vireo token create), not a ${identity.kind === 'node' ? 'node credential: this node has joined already' : 'cluster or component token'}`);
  sendJson(res, 201, await join(req, identity.token, deps));
}

async function clusterInfo(tokenId: string, deps: JoinDeps): Promise<ClusterInfo> {
  if (!/^[a-z0-9]{6}$/.test(tokenId)) throw new ApiError('BadRequest', `${clusterInfoPath} needs ?token-id=ID, the 6 characters before the dot of a join token`);
  const token = await deps.credentials.knownJoinToken(tokenId);
  return { caCert: deps.caCert, signature: caSignature(deps.caCert, token) };
}

async function join(req: IncomingMessage, token: JoinToken, deps: JoinDeps): Promise<JoinResponse> {
  let request;
  try {
    request = parseJoinRequest(decodeBody(await readBody(req, 64 * 1024), req.headers['content-type'] ?? 'application/json'));
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError('BadRequest', `${err instanceof Error ? err.message : String(err)}: vireo agent --token sends it`);
  }
  const { nodeName, version } = request;
  if (!versionsCompatible(version, vireoVersion)) {
    throw new ApiError('BadRequest', `the agent's version ${version} is not compatible with the server's version ${vireoVersion}: their major.minor must be equal; run a vireo agent of version ${vireoVersion.split('.').slice(0, 2).join('.')}.x`);
  }
  if (nodeName.length > maxJoinedNodeNameLength || !nodeNamePattern.test(nodeName)) {
    throw new ApiError('BadRequest', `node name "${nodeName}" is not valid: use lowercase letters, digits, '-' and '.' (a DNS subdomain of at most ${maxJoinedNodeNameLength} characters); pass --node-name NAME`);
  }
  const nodes = deps.registry.lookup('', 'v1', 'nodes');
  const node = nodes === undefined ? undefined : await deps.objects.tryGet(nodes, undefined, nodeName);
  if (node !== undefined && node.metadata.annotations?.[joinedAnnotation] === undefined) {
    throw clash(nodeName, `a Node named ${nodeName} is already registered, not by a joined agent (it is the server's own node, or an agent runs with the cluster kubeconfig)`, `or remove that Node first (kubectl delete node ${nodeName})`);
  }
  const credential = newNodeCredential(nodeName);
  try {
    await deps.objects.create(secretsDef(deps.registry), joinTokenNamespace, nodeCredentialSecret(nodeName, credential, token.id), { writer: 'controller' });
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'AlreadyExists') {
      throw clash(nodeName, `node ${nodeName} has joined already and its credential is still valid (Secret ${joinTokenNamespace}/${nodeCredentialSecretName(nodeName)})`, `or, if that host is gone or lost its data directory, revoke its credential first (kubectl -n ${joinTokenNamespace} delete secret ${nodeCredentialSecretName(nodeName)})`);
    }
    throw err;
  }
  return { nodeName, credential, serverVersion: vireoVersion, serverTokenSha256: createHash('sha256').update(deps.serverToken).digest('hex') };
}

function clash(nodeName: string, why: string, orElse: string): ApiError {
  return new ApiError('Conflict', `cannot join as node ${nodeName}: ${why}. Join with another --node-name, ${orElse}`, { details: { kind: 'nodes', name: nodeName } });
}

function secretsDef(registry: ResourceRegistry): ResourceDef {
  const def = registry.lookup('', 'v1', 'secrets');
  if (def === undefined) throw new Error('the registry has no v1 secrets');
  return def;
}
