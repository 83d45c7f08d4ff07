/**
 * The node's Services (kube-proxy and node-local DNS on a Kubernetes node),
 * started once the pod network is up:
 *
 * - a {@link ServiceProxy} programming this agent's service table
 *   `vireo_svc_<id>` (named from the data directory like the pod network's
 *   other names, so agents sharing a host never touch each other's); it
 *   outlives an agent that leaves its guests running (the next agent
 *   reprograms it) and goes with one that stops them;
 * - the cluster DNS ({@link ClusterDns}) on the node bridge's IPv4 gateway,
 *   port 53: the DNS server the sandboxes hand their guests by DHCP. Every
 *   guest reaches its gateway (a masquerade guest through its sandbox's
 *   NAT), so no cluster IP or extra address is needed. It holds only a
 *   socket and goes with the agent.
 */
import type { Client } from '../client/index.js';
import type { Logger } from '../log/logger.js';
import { ClusterDns } from '../net/dns/index.js';
import type { PodNetwork } from '../net/pod/index.js';
import { ServiceProxy, removeServicesProgram } from '../net/services/index.js';
import { runNft } from '../net/policy/index.js';

export interface NodeServicesOptions {
  client: Client;
  podNetwork: PodNetwork;
  logger: Logger;
  /** The cluster DNS's port on the gateway (default 53; tests of the DNS alone may pick another). */
  dnsPort?: number;
}

/** Starts and stops this node's service proxy and DNS; see the module comment. */
export class NodeServices {
  readonly tableName: string;
  private proxy: ServiceProxy | undefined;
  private dns: ClusterDns | undefined;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(private readonly options: NodeServicesOptions) {
    this.tableName = options.podNetwork.names.serviceTable;
  }

  /** Starts now when the pod network is up, else as soon as it comes up. */
  start(): void {
    this.options.podNetwork.onChange(() => { this.startIfUp(); });
    this.startIfUp();
  }

  /** Stops both; with `removeTable` (the agent stops its guests) the table goes too. */
  async stop(options: { removeTable: boolean }): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.dns?.stop();
    try {
      if (this.proxy !== undefined) await this.proxy.stop({ keepTable: !options.removeTable });
      // An earlier agent's table, when this one never started a proxy.
      else if (options.removeTable) await runNft({}, ['-f', '-'], { input: removeServicesProgram(this.tableName) });
    } catch (err) {
      this.options.logger.error('cannot remove the service table', { component: 'service-proxy', table: this.tableName, err });
    }
    await this.starting;
  }

  private startIfUp(): void {
    if (this.stopped || this.starting !== undefined || !this.options.podNetwork.isUp()) return;
    // startParts reports its own failures.
    this.starting = this.startParts();
  }

  private async startParts(): Promise<void> {
    const { client, podNetwork } = this.options;
    const proxyLogger = this.options.logger.child({ component: 'service-proxy' });
    const proxy = new ServiceProxy(client, { tableName: this.tableName, logger: proxyLogger });
    this.proxy = proxy;
    proxyLogger.info('proxying Services', { table: this.tableName });
    proxy.start().catch((err: unknown) => { proxyLogger.error('the service proxy did not start', { err }); });
    const dnsLogger = this.options.logger.child({ component: 'node-dns' });
    try {
      const gateway = (await podNetwork.gateways(this.abort.signal)).find((address) => !address.includes(':'));
      if (gateway === undefined) throw new Error('the node has no IPv4 pod subnet to serve DNS on');
      const dns = new ClusterDns(client, dnsLogger, { host: gateway, port: this.options.dnsPort ?? 53 });
      if (this.stopped) return;
      this.dns = dns;
      await dns.start();
    } catch (err) {
      if (!this.stopped) dnsLogger.error('the node-local cluster DNS is not running: guests get a DNS server that does not answer', { error: err instanceof Error ? err.message : String(err) });
    }
  }
}
