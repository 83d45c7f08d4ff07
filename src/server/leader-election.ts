/**
 * Leader election on a `coordination.k8s.io/v1` Lease, as client-go's
 * `leaderelection` package does it for kube-controller-manager: every
 * `vireo server` on one store is a candidate; the one holding the Lease runs
 * the cluster's singletons (controllers, scheduler, node IPAM, garbage
 * collector). The holder renews every `retryPeriod`; if it cannot renew
 * within `renewDeadline` (shorter than the lease duration) it stops leading
 * at once, before any other candidate may take the Lease over. A clean stop
 * releases the Lease, so the next candidate takes over at its next try.
 *
 * One difference from client-go: a candidate decides that the holder's lease
 * has expired from the stored `renewTime` (clamped to when it first saw that
 * renewal, if the holder's clock runs ahead), not only from when it saw the
 * record change, and it tries again exactly when the lease expires rather
 * than at its next retry. A dead leader is so replaced within the lease
 * duration of its last renewal. The price is trusting the servers' clocks
 * to agree within `leaseDuration - renewDeadline` (5 s by default).
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
import { ApiError } from '../api/errors.js';
import { resources } from '../client/index.js';
import type { Client } from '../client/index.js';
import type { Logger } from '../log/logger.js';

export interface LeaderElectionOptions {
  /** The Lease: `kube-system/vireo-controller-manager` by default. */
  namespace?: string;
  name?: string;
  /** This candidate: `<hostname>_<random UUID>` by default, as kube-controller-manager's. */
  identity?: string;
  /** Default 15 s. */
  leaseDurationMs?: number;
  /** A leader that could not renew for this long stops leading. Default 10 s; must be shorter than the lease duration. */
  renewDeadlineMs?: number;
  /** How often the leader renews and a candidate tries to acquire. Default 2 s. */
  retryPeriodMs?: number;
  logger: Logger;
}

/** What the elector runs while this candidate leads. */
export interface LeadingCallbacks {
  /** Called on becoming the leader; resolves once the singletons have started. */
  startLeading(): Promise<void>;
  /** Called on losing (or releasing) the Lease; resolves once the singletons have stopped. */
  stopLeading(): Promise<void>;
}

/** The Lease's spec fields the election reads and writes. */
export interface LeaderRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: string;
  renewTime: string;
  leaseTransitions: number;
}

export const defaultLeaderLease = { namespace: 'kube-system', name: 'vireo-controller-manager' } as const;

interface ResolvedOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
}

/** A request that has not answered after this long counts as failed (the store may be cut off and hang). */
const requestTimeoutMs = 5_000;

