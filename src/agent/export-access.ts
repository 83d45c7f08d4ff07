/**
 * Who may read this node's volume exports besides the API server: another
 * node's agent copying a volume into a claim of its own node, with its node
 * credential. The agent cannot know every node's credential, so it asks
 * the API server (a TokenReview, as the kubelet's webhook authentication
 * does) and then checks the copy's target claim is on the presenting node
 * (the Node authorizer's rule). Answers are cached briefly, keyed by the
 * token's digest, so a copy's many range requests cost one review.
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import type { Client } from '../client/index.js';
import { resources } from '../client/index.js';
import { claimNode, exportTargetWhere } from '../storage/local/index.js';
import { stringAt } from '../api/kinds/read.js';

/** How long a review's answer is trusted: a revoked credential stops working within this. */
const reviewTtlMs = 30_000;
const nodeUserPrefix = 'system:node:';
const tokenReviewPath = '/apis/authentication.k8s.io/v1/tokenreviews';

/** Who a reviewed token is. */
type Reviewed = { authenticated: true; username: string; groups: string[] } | { authenticated: false; error: string };

export class ExportAccess {
  private readonly cache = new Map<string, { answer: Reviewed; expires: number }>();

  constructor(private readonly client: Client, private readonly now: () => number = Date.now) {}

  /** Resolves when `token` may read the export for the copy into claim `targetUid`; 401/403 saying why otherwise. */
  async authorize(token: string, targetUid: string): Promise<void> {
    const user = await this.review(token);
    if (!user.authenticated) throw new ApiError('Unauthorized', `Unauthorized: the API server does not know this bearer token (${user.error})`);
    if (user.groups.includes('system:masters')) return;
    if (!user.username.startsWith(nodeUserPrefix)) {
      throw new ApiError('Forbidden', `${user.username} may not read volume exports: they are for the API server and for node agents copying into claims of their node`);
    }
    const node = user.username.slice(nodeUserPrefix.length);
    const claims = await this.client.list(resources.persistentVolumeClaims);
    const claim = claims.items.find((pvc) => pvc.metadata.uid === targetUid);
    const volumeName = claim === undefined ? undefined : stringAt(claim, 'spec', 'volumeName');
    const pv = volumeName === undefined ? undefined : await this.client.tryGet(resources.persistentVolumes, undefined, volumeName);
    const where = claim === undefined ? undefined : claimNode(claim, pv);
    if (where !== node) {
      throw new ApiError('Forbidden', `node ${node} may not read the volume export for target ${targetUid}: ${exportTargetWhere(claim, where)}; a node credential reads only the exports copied into claims of its own node`);
    }
  }

  private async review(token: string): Promise<Reviewed> {
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.cache.get(key);
    if (cached !== undefined && cached.expires > this.now()) return cached.answer;
    const response = await this.client.raw('POST', tokenReviewPath, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    if (response.status !== 201 && response.status !== 200) {
      throw new ApiError('ServiceUnavailable', `the API server did not review the bearer token (${response.status}: ${response.body.slice(0, 200)}): try again in a moment`);
    }
    const answer = parseReview(response.body);
    for (const [k, v] of this.cache) if (v.expires <= this.now()) this.cache.delete(k);
    this.cache.set(key, { answer, expires: this.now() + reviewTtlMs });
    return answer;
  }
}

/** A TokenReview's status, checked before it is believed. */
function parseReview(body: string): Reviewed {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new ApiError('ServiceUnavailable', 'the API server answered a TokenReview with something that is not JSON');
  }
  const status = isPlainObject(parsed) && isPlainObject(parsed.status) ? parsed.status : undefined;
  if (status === undefined || typeof status.authenticated !== 'boolean') throw new ApiError('ServiceUnavailable', 'the API server answered a TokenReview without status.authenticated');
  if (!status.authenticated) return { authenticated: false, error: typeof status.error === 'string' ? status.error : 'not authenticated' };
  const user = isPlainObject(status.user) ? status.user : {};
  const groups = Array.isArray(user.groups) ? user.groups.filter((g): g is string => typeof g === 'string') : [];
  if (typeof user.username !== 'string' || user.username === '') throw new ApiError('ServiceUnavailable', 'the API server answered a TokenReview without status.user.username');
  return { authenticated: true, username: user.username, groups };
}
