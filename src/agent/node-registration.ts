/**
 * The agent's presence in the API, as a kubelet keeps it: its Node (labels,
 * capacity, allocatable, nodeInfo, conditions, and for `vireo agent` the
 * endpoint the API server reaches it on), and a Lease in
 * `kube-node-lease` renewed every 10 s (more often when the server's grace
 * period is short) that says the agent is alive. The Node's status is
 * refreshed every minute, at once when the Node is not Ready (the server
 * marked it Unknown while the agent was cut off), and the Node recreated if
 * someone deleted it. Each successful renew feeds the self-fencing clock
 * (src/agent/node-fence.ts), which learns the grace period from the Node.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultNodeMonitorGracePeriodMs, leaseRenewIntervalMs, nodeMonitorGracePeriodAnnotation, parseDurationMs } from '../api/kinds/node-lifecycle.js';
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { recordsAt, stringAt } from '../api/kinds/read.js';
import type { Client } from '../client/index.js';
import { resources } from '../client/index.js';
import type { Logger } from '../log/logger.js';
import { agentCertificateAnnotation } from './endpoint-api.js';
import type { AgentEndpointInfo } from './endpoint-api.js';
import type { HostDescription } from './node-info.js';
import type { NodeFence } from './node-fence.js';
import { rfc3339 } from './vmi-status.js';

/** What registering the Node needs. */
export interface NodeRegistrarOptions {
  client: Client;
  nodeName: string;
  host: HostDescription;
  logger: Logger;
  /** The agent's HTTPS endpoint (`vireo agent`), published on the Node; none for the agent inside `vireo server`. */
  endpoint?: AgentEndpointInfo;
  /** More annotations to keep on the Node. */
  annotations?: Record<string, string>;
  /** Default 10 s, as the kubelet, or a quarter of the fencing timeout when that is shorter. */
  leaseRenewMs?: number;
  /** The self-fencing clock: told of every successful renew and of the grace period the server publishes. */
  fence?: NodeFence;
  /** Default 60 s. */
  statusRefreshMs?: number;
}

/** Where node Leases live, as in Kubernetes. */
export const leaseNamespace = 'kube-node-lease';
/** The kubelet's default: a Lease not renewed for 40 s means the node is gone. */
export const leaseDurationSeconds = 40;

/** Keeps the agent's Node and Lease; see the module comment. */
export class NodeRegistrar {
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private nodeUid: string | undefined;

  constructor(private readonly options: NodeRegistrarOptions) {}

