/**
 * One node's pod network as the agent uses it: made on the first sandbox
 * (the node bridge and table, from the Node's `spec.podCIDRs`), then a
 * sandbox per VMI with its lease, removed with the VMI. Its state lives
 * under `<agent data>/network/sandboxes/<uid>/` (lease, sandbox record,
 * dnsmasq pid file), so a restarted agent finds what it made; `sweep` removes what no
 * VMI directory accounts for. A VMI's Multus NICs are attached by CNI plugins
 * when its sandbox is made and deleted (from the CNI cache) before it goes;
 * a VMI whose default network is a Multus NAD gets a sandbox of those NICs
 * alone (`default-network.ts`).
 * It also keeps the sandboxes that exist in memory and says when they
 * change: the node's network policy filters by them.
 *
 * Live migration keeps the VMI's addresses: the target's sandbox is made
 * with them ({@link PodNetwork.setUp} with `keptAddresses`), routed to it
 * from this node once the guest arrives ({@link PodNetwork.arrive}); the
 * source's goes with {@link PodNetwork.depart}, which keeps a lease of this
 * node's range until {@link PodNetwork.releaseDeparted} sees the VMI gone.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../../host/run-tool.js';
import type { Logger } from '../../log/logger.js';
import type { SecondaryNetworks } from '../cni/index.js';
import type { Cidr } from './cidr.js';
import { parseCidr } from './cidr.js';
import type { Lease } from './ipam.js';
import { NodeIpam, foreignAddresses, leaseFile, readLease } from './ipam.js';
import type { NetworkNames, SandboxNames } from './names.js';
import { networkNames, sandboxNames } from './names.js';
import { enableSysctl, ensureNodeNetwork, gatewayAddresses, removeNodeNetwork, writeNodeRuleset } from './node-network.js';
import type { SandboxSpec, SandboxState } from './sandbox.js';
import { createSandbox, readSandboxState, removeSandbox, sandboxFiles, writeSandboxState } from './sandbox.js';
import { podRouteProtocol } from './node-routes.js';
import { defaultNetworkDhcpArgs, defaultNetworkState } from './default-network.js';
import type { SecondaryLink } from './secondary.js';
import { secondaryBatch, secondaryLinkOf } from './secondary.js';

/** A pod network that cannot be made yet (the Node has no pod subnet): worth retrying later. */
export class PodNetworkNotReady extends Error {
  override readonly name = 'PodNetworkNotReady';
}

export interface PodNetworkOptions {
  /** The agent's data directory; names and state derive from it. */
  dataDir: string;
  /** The node's `spec.podCIDRs`, read when the first sandbox is made. */
  podCidrs: (signal: AbortSignal) => Promise<string[]>;
  logger: Logger;
  /**
   * The node serves the cluster DNS on its IPv4 gateway (the agent's
   * node-local DNS): a sandbox whose spec names no DNS server hands out
   * that address by DHCP.
   */
  gatewayDns?: boolean;
  /** Runs the CNI plugins of the VMIs' Multus networks; without it, a sandbox with Multus NICs is refused. */
  secondaryNetworks?: SecondaryNetworks;
}

export class PodNetwork {
  readonly names: NetworkNames;
  /** The node-level batch files. */
  private readonly nodeDir: string;
  /** One directory per sandbox. */
  private readonly root: string;
  private readonly ipam: NodeIpam;
  private subnets: Cidr[] | undefined;
  private making: Promise<Cidr[]> | undefined;
  /** The cluster's pod ranges (every Node's), reached without masquerade; see {@link setClusterPodRanges}. */
  private podRanges: Cidr[] = [];
  /** The last node table rewrite for new pod ranges: one at a time, in order. */
  private rangesWrite: Promise<void> = Promise.resolve();
  /** The sandboxes that exist, by VMI uid. */
  private readonly sandboxes = new Map<string, SandboxState>();
  private readonly listeners: (() => void)[] = [];

