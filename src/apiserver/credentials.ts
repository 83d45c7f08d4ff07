/**
 * Who a request is from, and what a node may do. Bearer tokens are: the
 * cluster (admin) token, the components' token, a node's own credential
 * (`src/api/node-credential.ts`, checked against the hash in its kube-system
 * Secret on every request, so deleting the Secret revokes it at once), or a
 * join token (`src/api/join-token.ts`), which is good for nothing but the
 * join exchange, or a scraper's metrics token (`src/api/metrics-token.ts`,
 * checked like a node credential), which reads metrics only. A node may act only as itself, as Kubernetes' Node
 * authorizer and NodeRestriction admission have it (`node-restriction.ts`).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../api/errors.js';
import { joinTokenExpired, joinTokenNamespace, joinTokenOfSecret, joinTokenSecretName, parseJoinToken, sameSecret } from '../api/join-token.js';
import type { JoinToken } from '../api/join-token.js';
import { credentialHash, credentialOfSecret, nodeCredentialSecretName, nodeNameOfCredential } from '../api/node-credential.js';
import { metricsTokenHash, metricsTokenIdOf, metricsTokenOfSecret, metricsTokenSecretName } from '../api/metrics-token.js';
import type { Logger } from '../log/logger.js';
import type { ObjectStore } from './object-store.js';
import { NodeRestriction } from './node-restriction.js';
import type { NodeRequest } from './node-restriction.js';
import type { ResourceRequestInfo } from './request-info.js';
import type { ResourceDef } from '../api/resource.js';
import type { ResourceRegistry } from './resources.js';

/** Who sent a request. */
export type Identity =
  | { kind: 'user' }
  | { kind: 'controller' }
  | { kind: 'node'; nodeName: string }
  /** A scraper's read-only token (`src/api/metrics-token.ts`): `/metrics` and nothing else. */
  | { kind: 'metrics'; id: string }
  | { kind: 'joining'; token: JoinToken };

export type { NodeRequest } from './node-restriction.js';

export interface CredentialsOptions {
  objects: ObjectStore;
  registry: ResourceRegistry;
  /** The cluster (admin) token. */
  token: string;
  /** The components' token. */
  componentToken?: string;
  logger: Logger;
}


/** What to do when a join token is refused. */
const newTokenHint = 'create a new one on the server with "vireo token create" and join with it';

export class Credentials {
  private readonly token: Buffer;
  private readonly componentToken: Buffer | undefined;
  private readonly restriction: NodeRestriction;

  constructor(private readonly options: CredentialsOptions) {
    this.restriction = new NodeRestriction({ objects: options.objects, registry: options.registry });
    this.token = Buffer.from(options.token);
    this.componentToken = options.componentToken === undefined ? undefined : Buffer.from(options.componentToken);
  }

  /** The identity of an `Authorization` header; 401 with the reason for a token that is not (or no longer) good. */
  async authenticate(req: IncomingMessage): Promise<Identity> {
    return this.authenticateBearer(bearerOf(req.headers.authorization));
  }

  /** The identity of a bearer token (a request's, or one a TokenReview asks about); 401 saying why otherwise. */
  async authenticateBearer(presented: string | undefined): Promise<Identity> {
    const bytes = Buffer.from(presented ?? '');
    if (sameToken(bytes, this.token)) return { kind: 'user' };
    if (this.componentToken !== undefined && sameToken(bytes, this.componentToken)) return { kind: 'controller' };
    if (presented === undefined) throw new ApiError('Unauthorized', 'Unauthorized');
    const nodeName = nodeNameOfCredential(presented);
    if (nodeName !== undefined) return { kind: 'node', nodeName: await this.checkNodeCredential(nodeName, presented) };
    const metricsId = metricsTokenIdOf(presented);
    if (metricsId !== undefined) return { kind: 'metrics', id: await this.checkMetricsToken(metricsId, presented) };
    const join = parseJoinToken(presented);
    if (join !== undefined) return { kind: 'joining', token: await this.joinToken(join.id, join.secret) };
    throw new ApiError('Unauthorized', 'Unauthorized');
  }

  /** The stored join token `id` when `secret` is its secret and it is still good; 401 saying why otherwise. */
  async joinToken(id: string, secret: string): Promise<JoinToken> {
    const token = await this.knownJoinToken(id);
    if (!sameSecret(token.secret, secret)) throw unknownJoinToken(id);
    if (!token.usages.includes('authentication')) {
      throw new ApiError('Unauthorized', `join token ${id}.… is not for authentication (its Secret lacks usage-bootstrap-authentication: "true"): ${newTokenHint}`);
    }
    return token;
  }

