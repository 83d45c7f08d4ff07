/**
 * The etcd backend's connection: the etcd3 client set up for a store (no
 * retries of its own except on another member when a connection could not
 * be made at all, a deadline on every request, quick watch reconnects),
 * waiting for etcd at open, and finding etcd's compacted revision, which
 * etcd only tells in a watch refusal the client drops.
 */
import { Etcd3 } from 'etcd3';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop, retry } from 'cockatiel';
import type { IBackoff } from 'cockatiel';
import { classifyEtcdError, etcdRevision, storeRevision } from './etcd-codec.js';
import { StoreError } from './types.js';
import type { EtcdKeys } from './etcd-codec.js';

const retryDelayMs = 250;

/** gRPC's words for a request that never reached its member: no connection could be made. */
function notConnected(error: Error): boolean {
  return /No connection established|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/.test(error.message);
}

/** A client for `endpoints` whose requests each have `requestTimeoutMs`. */
export function createEtcdClient(endpoints: readonly string[], requestTimeoutMs: number): Etcd3 {
  return new Etcd3({
    hosts: [...endpoints],
    dialTimeout: requestTimeoutMs,
    // gRPC backs off up to 2 minutes between reconnects by default; a restarted etcd should be used within a second.
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 250, 'grpc.max_reconnect_backoff_ms': 1_000 },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
    // No retries inside the client: a retried write whose first try landed would fail KeyExists or
    // Conflict; the store reports Unavailable and its caller decides. Watches reconnect every 500 ms.
    // Except a request that could not connect to its member (nothing was sent): it goes to the next
    // member, and the refusing member is passed over for a second, so one dead member of three costs nothing.
    faultHandling: {
      host: () => (endpoints.length > 1 ? circuitBreaker(handleWhen(notConnected), { halfOpenAfter: 1_000, breaker: new ConsecutiveBreaker(1) }) : noop),
      global: endpoints.length > 1 ? retry(handleWhen(notConnected), { maxAttempts: endpoints.length - 1 }) : noop,
      watchBackoff: constantBackoff(500),
    },
  });
}

/**
 * Reads etcd's current revision (as a store revision), retrying until
 * `timeoutMs`; `onWaiting` hears every few seconds why it is still waiting.
 */
export async function waitForEtcd(
  client: Etcd3,
  keys: EtcdKeys,
  options: { endpoints: readonly string[]; timeoutMs: number; onWaiting: ((message: string) => void) | undefined },
): Promise<number> {
  const deadline = Date.now() + options.timeoutMs;
  let lastSaid = 0;
  for (;;) {
    try {
      return storeRevision((await client.kv.range({ key: keys.encode(''), limit: 1, keys_only: true })).header.revision);
    } catch (error) {
      const failure = classifyEtcdError(error);
      const detail = failure.kind === 'unavailable' ? failure.detail : 'unexpected answer';
      if (Date.now() >= deadline) {
        throw new StoreError(
          'Unavailable',
          `cannot reach etcd at ${options.endpoints.join(', ')} after ${Math.round(options.timeoutMs / 1000)} s (${detail}). Start etcd there, or give the running members' client URLs: --store etcd://host:port[,host:port…]`,
        );
      }
      if (Date.now() - lastSaid > 5_000) {
        lastSaid = Date.now();
        options.onWaiting?.(`waiting for etcd at ${options.endpoints.join(', ')}: ${detail}`);
      }
      await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
    }
  }
}

/**
 * The compacted revision, known to be in `[low, high]`, found by
 * bisection: a range at the compacted revision itself still reads, one
 * below fails. About 20 small reads for a million revisions; done at open
 * and when etcd refuses a revision the store thought it still had.
 */
export async function findCompacted(client: Etcd3, keys: EtcdKeys, low: number, high: number): Promise<number> {
  let readable = high;
  let unreadable = low;
  while (unreadable < readable) {
    const middle = Math.floor((unreadable + readable) / 2);
    try {
      await client.kv.range({ key: keys.encode(''), limit: 1, keys_only: true, revision: etcdRevision(middle) });
      readable = middle;
    } catch (error) {
      if (classifyEtcdError(error).kind !== 'compacted') throw error;
      unreadable = middle + 1;
    }
  }
  return readable;
}

/** The watch reconnect delay: constant, so a restarted etcd is found again within half a second. */
function constantBackoff(delayMs: number): IBackoff<unknown> {
  const backoff: IBackoff<unknown> = { duration: delayMs, next: () => backoff };
  return backoff;
}