  constructor(private readonly options: PodNetworkOptions) {
    this.names = networkNames(options.dataDir);
    this.nodeDir = join(options.dataDir, 'network');
    this.root = join(this.nodeDir, 'sandboxes');
    this.ipam = new NodeIpam(this.root);
  }

  sandboxNames(uid: string): SandboxNames {
    return sandboxNames(this.names, uid);
  }

  /** The command prefix that runs a program inside VMI `uid`'s sandbox (`ip netns exec` execs, so the pid stays the program's). */
  execPrefix(uid: string): string[] {
    return ['ip', 'netns', 'exec', this.sandboxNames(uid).netns];
  }

  /** Makes VMI `uid`'s sandbox, after removing whatever an earlier attempt left. */
  async setUp(uid: string, spec: SandboxSpec, signal: AbortSignal): Promise<SandboxState> {
    const subnets = await this.nodeSubnets(signal);
    const names = this.sandboxNames(uid);
    const stateDir = join(this.root, uid);
    // A lease from an earlier attempt is kept (same addresses after an agent restart); the rest is made anew.
    await this.detachSecondaries(uid, signal);
    await removeSandbox(names, stateDir, { keepLease: true, signal });
    this.forget(uid);
    const lease = await this.leaseFor(uid, spec, subnets);
    const secondaries = spec.secondaries ?? [];
    const attachSecondaries = secondaries.length === 0 ? undefined : (netns: string): Promise<SecondaryLink[]> => this.attachSecondaries(uid, spec, { netns, stateDir, signal });
    const dns = spec.dnsServers.length > 0 || this.options.gatewayDns !== true ? spec.dnsServers : gatewayAddresses(subnets).filter((a) => !a.includes(':'));
    const gatewayMac = spec.gatewayMac ?? spareMac(uid, 'k6t-eth0');
    const state = await createSandbox(this.names, names, { spec: { ...spec, dnsServers: dns, gatewayMac }, lease, subnets, stateDir, signal, ...(attachSecondaries === undefined ? {} : { attachSecondaries }) });
    this.sandboxes.set(uid, state);
    this.changed();
    return state;
  }

  /** New addresses, or for the target of a live migration the VMI's own (another node's only with the masquerade binding). */
  private async leaseFor(uid: string, spec: SandboxSpec, subnets: readonly Cidr[]): Promise<Lease> {
    if (spec.keptAddresses === undefined) return this.ipam.acquire(uid, subnets);
    const lease = await this.ipam.keep(uid, subnets, spec.keptAddresses);
    if (spec.binding !== 'masquerade' && foreignAddresses(lease, subnets).length > 0) {
      await rm(join(this.root, uid), { recursive: true, force: true });
      throw new Error(`the ${spec.binding} binding hands the guest its pod address with its node's subnet on-link, which another node cannot serve: only the masquerade binding keeps its address on another node`);
    }
    return lease;
  }

  /**
   * The guest of a live migration switched over to VMI `uid`'s sandbox:
   * its addresses of another node's range are routed here at once (routes
   * of `proto 211` on the node bridge, which the node's pod routes then
   * keep, from {@link arrivedForeignIps}).
   */
  async arrive(uid: string, signal: AbortSignal): Promise<void> {
    const state = this.sandboxes.get(uid) ?? await this.state(uid);
    if (state === undefined || state.foreignIps === undefined || state.arrived === true) return;
    for (const ip of state.foreignIps) {
      const family = ip.includes(':') ? 6 : 4;
      await runTool('ip', [`-${family}`, 'route', 'replace', `${ip}/${family === 4 ? 32 : 128}`, 'dev', this.names.bridge, 'proto', String(podRouteProtocol)], { signal });
    }
    const arrived = { ...state, arrived: true };
    await writeSandboxState(join(this.root, uid), arrived);
    this.sandboxes.set(uid, arrived);
    this.changed();
  }

