/**
 * The node's routes to the other nodes' pod ranges (flannel's host-gw
 * backend on a Kubernetes node): it watches every Node and keeps, in the
 * agent's network namespace, one route per other node's pod range via that
 * node's InternalIP (src/net/pod/node-routes.ts), and hands the pod
 * network the cluster's pod ranges, which its pods reach without
 * masquerade. It publishes this node's IPv6 link-local address on its Node
 * for nodes whose only InternalIP is IPv4 (the nexthop of IPv6 pod ranges).
 *
 * VMIs that keep their addresses on another node (live migration) get
 * host routes on top (src/net/pod/vmi-routes.ts), from an informer on
 * every VMI and the sandboxes whose migrated guests arrived here; a
 * departed lease of this node's range is released once its VMI is gone.
 *
 * Started with the agent, whether or not a guest runs yet (node ports and
 * the node itself reach other nodes' pods through the routes too). The
 * routes outlive an agent that leaves its guests running, and go with one
 * that stops them or has none, like the node bridge.
 */
import { recordsAt, stringAt } from '../api/kinds/read.js';
import { podAddresses } from '../api/kinds/vmi-addresses.js';
import { isFinal, nodeNameOf } from '../api/kinds/vm-state.js';
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
import { movedVmiRoutes } from '../net/pod/vmi-routes.js';
import type { RoutedVmi } from '../net/pod/vmi-routes.js';

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

/** A running VMI with pod addresses, as the host routes need it. */
function routedVmiOf(vmi: KObject): RoutedVmi | undefined {
  const node = nodeNameOf(vmi);
  if (node === undefined || isFinal(vmi)) return undefined;
  const ips = podAddresses(vmi);
  return ips.length === 0 ? undefined : { key: `${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`, node, ips };
}

/** Keeps this node's pod routes; see the module comment. */
export class NodePodRoutes {
  private readonly nodes: Informer;
  private readonly vmis: Informer;
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
    this.vmis = new Informer(options.client, resources.virtualMachineInstances, this.logger);
    this.sync = new CoalescedSync(() => this.run(), debounceMs);
  }

  /** Lists the Nodes and makes the routes once; from then on follows the Nodes. */
  async start(): Promise<void> {
    this.nodes.onChange(() => { this.sync.schedule(); });
    this.vmis.onChange(() => { this.sync.schedule(); });
    this.options.podNetwork.onChange(() => { this.sync.schedule(); });
    await Promise.all([this.nodes.start(), this.vmis.start()]);
    await this.sync.start();
  }

  /** Stops following the Nodes; with `removeRoutes` the routes go too. */
  async stop(options: { removeRoutes: boolean }): Promise<void> {
    this.abort.abort();
    if (this.retry !== undefined) clearTimeout(this.retry);
    await this.sync.stop();
    await this.nodes.stop();
    await this.vmis.stop();
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
    const vmis = this.vmis.list();
    await this.releaseDeparted(vmis);
    const moved = vmis.map(routedVmiOf).filter((v) => v !== undefined).sort((a, b) => a.key.localeCompare(b.key));
    const arrived = this.options.podNetwork.arrivedForeignIps();
    const input = JSON.stringify({ nodes, moved, arrived });
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
      const ranges = desiredPodRoutes(nodes, this.options.nodeName);
      const hosts = movedVmiRoutes(moved, nodes, this.options.nodeName, { bridge: this.options.podNetwork.names.bridge, ips: arrived });
      const skipped = [...ranges.skipped, ...hosts.skipped];
      const result = await syncPodRoutes([...ranges.routes, ...hosts.routes], signal);
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

  /** Frees the leases of this node's range kept for migrated VMIs that are gone. */
  private async releaseDeparted(vmis: readonly KObject[]): Promise<void> {
    try {
      const released = await this.options.podNetwork.releaseDeparted(new Set(vmis.map((v) => v.metadata.uid ?? '')));
      if (released.length > 0) this.logger.info('released the pod addresses of migrated VMIs that are gone', { uids: released });
    } catch (err) {
      this.logger.warn('cannot release the pod addresses of migrated VMIs that are gone; trying again at the next change', { err });
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