export class LeaderElector {
  readonly identity: string;
  private readonly options: ResolvedOptions;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private leading = false;
  /** Serialises start/stop of the singletons. */
  private transition: Promise<void> = Promise.resolve();
  /** The record last read and when it was first seen (this process's clock). */
  private observed: { record: LeaderRecord; resourceVersion: string; at: number } | undefined;
  private lastRenewAt = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Client,
    private readonly callbacks: LeadingCallbacks,
    options: LeaderElectionOptions,
  ) {
    const leaseDurationMs = options.leaseDurationMs ?? 15_000;
    const renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    const retryPeriodMs = options.retryPeriodMs ?? 2_000;
    if (!Number.isInteger(leaseDurationMs / 1000) || leaseDurationMs <= 0) throw new Error(`leader election: the lease duration (${leaseDurationMs} ms) must be whole seconds: the Lease stores leaseDurationSeconds as an integer`);
    if (!(renewDeadlineMs < leaseDurationMs)) throw new Error(`leader election: the renew deadline (${renewDeadlineMs} ms) must be shorter than the lease duration (${leaseDurationMs} ms)`);
    if (!(retryPeriodMs < renewDeadlineMs)) throw new Error(`leader election: the retry period (${retryPeriodMs} ms) must be shorter than the renew deadline (${renewDeadlineMs} ms)`);
    this.identity = options.identity ?? `${hostname().toLowerCase()}_${randomUUID()}`;
    this.options = {
      namespace: options.namespace ?? defaultLeaderLease.namespace,
      name: options.name ?? defaultLeaderLease.name,
      identity: this.identity,
      leaseDurationMs,
      renewDeadlineMs,
      retryPeriodMs,
      logger: options.logger.child({ component: 'leader-election', lease: `${options.namespace ?? defaultLeaderLease.namespace}/${options.name ?? defaultLeaderLease.name}`, identity: this.identity }),
    };
  }

  /** Whether this candidate holds the Lease (and runs the singletons) now. */
  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts competing for the Lease in the background. */
  start(): void {
    this.running ??= this.run();
  }

  /** Stops leading (singletons first), releases the Lease if held, and stops competing. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
    const wasLeading = this.leading;
    await this.loseLeadership('stopping');
    if (wasLeading) await this.release();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      let waitMs = this.options.retryPeriodMs;
      try {
        const outcome = await withTimeout(this.tryAcquireOrRenew(), requestTimeoutMs);
        if (outcome.held) {
          this.lastRenewAt = outcome.at;
          this.armDeadline();
          if (!this.leading && !signal.aborted) await this.gainLeadership();
        } else if (this.leading) {
          await this.loseLeadership('another server holds the Lease');
        } else if (outcome.expiresInMs !== undefined) {
          // Try again the moment the holder's lease runs out, not up to a retry period later.
          waitMs = Math.max(10, Math.min(waitMs, outcome.expiresInMs + 10));
        }
      } catch (err) {
        if (!signal.aborted) this.options.logger.warn('cannot read or write the leader Lease; retrying', { error: err instanceof Error ? err.message : String(err), leading: this.leading });
      }
      await sleep(waitMs, signal);
    }
  }

  /** One round of client-go's tryAcquireOrRenew. */
  private async tryAcquireOrRenew(): Promise<{ held: true; at: number } | { held: false; expiresInMs: number | undefined }> {
    const { namespace, name, identity, leaseDurationMs } = this.options;
    const now = Date.now();
    const lease = await this.client.tryGet(resources.leases, namespace, name);
    if (lease === undefined) {
      const record: LeaderRecord = { holderIdentity: identity, leaseDurationSeconds: leaseDurationMs / 1000, acquireTime: microTime(new Date(now)), renewTime: microTime(new Date(now)), leaseTransitions: 0 };
      try {
        await this.client.create(resources.leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { namespace, name }, spec: { ...record } });
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'AlreadyExists') return { held: false, expiresInMs: undefined };
        throw err;
      }
      return { held: true, at: now };
    }
    const record = leaderRecordOf(lease);
    const resourceVersion = lease.metadata.resourceVersion ?? '';
    if (this.observed === undefined || this.observed.resourceVersion !== resourceVersion) this.observed = { record, resourceVersion, at: now };
    const mine = record.holderIdentity === identity;
    if (!mine && record.holderIdentity !== '') {
      const renewedAt = Math.min(Date.parse(record.renewTime) || this.observed.at, this.observed.at);
      const expiresAt = renewedAt + record.leaseDurationSeconds * 1000;
      if (expiresAt > now) return { held: false, expiresInMs: expiresAt - now };
    }
    const next: LeaderRecord = mine
      ? { ...record, renewTime: microTime(new Date(now)), leaseDurationSeconds: leaseDurationMs / 1000 }
      : { holderIdentity: identity, leaseDurationSeconds: leaseDurationMs / 1000, acquireTime: microTime(new Date(now)), renewTime: microTime(new Date(now)), leaseTransitions: record.leaseTransitions + 1 };
    try {
      // resourceVersion makes this a compare-and-swap: of two candidates that both saw the lease expire, one wins.
      await this.client.update(resources.leases, { ...lease, metadata: { ...lease.metadata, resourceVersion }, spec: { ...next } });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) return { held: false, expiresInMs: undefined };
      throw err;
    }
    if (!mine) this.options.logger.info('acquired the leader Lease', { previousHolder: record.holderIdentity, transitions: next.leaseTransitions });
    return { held: true, at: now };
  }

  /** Leading ends `renewDeadline` after the last successful renewal unless another renewal comes first. */
  private armDeadline(): void {
    clearTimeout(this.deadlineTimer);
    const left = this.lastRenewAt + this.options.renewDeadlineMs - Date.now();
    this.deadlineTimer = setTimeout(() => {
      this.options.logger.error('could not renew the leader Lease within the renew deadline: stopping the controllers', { renewDeadlineMs: this.options.renewDeadlineMs });
      void this.loseLeadership('renew deadline passed');
    }, Math.max(0, left));
    this.deadlineTimer.unref();
  }

  private gainLeadership(): Promise<void> {
    this.leading = true;
    this.options.logger.info('became the leader: starting the controllers');
    this.transition = this.transition.then(async () => {
      if (!this.leading) return;
      try {
        await this.callbacks.startLeading();
      } catch (err) {
        this.options.logger.error('the controllers failed to start; giving up the lead', { error: err instanceof Error ? err.message : String(err) });
        this.leading = false;
        await this.callbacks.stopLeading();
      }
    });
    return this.transition;
  }

  private loseLeadership(why: string): Promise<void> {
    clearTimeout(this.deadlineTimer);
    if (!this.leading) return this.transition;
    this.leading = false;
    this.options.logger.warn('stopped leading', { why });
    this.transition = this.transition.then(() => this.callbacks.stopLeading());
    return this.transition;
  }

  /** As client-go's ReleaseOnCancel: an empty holder and a 1 s duration, so the next candidate takes over at once. */
  private async release(): Promise<void> {
    const { namespace, name, identity } = this.options;
    try {
      const lease = await withTimeout(this.client.tryGet(resources.leases, namespace, name), requestTimeoutMs);
      if (lease === undefined || leaderRecordOf(lease).holderIdentity !== identity) return;
      const record = leaderRecordOf(lease);
      const now = microTime(new Date());
      await withTimeout(this.client.update(resources.leases, { ...lease, spec: { ...record, holderIdentity: '', leaseDurationSeconds: 1, renewTime: now, acquireTime: now } }), requestTimeoutMs);
      this.options.logger.info('released the leader Lease');
    } catch (err) {
      this.options.logger.warn('could not release the leader Lease; another server takes over when it expires', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}

/** The Lease's spec as the election reads it; missing fields read as an unheld lease. */
export function leaderRecordOf(lease: KObject): LeaderRecord {
  const spec = isPlainObject(lease.spec) ? lease.spec : {};
  const text = (value: unknown): string => (typeof value === 'string' ? value : '');
  const count = (value: unknown, fallback: number): number => (typeof value === 'number' && Number.isFinite(value) ? value : fallback);
  return {
    holderIdentity: text(spec.holderIdentity),
    leaseDurationSeconds: count(spec.leaseDurationSeconds, 15),
    acquireTime: text(spec.acquireTime),
    renewTime: text(spec.renewTime),
    leaseTransitions: count(spec.leaseTransitions, 0),
  };
}

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
function microTime(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000Z`;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no answer within ${ms} ms`)); }, ms);
    work.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (err: unknown) => { clearTimeout(timer); reject(err instanceof Error ? err : new Error(String(err))); },
    );
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) { resolve(); return; }
    const onAbort = (): void => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