  /** The addresses of other nodes' ranges whose guests run here (arrived by migration), to be routed to this node's bridge. */
  arrivedForeignIps(): string[] {
    return [...this.sandboxes.values()].flatMap((s) => (s.arrived === true ? s.foreignIps ?? [] : [])).sort();
  }

  /**
   * VMI `uid`'s guest left this node by live migration: its sandbox goes; a
   * lease of this node's range stays, departed (the VMI keeps the
   * addresses elsewhere), until {@link releaseDeparted}.
   */
  async depart(uid: string, signal: AbortSignal): Promise<void> {
    const lease = await readLease(leaseFile(this.root, uid));
    const subnets = this.subnets ?? (this.isUp() ? await this.nodeSubnets(signal) : []);
    const home = lease !== undefined && foreignAddresses(lease, subnets).length < lease.addresses.length;
    if (!home) {
      await this.tearDown(uid, signal);
      return;
    }
    await this.detachSecondaries(uid, signal);
    this.forget(uid);
    await removeSandbox(this.sandboxNames(uid), join(this.root, uid), { keepLease: true, signal });
    await this.ipam.depart(uid);
  }

  /** Releases the departed leases of VMIs not in `live` (deleted wherever they ran); their uids. */
  async releaseDeparted(live: ReadonlySet<string>): Promise<string[]> {
    const released: string[] = [];
    for (const [uid, lease] of await this.ipam.leases()) {
      if (lease.departed !== true || live.has(uid) || this.sandboxes.has(uid)) continue;
      await rm(join(this.root, uid), { recursive: true, force: true });
      released.push(uid);
    }
    return released;
  }

  /** The node's gateway addresses (the bridge's, IPv4 first), making the node's network first if it is not made yet. */
  async gateways(signal: AbortSignal): Promise<string[]> {
    return gatewayAddresses(await this.nodeSubnets(signal));
  }

