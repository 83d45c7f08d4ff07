/**
 * Who presented a bearer token to this node's agent endpoint, as the API
 * server says: a TokenReview (`authentication.k8s.io/v1`, as the kubelet's
 * webhook authentication asks), since a joined agent cannot know every
 * node's credential or scraper's token. Answers are cached briefly, keyed
 * by the token's digest, so many requests with one token cost one review
 * and a revoked token stops working within the cache's lifetime.
 */
import { createHash } from 'node:crypto';
import { ApiError } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import type { Client } from '../client/index.js';

/** How long a review's answer is trusted: a revoked token stops working within this. */
const reviewTtlMs = 30_000;
const tokenReviewPath = '/apis/authentication.k8s.io/v1/tokenreviews';

/** Who a reviewed token is. */
export type Reviewed = { authenticated: true; username: string; groups: string[] } | { authenticated: false; error: string };

export class TokenReviewer {
  private readonly cache = new Map<string, { answer: Reviewed; expires: number }>();

  constructor(private readonly client: Client, private readonly now: () => number = Date.now) {}

  /** The API server's answer for `token` (cached for a short while); 503 when the server cannot answer. */
  async review(token: string): Promise<Reviewed> {
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
