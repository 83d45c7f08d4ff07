/**
 * Who may read this node's volume exports besides the API server: another
 * node's agent copying a volume into a claim of its own node, with its node
 * credential. The agent cannot know every node's credential, so it asks
 * the API server (a TokenReview, `token-reviewer.ts`, as the kubelet's webhook authentication
 * does) and then checks the copy's target claim is on the presenting node
 * (the Node authorizer's rule). Answers are cached briefly, keyed by the
 * token's digest, so a copy's many range requests cost one review.
 */
import { ApiError } from '../api/errors.js';
import type { Client } from '../client/index.js';
import { resources } from '../client/index.js';
import { claimNode, exportTargetWhere } from '../storage/local/index.js';
import { stringAt } from '../api/kinds/read.js';
import { TokenReviewer } from './token-reviewer.js';

const nodeUserPrefix = 'system:node:';

export class ExportAccess {
  private readonly reviewer: TokenReviewer;

  constructor(private readonly client: Client, now: () => number = Date.now) {
    this.reviewer = new TokenReviewer(client, now);
  }

  /** Resolves when `token` may read the export for the copy into claim `targetUid`; 401/403 saying why otherwise. */
  async authorize(token: string, targetUid: string): Promise<void> {
    const user = await this.reviewer.review(token);
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

}