  /**
   * Makes VMI `uid`'s sandbox on a Multus default network (`spec.secondaries`
   * holds it as eth0, then the other Multus NICs): a namespace with only
   * what the NADs' plugins make, and dnsmasq for their addresses. The node's
   * pod range is not needed; nothing of the pod network is made.
   */
  async setUpOnDefaultNetwork(uid: string, spec: SandboxSpec, signal: AbortSignal): Promise<SandboxState> {
    const names = this.sandboxNames(uid);
    const stateDir = join(this.root, uid);
    await this.detachSecondaries(uid, signal);
    await removeSandbox(names, stateDir, { keepLease: false, signal });
    this.forget(uid);
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    await runTool('ip', ['netns', 'add', names.netns], { signal });
    const links = await this.attachSecondaries(uid, spec, { netns: names.netns, stateDir, signal, prelude: ['link set lo up'] });
    const files = sandboxFiles(stateDir);
    const dhcp = defaultNetworkDhcpArgs(spec, links, files.dnsmasqPid);
    if (dhcp.length > 0) await runTool('ip', ['netns', 'exec', names.netns, 'dnsmasq', ...dhcp], { signal });
    const state = defaultNetworkState(names.netns, spec, links);
    await writeFile(files.state, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    this.sandboxes.set(uid, state);
    this.changed();
    return state;
  }

  /** Calls `handler` whenever a sandbox is made or removed, or the node's bridge comes up. */
  onChange(handler: () => void): void {
    this.listeners.push(handler);
  }

  /** The sandboxes that exist, by VMI uid (those made by this agent and those {@link load} found). */
  sandboxStates(): ReadonlyMap<string, SandboxState> {
    return this.sandboxes;
  }

  /** True once the node bridge exists, made by this agent or by an earlier one on the same data directory. */
  isUp(): boolean {
    return this.subnets !== undefined || existsSync(`/sys/class/net/${this.names.bridge}`);
  }

  /** Reads the sandboxes an earlier agent made (call after {@link sweep}), so a restarted agent knows them. */
  async load(): Promise<void> {
    let entries: string[] = [];
    try {
      entries = await readdir(this.root);
    } catch {
      return;
    }
    for (const uid of entries) {
      const state = await readSandboxState(join(this.root, uid));
      if (state !== undefined) this.sandboxes.set(uid, state);
    }
    if (this.sandboxes.size > 0) this.changed();
  }

  /**
   * Runs ADD for each Multus NIC into the sandbox (all or nothing: a failure
   * is the plugin's own error, with nothing of it left), then puts each
   * behind its in-sandbox bridge with a tap. A failure after the ADDs is
   * undone by the caller's tear-down, which DELs from the cache.
   */
  private async attachSecondaries(uid: string, spec: SandboxSpec, options: { netns: string; stateDir: string; signal: AbortSignal; prelude?: readonly string[] }): Promise<SecondaryLink[]> {
    const networks = this.options.secondaryNetworks;
    const nics = spec.secondaries ?? [];
    if (networks === undefined) throw new Error('this agent runs no CNI plugins, so it cannot attach Multus networks');
    const owner = spec.owner ?? { namespace: '', name: '' };
    const requests = nics.map((nic) => ({ networkName: nic.networkName, interfaceName: nic.interfaceName, ...(nic.requestedMac === undefined ? {} : { mac: nic.requestedMac }) }));
    const attached = await networks.attach({ netns: options.netns, vmi: { ...owner, uid } }, requests, { signal: options.signal });
    const links: SecondaryLink[] = [];
    const lines: string[] = [...(options.prelude ?? [])];
    for (const [index, nic] of nics.entries()) {
      const done = attached[index];
      if (done === undefined) continue;
      const link = secondaryLinkOf(nic, done.network, done.result);
      links.push(link);
      lines.push(...secondaryBatch(link, index, spareMac(uid, nic.interfaceName)));
    }
    const batch = join(options.stateDir, 'secondary.ip');
    await writeFile(batch, `${lines.join('\n')}\n`);
    await runTool('ip', ['-n', options.netns, '-batch', batch], { signal: options.signal });
    return links;
  }

  /** DELs every Multus NIC the CNI cache remembers for VMI `uid` (after an agent restart too); nothing when there is none. */
  private async detachSecondaries(uid: string, signal: AbortSignal): Promise<void> {
    const networks = this.options.secondaryNetworks;
    if (networks === undefined) return;
    const names = this.sandboxNames(uid);
    await networks.detach({ netns: names.netns, vmi: { namespace: '', name: '', uid } }, [], { signal });
  }

  /** What VMI `uid`'s sandbox is, if it has one. */
  state(uid: string): Promise<SandboxState | undefined> {
    return readSandboxState(join(this.root, uid));
  }

  /**
   * Removes VMI `uid`'s sandbox and releases its lease; nothing to do when
   * it has none. With `keepDeparted`, a departed lease stays (its VMI runs
   * on elsewhere with the addresses).
   */
  async tearDown(uid: string, signal: AbortSignal, options: { keepDeparted?: boolean } = {}): Promise<void> {
    // Before the namespace goes: plugins release their IPAM leases and host-side ends with the netns still there.
    await this.detachSecondaries(uid, signal);
    this.forget(uid);
    const departed = options.keepDeparted === true && (await readLease(leaseFile(this.root, uid)))?.departed === true;
    await removeSandbox(this.sandboxNames(uid), join(this.root, uid), { keepLease: departed, signal });
  }

  /** Removes the sandbox of every uid not in `keep`, and sandbox namespaces of this agent with no state at all. */
  async sweep(keep: ReadonlySet<string>, signal: AbortSignal): Promise<string[]> {
    const removed: string[] = [];
    let entries: string[] = [];
    try {
      entries = await readdir(this.root);
    } catch {
      // no sandbox was ever made
    }
    let namespaces: string[] = [];
    try {
      namespaces = (await readdir('/run/netns')).filter((n) => n.startsWith(this.names.netnsPrefix)).map((n) => n.slice(this.names.netnsPrefix.length));
    } catch {
      // no namespaces on the host
    }
    const departed = new Set([...(await this.ipam.leases()).values()].filter((l) => l.departed === true).map((l) => l.uid));
    for (const uid of new Set([...entries, ...namespaces])) {
      // A departed lease holds a migrated VMI's addresses, not a sandbox: releaseDeparted frees it.
      if (keep.has(uid) || (departed.has(uid) && !namespaces.includes(uid))) continue;
      await this.tearDown(uid, signal);
      removed.push(uid);
    }
    return removed;
  }

  /**
   * Sets the cluster's pod ranges (every Node's `spec.podCIDRs`): traffic
   * from this node's pods to them keeps its source address. Rewrites the
   * node's table when the node's network is up (also one an earlier agent
   * made); otherwise the ranges go in when it is made.
   */
  setClusterPodRanges(ranges: readonly string[], signal: AbortSignal): Promise<void> {
    const parsed = ranges.map(parseCidr);
    const write = this.rangesWrite.then(async () => {
      this.podRanges = parsed;
      if (!this.isUp()) return;
      // Made by an earlier agent: making it again (idempotent) writes the new ranges and learns the subnets.
      if (this.subnets === undefined) {
        await this.nodeSubnets(signal);
        return;
      }
      await writeNodeRuleset(this.names, this.subnets, { workDir: this.nodeDir, podRanges: this.podRanges, signal });
    });
    this.rangesWrite = write.catch(() => undefined);
    return write;
  }

  /** Removes the node bridge and table (when the agent stops its guests). */
  async removeNode(signal: AbortSignal): Promise<void> {
    this.subnets = undefined;
    await removeNodeNetwork(this.names, signal);
  }

  private nodeSubnets(signal: AbortSignal): Promise<Cidr[]> {
    if (this.subnets !== undefined) return Promise.resolve(this.subnets);
    this.making ??= this.makeNode(signal).finally(() => { this.making = undefined; });
    return this.making;
  }

  private async makeNode(signal: AbortSignal): Promise<Cidr[]> {
    const cidrs = await this.options.podCidrs(signal);
    if (cidrs.length === 0) throw new PodNetworkNotReady('this Node has no spec.podCIDRs yet: the node IPAM controller of vireo server assigns them from --cluster-cidr (a range with no subnet left gives the Node a CIDRNotAvailable Event)');
    const subnets = cidrs.map(parseCidr);
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const ranges = this.podRanges;
    await ensureNodeNetwork(this.names, subnets, { workDir: this.nodeDir, podRanges: ranges, signal });
    // New pod ranges that arrived meanwhile.
    if (this.podRanges !== ranges) await writeNodeRuleset(this.names, subnets, { workDir: this.nodeDir, podRanges: this.podRanges, signal });
    await this.enableForwarding();
    this.options.logger.info('pod network ready', { bridge: this.names.bridge, podCIDRs: cidrs });
    this.subnets = subnets;
    this.changed();
    return subnets;
  }

  /**
   * Turns on IPv4 and IPv6 forwarding, as CNI's bridge plugin and
   * kube-proxy do: Services' DNAT, node ports and egress route through the
   * node. A host where it cannot be set gets a warning.
   */
  private async enableForwarding(): Promise<void> {
    for (const setting of forwardingSettings) {
      try {
        if (await enableSysctl(setting)) this.options.logger.info('enabled forwarding for the pod network', { sysctl: setting });
      } catch (err) {
        this.options.logger.warn('cannot enable forwarding: guests reach each other and the node, but not Services\' node ports from elsewhere nor anything beyond the node', { sysctl: setting, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  private forget(uid: string): void {
    if (this.sandboxes.delete(uid)) this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.options.logger.error('a pod network change handler failed', { err });
      }
    }
  }
}

const forwardingSettings = ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding'] as const;

/** A locally administered MAC for a sandbox interface whose own MAC is the guest's. */
function spareMac(uid: string, interfaceName: string): string {
  const bytes = createHash('sha256').update(`${uid}/sandbox/${interfaceName}`).digest().subarray(0, 6);
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}