  /** The stored join token `id` if it exists and has not expired (an expired one is deleted); 401 saying why otherwise. */
  async knownJoinToken(id: string): Promise<JoinToken> {
    const stored = await this.objects().tryGet(this.secrets(), joinTokenNamespace, joinTokenSecretName(id));
    const token = stored === undefined ? undefined : joinTokenOfSecret(stored);
    if (token === undefined) throw unknownJoinToken(id);
    if (joinTokenExpired(token, new Date())) {
      this.forget(joinTokenSecretName(id));
      throw new ApiError('Unauthorized', `join token ${id}.… expired at ${token.expiration?.toISOString() ?? '?'}: ${newTokenHint}`);
    }
    return token;
  }

  /** Deletes the join tokens whose expiration has passed, as Kubernetes' token cleaner does. */
  async sweepExpired(now: Date): Promise<void> {
    const list = await this.objects().list(this.secrets(), joinTokenNamespace);
    for (const item of list.items) {
      const token = joinTokenOfSecret(item);
      if (token !== undefined && joinTokenExpired(token, now)) this.forget(joinTokenSecretName(token.id));
    }
  }

  /**
   * Refuses (403, saying why) what a node may not do (`node-restriction.ts`);
   * users and components may do anything. (A join token never gets here:
   * the server refuses it everywhere but the join.)
   */
  async authorize(identity: Identity, request: NodeRequest): Promise<void> {
    if (identity.kind === 'metrics' && !(request.method === 'GET' && request.info.resource === 'nodes' && request.info.group === '' && request.info.subresource === 'proxy/metrics')) {
      throw new ApiError('Forbidden', `a metrics token (user system:vireo:metrics-reader) may not ${request.method} ${request.info.resource}: it reads only /metrics and the nodes' proxy/metrics`);
    }
    if (identity.kind === 'node') await this.restriction.authorize(identity.nodeName, request);
  }

  /** The create-time half (NodeRestriction admission), called with the decoded body of a create. */
  admitCreate(identity: Identity, info: ResourceRequestInfo, input: unknown): void {
    if (identity.kind === 'node') this.restriction.admitCreate(identity.nodeName, info, input);
  }

  /** A node reads a volume export on the server's port only for a copy into a claim of its node. */
  async authorizeExport(identity: Identity, targetUid: string): Promise<void> {
    if (identity.kind === 'node') await this.restriction.authorizeExport(identity.nodeName, targetUid);
  }

  private async checkNodeCredential(nodeName: string, presented: string): Promise<string> {
    const stored = await this.objects().tryGet(this.secrets(), joinTokenNamespace, nodeCredentialSecretName(nodeName));
    const rejoin = 're-join the host with a new join token: on the server "vireo token create", then on the host run vireo agent --server URL --token TOKEN with the same --data-dir';
    if (stored === undefined) throw new ApiError('Unauthorized', `the credential of node ${nodeName} was revoked (its Secret ${joinTokenNamespace}/${nodeCredentialSecretName(nodeName)} is gone): ${rejoin}`);
    const credential = credentialOfSecret(stored);
    if (credential === undefined || credential.nodeName !== nodeName || !sameSecret(credential.hash, credentialHash(presented))) {
      throw new ApiError('Unauthorized', `this is not the current credential of node ${nodeName} (the node joined again since, or its Secret was replaced): ${rejoin}`);
    }
    return nodeName;
  }

  private async checkMetricsToken(id: string, presented: string): Promise<string> {
    const name = metricsTokenSecretName(id);
    const stored = await this.objects().tryGet(this.secrets(), joinTokenNamespace, name);
    const remake = 'make a new one with "vireo token create --metrics" (or "vireo metrics scrape-config", which writes one)';
    if (stored === undefined) throw new ApiError('Unauthorized', `metrics token ${id}.… was revoked (its Secret ${joinTokenNamespace}/${name} is gone): ${remake}`);
    const token = metricsTokenOfSecret(stored);
    if (token === undefined || token.id !== id || !sameSecret(token.hash, metricsTokenHash(presented))) {
      throw new ApiError('Unauthorized', `metrics token ${id}.… is not valid (its Secret ${joinTokenNamespace}/${name} holds another token's hash): ${remake}`);
    }
    return id;
  }

  /** Deletes a Secret in the background; a failure only means the next sweep tries again. */
  private forget(name: string): void {
    this.objects().delete(this.secrets(), joinTokenNamespace, name).catch((err: unknown) => {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) this.options.logger.warn('could not delete an expired join token', { name, err });
    });
  }

  private objects(): ObjectStore {
    return this.options.objects;
  }

  private secrets(): ResourceDef {
    const def = this.options.registry.lookup('', 'v1', 'secrets');
    if (def === undefined) throw new Error('the registry has no v1 secrets');
    return def;
  }
}

function unknownJoinToken(id: string): ApiError {
  return new ApiError('Unauthorized', `join token ${id}.… is not valid: no such token (it was deleted, or mistyped): ${newTokenHint}`);
}


function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

/** Constant-time token comparison. */
function sameToken(presented: Buffer, expected: Buffer): boolean {
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}


