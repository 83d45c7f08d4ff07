/**
 * Who may read `GET /metrics` on this node's agent endpoint besides the
 * API server: a scraper with the cluster's metrics token
 * (`src/api/metrics-token.ts`), or an admin. The agent asks the API server
 * who the token is (`token-reviewer.ts`, answers cached briefly); a node
 * credential or anything else is refused with a 403 saying what to use.
 */
import { ApiError } from '../api/errors.js';
import { metricsReaderGroup } from '../api/metrics-token.js';
import type { Client } from '../client/index.js';
import { TokenReviewer } from './token-reviewer.js';

export class MetricsAccess {
  private readonly reviewer: TokenReviewer;

  constructor(client: Client, now: () => number = Date.now) {
    this.reviewer = new TokenReviewer(client, now);
  }

  /** Resolves when `token` may read this agent's metrics; 401/403 saying why otherwise. */
  async authorize(token: string): Promise<void> {
    const user = await this.reviewer.review(token);
    if (!user.authenticated) throw new ApiError('Unauthorized', `Unauthorized: the API server does not know this bearer token (${user.error}); scrape with a metrics token ("vireo token create --metrics")`);
    if (user.groups.includes(metricsReaderGroup) || user.groups.includes('system:masters')) return;
    throw new ApiError('Forbidden', `${user.username} may not read this agent's metrics: /metrics takes the cluster token or a metrics token ("vireo token create --metrics")`);
  }
}
