/**
 * When the node pulls an image, as the kubelet decides for a launcher
 * pod's container: `imagePullPolicy` Always, IfNotPresent or Never, by
 * default Always for `:latest` (or no tag) and IfNotPresent otherwise.
 * Images on `localhost` without a port are local-only, never pulled, the
 * way podman treats `localhost/`: the node's own imports (the test guest)
 * live there. Pure functions.
 */
import type { ImageReference } from './reference.js';

/** KubeVirt's and Kubernetes' `imagePullPolicy`. */
export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never';

const policies: readonly PullPolicy[] = ['Always', 'IfNotPresent', 'Never'];

/** An `imagePullPolicy` that is none of the three; the message lists them. */
export class PullPolicyError extends Error {
  constructor(value: string) {
    super(`imagePullPolicy "${value}" is not one of ${policies.join(', ')}`);
    this.name = 'PullPolicyError';
  }
}

/** The policy for `ref`: `given` when set, else the default for its tag. Throws a {@link PullPolicyError} for an unknown one. */
export function pullPolicy(ref: ImageReference, given: string | undefined): PullPolicy {
  if (given !== undefined && given !== '') {
    const known = policies.find((p) => p === given);
    if (known === undefined) throw new PullPolicyError(given);
    return known;
  }
  return ref.digest === undefined && ref.tag === 'latest' ? 'Always' : 'IfNotPresent';
}

/** Whether `ref` is on `localhost` without a port: only ever in the node's store, never pulled. */
export function isLocalOnly(ref: ImageReference): boolean {
  return ref.registry === 'localhost';
}
