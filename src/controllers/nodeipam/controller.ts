/**
 * Node IPAM (kube-controller-manager's `--allocate-node-cidrs` range
 * allocator): every Node gets `spec.podCIDR`/`spec.podCIDRs`, one subnet
 * per family of the cluster CIDRs (`vireo server --cluster-cidr`), the
 * lowest free one; a Node that goes frees its subnets. The node agent
 * builds its pod network from them.
 *
 * Level-based: the used subnets are re-read from every Node on each pass,
 * plus the ones this controller wrote and the cache has not seen yet (the
 * queue runs one pass at a time, so two Nodes never get the same subnet).
 */
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { arrayAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import type { Cidr } from '../../net/pod/cidr.js';
import { formatCidr, parseCidr, subnetAt, subnetCount, subnetIndex } from '../../net/pod/cidr.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';

/** What the allocator hands out. */
export interface NodeIpamOptions {
  /** One range per family (at most one IPv4 and one IPv6), e.g. 10.244.0.0/16 and fd10:244::/56. */
  clusterCidrs: readonly Cidr[];
  /** Prefix length of a node's IPv4 subnet (kube-controller-manager's default 24; never shorter than the range's). */
  nodeMaskV4?: number;
  /** Prefix length of a node's IPv6 subnet (default 64). */
  nodeMaskV6?: number;
}

/** The cluster CIDRs `vireo server` uses unless told otherwise. */
export const defaultClusterCidrs = ['10.244.0.0/16', 'fd10:244::/56'] as const;

/** Parses `--cluster-cidr` (comma-separated, at most one per family); throws saying what is wrong. */
export function parseClusterCidrs(text: string): Cidr[] {
  const cidrs = text.split(',').map((s) => s.trim()).filter((s) => s !== '').map(parseCidr);
  if (cidrs.length === 0) throw new Error('--cluster-cidr is empty: give one IPv4 range and optionally one IPv6 range, e.g. 10.244.0.0/16,fd10:244::/56');
  if (cidrs.filter((c) => c.family === 4).length > 1 || cidrs.filter((c) => c.family === 6).length > 1) {
    throw new Error(`--cluster-cidr ${text} has two ranges of one family: give at most one IPv4 and one IPv6 range`);
  }
  return cidrs;
}

/** See the module comment. */
export class NodeIpamController {
  private readonly nodes: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  /** Ranges in order (the IPv4 one first, as Kubernetes lists dual-stack podCIDRs), each with its node mask. */
  private readonly ranges: { cidr: Cidr; mask: number }[];
  /** What this controller wrote, by node name, until the cache shows it. */
  private readonly written = new Map<string, string[]>();

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: NodeIpamOptions,
  ) {
    this.ranges = [...options.clusterCidrs]
      .sort((a, b) => a.family - b.family)
      .map((cidr) => ({ cidr, mask: Math.max(cidr.prefix, cidr.family === 4 ? options.nodeMaskV4 ?? 24 : options.nodeMaskV6 ?? 64) }));
    this.recorder = new EventRecorder(client, 'cidrAllocator', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 1, baseDelayMs: 200, maxDelayMs: 60_000, objectOf: (key) => this.nodes.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.nodes = this.loop.informer(undefined, () => new Informer(client, resources.nodes, logger));
    this.nodes.onChange((key) => { this.queue.add(key); });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('node IPAM started', { clusterCidrs: this.ranges.map((r) => formatCidr(r.cidr)) });
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async reconcile(key: string): Promise<ReconcileResult | undefined> {
    const name = key.slice(key.indexOf('/') + 1);
    const node = this.nodes.get(key);
    if (node === undefined || node.metadata.deletionTimestamp !== undefined) {
      // Its subnets are free again: they are no longer on any Node.
      this.written.delete(name);
      return undefined;
    }
    const current = podCidrsOf(node);
    if (current.length > 0) {
      this.written.delete(name);
      return undefined;
    }
    const used = this.usedIndexes(name);
    const chosen: string[] = [];
    for (const [i, range] of this.ranges.entries()) {
      const index = lowestFree(subnetCount(range.cidr, range.mask), used[i] ?? new Set());
      if (index === undefined) {
        const message = `no free /${range.mask} is left in the cluster CIDR ${formatCidr(range.cidr)} for Node ${name}: widen --cluster-cidr or delete unused Nodes`;
        this.recorder.record(node, 'Normal', 'CIDRNotAvailable', message);
        this.logger.warn('node CIDR range exhausted', { node: name, clusterCidr: formatCidr(range.cidr) });
        return { requeueAfter: 30_000 };
      }
      chosen.push(formatCidr(subnetAt(range.cidr, range.mask, index)));
    }
    try {
      await this.client.patch(resources.nodes, undefined, name, 'merge', { spec: { podCIDR: chosen[0], podCIDRs: chosen } });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
      throw err;
    }
    this.written.set(name, chosen);
    this.logger.info('node CIDRs allocated', { node: name, podCIDRs: chosen });
    this.recorder.record(node, 'Normal', 'CIDRAssignmentSucceeded', `Node ${name} got pod CIDRs ${chosen.join(', ')}`);
    return undefined;
  }

  /** Per range, the subnet indexes in use by Nodes other than `except`. */
  private usedIndexes(except: string): Set<bigint>[] {
    const used = this.ranges.map(() => new Set<bigint>());
    const claims = new Map<string, string[]>();
    for (const node of this.nodes.list()) claims.set(node.metadata.name ?? '', podCidrsOf(node));
    for (const [name, cidrs] of this.written) if ((claims.get(name) ?? []).length === 0 && claims.has(name)) claims.set(name, cidrs);
    for (const [name, cidrs] of claims) {
      if (name === except) continue;
      for (const text of cidrs) {
        let cidr: Cidr;
        try {
          cidr = parseCidr(text);
        } catch {
          continue;
        }
        for (const [i, range] of this.ranges.entries()) {
          const index = subnetIndex(range.cidr, range.mask, cidr);
          if (index !== undefined) used[i]?.add(index);
        }
      }
    }
    return used;
  }
}

/** A Node's `spec.podCIDRs` (or its single `podCIDR`). */
export function podCidrsOf(node: KObject): string[] {
  const list = arrayAt(node, 'spec', 'podCIDRs').filter((c): c is string => typeof c === 'string');
  if (list.length > 0) return list;
  const single = stringAt(node, 'spec', 'podCIDR');
  return single === undefined ? [] : [single];
}

function lowestFree(count: bigint, used: ReadonlySet<bigint>): bigint | undefined {
  for (let i = 0n; i < count; i++) if (!used.has(i)) return i;
  return undefined;
}
