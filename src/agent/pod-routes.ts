/**
 * The node's routes to the other nodes' pod ranges (flannel's host-gw
 * backend on a Kubernetes node): it watches every Node and keeps, in the
 * agent's network namespace, one route per other node's pod range via that
 * node's InternalIP (src/net/pod/node-routes.ts), and hands the pod
 * network the cluster's pod ranges, which its pods reach without
 * masquerade. It publishes this node's IPv6 link-local address on its Node
 * for nodes whose only InternalIP is IPv4 (the nexthop of IPv6 pod ranges).
 *
 * Started with the agent, whether or not a guest runs yet (node ports and
 * the node itself reach other nodes' pods through the routes too). The
 * routes outlive an agent that leaves its guests running, and go with one
 * that stops them or has none, like the node bridge.
 */
import { recordsAt, stringAt } from '../api/kinds/read.js';
import type { KObject } from '../api/object.js';
import type { Client } from '../client/index.js';
import { Informer, resources } from '../client/index.js';
import { podCidrsOf } from '../controllers/nodeipam/controller.js';
import type { Logger } from '../log/logger.js';
import { CoalescedSync } from '../net/coalesced-sync.js';
import type { PodNetwork } from '../net/pod/index.js';
import { clusterPodRanges, desiredPodRoutes, linkLocalAnnotation, linkLocalBeside, removePodRoutes, syncPodRoutes } from '../net/pod/node-routes.js';
import type { RouteNode } from '../net/pod/node-routes.js';
import { parseAddress } from '../net/pod/cidr.js';

export interface NodePodRoutesOptions {
  client: Client;
  nodeName: string;
  podNetwork: PodNetwork;
  logger: Logger;
}

/** Changes coalesce over this window (a Node's podCIDRs and addresses arrive in separate writes). */
const debounceMs = 200;
/** A failed sync, or a link-local address still under duplicate address detection, is tried again after this. */
const retryMs = 3_000;

/** The InternalIP addresses of `node`, in the order `status.addresses` lists them. */
function internalIps(node: KObject): string[] {
  return recordsAt(node, 'status', 'addresses').flatMap((entry) => {
    const type = stringAt(entry, 'type');
    const address = stringAt(entry, 'address');
    return type === 'InternalIP' && address !== undefined && parseAddress(address) !== undefined ? [address] : [];
  });
}

function routeNodeOf(node: KObject): RouteNode {
  const linkLocal = node.metadata.annotations?.[linkLocalAnnotation];
  return { name: node.metadata.name ?? '', podCidrs: podCidrsOf(node), addresses: internalIps(node), ...(linkLocal === undefined ? {} : { linkLocal }) };
}

/** Keeps this node's pod routes; see the module comment. */
export class NodePodRoutes {
  private readonly nodes: Informer;
  private readonly sync: CoalescedSync;
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  /** What the last successful sync was computed from: a Node heartbeat that changes nothing here syncs nothing. */
  private lastInput: string | undefined;
  private lastSkipped = '';
  private lastPublishError = '';
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly options: NodePodRoutesOptions) {
    this.logger = options.logger.child({ component: 'pod-routes' });
    this.nodes = new Informer(options.client, resources.nodes, this.logger);
    this.sync = new CoalescedSync(() => this.run(), debounceMs);
  }

  /** Lists the Nodes and makes the routes once; from then on follows the Nodes. */
  async start(): Promise<void> {
    this.nodes.onChange(() => { this.sync.schedule(); });
    await this.nodes.start();
    await this.sync.start();
  }

  /** Stops following the Nodes; with `removeRoutes` the routes go too. */
  async stop(options: { removeRoutes: boolean }): Promise<void> {
    this.abort.abort();
    if (this.retry !== undefined) clearTimeout(this.retry);
    await this.sync.stop();
    await this.nodes.stop();
    if (!options.removeRoutes) return;
    try {
      const removed = await removePodRoutes(AbortSignal.timeout(30_000));
      if (removed.length > 0) this.logger.info('removed the routes to other nodes\' pod ranges', { removed });
    } catch (err) {
      this.logger.error('cannot remove the routes to other nodes\' pod ranges', { err });
    }
  }

  private later(): void {
    if (this.retry !== undefined || this.abort.signal.aborted) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.lastInput = undefined;
      this.sync.schedule();
    }, retryMs);
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const nodes = this.nodes.list().map(routeNodeOf).sort((a, b) => a.name.localeCompare(b.name));
    const input = JSON.stringify(nodes);
    if (input === this.lastInput) return;
    try {
      const self = nodes.find((n) => n.name === this.options.nodeName);
      // Publishing is retried apart from the routes: a Node that cannot be patched still gets and gives its IPv4 routes.
      const waiting = self === undefined ? false : await this.publishLinkLocal(self, nodes, signal).catch((err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        if (!signal.aborted && message !== this.lastPublishError) this.logger.warn('cannot publish the node\'s IPv6 link-local address on its Node: other nodes route no IPv6 pod traffic here; trying again', { error: message });
        this.lastPublishError = message;
        return true;
      });
      const { routes, skipped } = desiredPodRoutes(nodes, this.options.nodeName);
      const result = await syncPodRoutes(routes, signal);
      await this.options.podNetwork.setClusterPodRanges(clusterPodRanges(nodes), signal);
      if (result.installed.length > 0 || result.removed.length > 0) this.logger.info('routes to other nodes\' pod ranges', { installed: result.installed, removed: result.removed });
      const notRouted = [...skipped, ...result.skipped];
      const skippedText = JSON.stringify(notRouted);
      if (skippedText !== this.lastSkipped && notRouted.length > 0) this.logger.warn('pod ranges of other nodes that get no route: their pods cannot be reached from this node', { skipped: notRouted });
      this.lastSkipped = skippedText;
      if (waiting) this.later();
      else this.lastInput = input;
    } catch (err) {
      if (signal.aborted) return;
      this.logger.error('cannot sync the routes to other nodes\' pod ranges; trying again', { err });
      this.later();
    }
  }

  /**
   * Publishes this node's IPv6 link-local address when it has no IPv6
   * InternalIP and some Node has an IPv6 pod range; true when the address
   * is not usable yet (still under duplicate address detection).
   */
  private async publishLinkLocal(self: RouteNode, nodes: readonly RouteNode[], signal: AbortSignal): Promise<boolean> {
    const v4 = self.addresses.find((a) => parseAddress(a)?.family === 4);
    const hasV6 = self.addresses.some((a) => parseAddress(a)?.family === 6);
    const needed = nodes.some((n) => n.podCidrs.some((c) => c.includes(':')));
    if (v4 === undefined || hasV6 || !needed) return false;
    const linkLocal = await linkLocalBeside(v4, signal);
    if (linkLocal === undefined) return true;
    if (linkLocal !== self.linkLocal) {
      await this.options.client.patch(resources.nodes, undefined, self.name, 'merge', { metadata: { annotations: { [linkLocalAnnotation]: linkLocal } } });
      this.logger.info('published the node\'s IPv6 link-local address, the nexthop of its IPv6 pod range', { address: linkLocal });
    }
    return false;
  }
}
