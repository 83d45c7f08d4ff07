/**
 * The node agent's policy controller: informers on NetworkPolicies,
 * Calico GlobalNetworkPolicies, NetworkPolicies, GlobalNetworkSets and NetworkSets,
 * Namespaces and VMIs; any change schedules
 * one recompile (coalesced over `debounceMs`), which programs the node's
 * table through the {@link PolicyApplier}. The VMIs of this node and their
 * host-side veths come from an injected {@link LocalEndpointSource} (the
 * pod network datapath); peers' addresses come from every VMI's
 * `status.interfaces[].ipAddresses`. Nothing is programmed before every
 * informer has listed (a restarted agent's table keeps enforcing until
 * then). Stopping removes the table, unless asked to keep it for the next
 * agent.
 */
import { arrayAt, recordsAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import type { KObject } from '../../api/object.js';
import { Informer, resources } from '../../client/index.js';
import type { Client } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { PolicyApplier } from './applier.js';
import type { PolicyApplierOptions } from './applier.js';
import type { CompiledRuleset } from './compile.js';
import type { NamedPort, PolicyEndpoint, TransportProtocol } from './model.js';
import { CoalescedSync } from '../coalesced-sync.js';

/** A VMI of this node as the datapath knows it. */
export interface LocalEndpoint {
  namespace: string;
  name: string;
  /** The VMI's uid, when known: a VMI of the same name made anew is not this endpoint. */
  uid?: string;
  /** The host side of the sandbox's veth. */
  hostInterface: string;
  /** The sandbox's addresses, when the datapath knows them before the VMI's status does. */
  ips?: readonly string[];
}

/** Where the controller learns this node's endpoints (the podnet datapath plugs in here). */
export interface LocalEndpointSource {
  localEndpoints(): readonly LocalEndpoint[];
  /** Calls `handler` whenever the set of local endpoints changes. */
  onChange(handler: () => void): void;
}

export interface PolicyControllerOptions extends PolicyApplierOptions {
  endpoints: LocalEndpointSource;
  logger: Logger;
  /** Changes within this window are compiled once (default 50 ms). */
  debounceMs?: number;
}

/** The pod network interface of a VMI: its addresses and declared ports. */
function podInterface(vmi: KObject): { ips: string[]; ports: NamedPort[] } {
  const podNetwork = recordsAt(vmi, 'spec', 'networks').find((network) => network.pod !== undefined);
  const name = stringAt(podNetwork, 'name') ?? 'default';
  const statuses = recordsAt(vmi, 'status', 'interfaces');
  const status = statuses.find((entry) => entry.name === name) ?? statuses[0];
  const ips = arrayAt(status, 'ipAddresses').filter((ip): ip is string => typeof ip === 'string');
  const single = stringAt(status, 'ipAddress');
  if (single !== undefined && !ips.includes(single)) ips.unshift(single);
  const spec = recordsAt(vmi, 'spec', 'domain', 'devices', 'interfaces').find((entry) => entry.name === name);
  const ports = recordsAt(spec, 'ports').flatMap((port): NamedPort[] => {
    const portName = stringAt(port, 'name');
    const number = port.port;
    const protocol = (stringAt(port, 'protocol') ?? 'TCP') as TransportProtocol;
    return portName === undefined || typeof number !== 'number' ? [] : [{ name: portName, port: number, protocol }];
  });
  return { ips, ports };
}

export class PolicyController {
  private readonly applier: PolicyApplier;
  private readonly informers: { policies: Informer; globalPolicies: Informer; calicoPolicies: Informer; globalNetworkSets: Informer; networkSets: Informer; namespaces: Informer; vmis: Informer };
  private readonly sync: CoalescedSync;
  /** The last ruleset programmed, for tests and status. */
  lastApplied: CompiledRuleset | undefined;
  /** How many times a ruleset was programmed. */
  applied = 0;

  constructor(
    client: Client,
    private readonly options: PolicyControllerOptions,
  ) {
    this.applier = new PolicyApplier(options);
    const logger = options.logger;
    this.informers = {
      policies: new Informer(client, resources.networkPolicies, logger),
      globalPolicies: new Informer(client, resources.globalNetworkPolicies, logger),
      calicoPolicies: new Informer(client, resources.calicoNetworkPolicies, logger),
      globalNetworkSets: new Informer(client, resources.globalNetworkSets, logger),
      networkSets: new Informer(client, resources.calicoNetworkSets, logger),
      namespaces: new Informer(client, resources.namespaces, logger),
      vmis: new Informer(client, resources.virtualMachineInstances, logger),
    };
    this.sync = new CoalescedSync(() => this.program(), options.debounceMs ?? 50);
    for (const informer of Object.values(this.informers)) informer.onChange(() => { this.sync.schedule(); });
    options.endpoints.onChange(() => { this.sync.schedule(); });
  }

  /** Starts the informers and programs the table once they are synced. */
  async start(): Promise<void> {
    // Before every informer has listed, a compile would see part of the cluster: a table allowing what it should not.
    await Promise.all(Object.values(this.informers).map((informer) => informer.start()));
    await this.sync.start();
  }

  /** Stops watching and removes the table; with `keepTable` the table stays and keeps enforcing (for the next agent). */
  async stop(options: { keepTable?: boolean } = {}): Promise<void> {
    await Promise.all([this.sync.stop(), ...Object.values(this.informers).map((informer) => informer.stop())]);
    if (options.keepTable !== true) await this.applier.remove();
  }

  /** Recompiles and programs the table. */
  private async program(): Promise<void> {
    try {
      const compiled = await this.applier.apply(this.input());
      for (const warning of compiled.warnings) this.options.logger.warn(warning, { component: 'network-policy' });
      this.lastApplied = compiled;
      this.applied++;
    } catch (err) {
      this.options.logger.error('programming the network policy table failed; retrying on the next change', { component: 'network-policy', table: this.options.tableName, error: err instanceof Error ? err.message : String(err) });
    }
  }

  private input(): Parameters<PolicyApplier['apply']>[0] {
    const locals = new Map(this.options.endpoints.localEndpoints().map((endpoint) => [`${endpoint.namespace}/${endpoint.name}`, endpoint]));
    const endpoints: PolicyEndpoint[] = this.informers.vmis.list().flatMap((vmi): PolicyEndpoint[] => {
      const namespace = vmi.metadata.namespace ?? 'default';
      const name = vmi.metadata.name ?? '';
      const found = locals.get(`${namespace}/${name}`);
      const local = found?.uid === undefined || found.uid === vmi.metadata.uid ? found : undefined;
      const { ips, ports } = podInterface(vmi);
      const addresses = local?.ips !== undefined && local.ips.length > 0 ? local.ips : ips;
      if (addresses.length === 0) return [];
      return [{ namespace, name, labels: vmi.metadata.labels ?? {}, ips: addresses, ports, hostInterface: local?.hostInterface ?? '', local: local !== undefined }];
    });
    return {
      networkPolicies: this.informers.policies.list(),
      calicoPolicies: [...this.informers.globalPolicies.list(), ...this.informers.calicoPolicies.list()],
      networkSets: [...this.informers.globalNetworkSets.list(), ...this.informers.networkSets.list()],
      namespaces: this.informers.namespaces.list().map((namespace) => ({ name: namespace.metadata.name ?? '', labels: stringMapAt(namespace, 'metadata', 'labels') })),
      endpoints,
    };
  }
}