  /** Registers the Node and takes the Lease; then keeps both fresh until `stop`. */
  async start(): Promise<void> {
    this.learnGracePeriod(await this.registerNode());
    const sentAt = performance.now();
    await this.renewLease();
    this.options.fence?.renewed(sentAt);
    this.loop = this.heartbeat();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async heartbeat(): Promise<void> {
    const refreshMs = this.options.statusRefreshMs ?? 60_000;
    let lastStatus = Date.now();
    while (!this.abort.signal.aborted) {
      const renewMs = this.options.leaseRenewMs ?? leaseRenewIntervalMs(this.options.fence?.gracePeriodMs ?? defaultNodeMonitorGracePeriodMs);
      try {
        await sleep(renewMs, undefined, { signal: this.abort.signal });
      } catch {
        return;
      }
      try {
        // A request to a server cut off may hang for minutes: the next renew must not wait for it.
        const sentAt = performance.now();
        await withDeadline(this.renewLease(), renewMs * 2, 'renewing the Lease');
        this.options.fence?.renewed(sentAt);
        const node = await withDeadline(this.options.client.get(resources.nodes, undefined, this.options.nodeName), renewMs * 2, 'reading the Node');
        this.learnGracePeriod(node);
        if (Date.now() - lastStatus >= refreshMs || !isReady(node)) {
          this.learnGracePeriod(await this.registerNode());
          lastStatus = Date.now();
        }
      } catch (err) {
        if (!this.abort.signal.aborted) this.options.logger.warn('node heartbeat failed; retrying', { err });
      }
    }
  }

  /** The grace period the server published on the Node (its node lifecycle controller). */
  private learnGracePeriod(node: KObject): void {
    const text = node.metadata.annotations?.[nodeMonitorGracePeriodAnnotation];
    const ms = text === undefined ? undefined : parseDurationMs(text);
    if (ms !== undefined && ms > 0) this.options.fence?.setGracePeriod(ms);
  }

  /** Creates the Node, or brings its labels and status up to date; resolves with the Node as written. */
  private async registerNode(): Promise<KObject> {
    const { client, nodeName, host, endpoint } = this.options;
    const annotations: Record<string, string> = { ...this.options.annotations, ...(endpoint === undefined ? {} : { [agentCertificateAnnotation]: endpoint.certificate }) };
    const port = endpoint?.port ?? 0;
    let node = await client.tryGet(resources.nodes, undefined, nodeName);
    if (node === undefined) {
      try {
        node = await client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName, labels: host.labels, annotations }, spec: {}, status: nodeStatus(host, port, new Date(), undefined) });
        this.options.logger.info('registered the node', { node: nodeName });
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
        node = await client.get(resources.nodes, undefined, nodeName);
      }
    } else if (differs(host.labels, node.metadata.labels) || differs(annotations, node.metadata.annotations)) {
      node = await client.patch(resources.nodes, undefined, nodeName, 'merge', { metadata: { labels: host.labels, annotations } });
    }
    this.nodeUid = node.metadata.uid;
    return client.patch(resources.nodes, undefined, nodeName, 'merge', { status: nodeStatus(host, port, new Date(), node) }, { subresource: 'status' });
  }

  private async renewLease(): Promise<void> {
    const { client, nodeName } = this.options;
    const renewTime = microTime(new Date());
    try {
      await client.patch(resources.leases, leaseNamespace, nodeName, 'merge', { spec: { holderIdentity: nodeName, leaseDurationSeconds, renewTime } });
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
    const lease: KObject = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: nodeName, namespace: leaseNamespace },
      spec: { holderIdentity: nodeName, leaseDurationSeconds, renewTime },
    };
    // As the kubelet: the Node owns its Lease, so deleting the Node deletes it.
    if (this.nodeUid !== undefined) lease.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: this.nodeUid }];
    try {
      await client.create(resources.leases, lease);
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
    }
  }
}

/** True when the Node's Ready condition is True. */
function isReady(node: KObject): boolean {
  return recordsAt(node, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'True');
}

/** `work`, or a rejection after `ms` saying what took too long (the work itself goes on). */
async function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { reject(new Error(`${what} took longer than ${ms} ms: the API server does not answer`)); }, ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `current` lacks an entry of `wanted` or has another value for it. */
function differs(wanted: Record<string, string>, current: Record<string, string> | undefined): boolean {
  return Object.entries(wanted).some(([k, v]) => current?.[k] !== v);
}

/** The Node's status: what the host has, where its agent listens (0: nowhere), and Ready with the pressure conditions a kubelet reports. */
function nodeStatus(host: HostDescription, port: number, now: Date, previous: KObject | undefined): Record<string, unknown> {
  const stamp = rfc3339(now);
  const before = recordsAt(previous, 'status', 'conditions');
  const condition = (type: string, status: 'True' | 'False', reason: string, message: string): Record<string, string> => {
    const old = before.find((c) => c.type === type);
    const since = old?.status === status ? stringAt(old, 'lastTransitionTime') : undefined;
    return { type, status, reason, message, lastHeartbeatTime: stamp, lastTransitionTime: since ?? stamp };
  };
  return {
    capacity: host.capacity,
    allocatable: host.allocatable,
    addresses: host.addresses,
    nodeInfo: host.nodeInfo,
    daemonEndpoints: { kubeletEndpoint: { Port: port } },
    conditions: [
      condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'vireo agent has sufficient memory available'),
      condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'vireo agent has no disk pressure'),
      condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'vireo agent has sufficient PID available'),
      condition('Ready', 'True', 'KubeletReady', 'vireo agent is posting ready status'),
    ],
  };
}

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
export function microTime(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000Z`;
}
