/**
 * The node's network policy enforcement (Calico's Felix on a Kubernetes
 * node): a {@link PolicyController} programming this agent's policy tables
 * in the host namespace, started once the pod network is up, and fed with
 * the VMIs of this node that have a pod network sandbox (its host veth
 * and pod addresses, from the datapath, not from the VMI's status: they
 * are known before the guest runs). The tables are named from the data
 * directory like the pod network's other names, so agents sharing a host
 * never touch each other's. They outlive an agent that leaves its guests
 * running (they keep enforcing; the next agent reprograms them) and go
 * with one that stops its guests.
 */
import type { Client, Informer } from '../client/index.js';
import type { Logger } from '../log/logger.js';
import type { PodNetwork } from '../net/pod/index.js';
import { isDefaultNetworkSandbox } from '../net/pod/index.js';
import { PolicyController, deleteTable } from '../net/policy/index.js';
import type { LocalEndpoint, LocalEndpointSource } from '../net/policy/index.js';

export interface NodeNetworkPolicyOptions {
  client: Client;
  podNetwork: PodNetwork;
  /** The agent's informer on the VMIs bound to this node: who each sandbox belongs to. */
  vmis: Informer;
  logger: Logger;
}

/** This node's VMIs with a sandbox, as the policy controller takes them. */
function sandboxEndpoints(podNetwork: PodNetwork, vmis: Informer): LocalEndpointSource {
  return {
    localEndpoints(): LocalEndpoint[] {
      const sandboxes = podNetwork.sandboxStates();
      if (sandboxes.size === 0) return [];
      return vmis.list().flatMap((vmi): LocalEndpoint[] => {
        const uid = vmi.metadata.uid ?? '';
        const sandbox = sandboxes.get(uid);
        // A VMI on a Multus default network is not on the pod network, where policies apply.
        if (sandbox === undefined || isDefaultNetworkSandbox(sandbox)) return [];
        return [{ namespace: vmi.metadata.namespace ?? 'default', name: vmi.metadata.name ?? '', uid, hostInterface: sandbox.hostVeth, ips: sandbox.podIps }];
      });
    },
    onChange(handler: () => void): void {
      podNetwork.onChange(handler);
      // A restarted agent knows its sandboxes before its informer knows whose they are.
      vmis.onChange(() => { handler(); });
    },
  };
}

/** Starts and stops this node's policy controller; see the module comment. */
export class NodeNetworkPolicy {
  readonly tableName: string;
  private controller: PolicyController | undefined;
  private stopped = false;

  constructor(private readonly options: NodeNetworkPolicyOptions) {
    this.tableName = options.podNetwork.names.policyTable;
  }

  /** Starts enforcing now when the pod network is up, else as soon as it comes up. */
  start(): void {
    this.options.podNetwork.onChange(() => { this.startIfUp(); });
    this.startIfUp();
  }

  /**
   * Stops the controller. With `removeTables` (the agent stops its guests)
   * the tables go too; otherwise they stay and keep enforcing until the
   * next agent reprograms them.
   */
  async stop(options: { removeTables: boolean }): Promise<void> {
    this.stopped = true;
    try {
      if (this.controller !== undefined) await this.controller.stop({ keepTable: !options.removeTables });
      // An earlier agent's tables, when this one never started a controller.
      else if (options.removeTables) await deleteTable({}, this.tableName);
    } catch (err) {
      this.options.logger.error('cannot remove the network policy tables', { component: 'network-policy', table: this.tableName, err });
    }
  }

  private startIfUp(): void {
    if (this.stopped || this.controller !== undefined || !this.options.podNetwork.isUp()) return;
    const { client, podNetwork, vmis } = this.options;
    const logger = this.options.logger.child({ component: 'network-policy' });
    const controller = new PolicyController(client, { tableName: this.tableName, endpoints: sandboxEndpoints(podNetwork, vmis), logger });
    this.controller = controller;
    logger.info('enforcing network policies', { table: this.tableName });
    controller.start().catch((err: unknown) => { logger.error('the network policy controller did not start', { err }); });
  }
}
