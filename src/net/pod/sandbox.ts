/**
 * One VMI's sandbox (what a virt-launcher pod's network namespace is in
 * KubeVirt): a network namespace joined to the node bridge by a veth
 * (`eth0` inside, with the VMI's leased pod addresses and default routes
 * via the node's gateways), a tap for QEMU on an in-sandbox bridge
 * (`k6t-eth0`), and the binding:
 *
 * - `masquerade`: the bridge holds 10.0.2.1/24, the guest gets 10.0.2.2 by
 *   DHCP; nftables in the sandbox SNATs the guest's traffic to the pod
 *   address and DNATs inbound traffic on the pod address (the listed
 *   ports, or every TCP/UDP port) to the guest. With an IPv6 pod address
 *   the same again for IPv6: the bridge holds fd10:0:2::1/120, the guest
 *   gets fd10:0:2::2 by DHCPv6 and its default route from the router
 *   advertisements dnsmasq sends, and the rules NAT66 it to the IPv6 pod
 *   address.
 * - `bridge`: `eth0` joins the bridge without an address and the guest
 *   takes the pod address itself by DHCP, with the node gateway as router
 *   (dnsmasq answers from a link-local address, as KubeVirt's DHCP does).
 *   IPv4 only, as in KubeVirt, whose DHCPv6 server serves masquerade
 *   alone: the guest gets no IPv6 pod address.
 *
 * A sandbox made for the target of a live migration keeps the VMI's
 * addresses: those of another node's range sit on `eth0` as host addresses
 * (/32, /128) with the default routes `onlink` via this node's gateway, and
 * `k6t-eth0` has the MAC derived from the VMI (every sandbox's), so the
 * guest's neighbour entry for its gateway stays right after the move.
 *
 * DHCP is Debian's dnsmasq run inside the sandbox (`ip netns exec`),
 * daemonised with a pid file in the sandbox's state directory: it outlives
 * an agent restart like QEMU and is killed with the sandbox. Every step is
 * batched (`ip -batch`, `nft -f`), so a sandbox costs five process spawns.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPlainObject } from '../../api/object.js';
import { runTool } from '../../host/run-tool.js';
import type { Cidr } from './cidr.js';
import { addressAt } from './cidr.js';
import type { Lease } from './ipam.js';
import { foreignAddresses } from './ipam.js';
import type { NetworkNames, SandboxNames } from './names.js';
import { sandboxBridge, sandboxTable, sandboxTap } from './names.js';
import type { SecondaryLink, SecondaryNic } from './secondary.js';
import { secondaryDhcpArgs } from './secondary.js';

/** KubeVirt's masquerade addresses. */
export const masqueradeGateway = '10.0.2.1';
export const masqueradeGuest = '10.0.2.2';
/** KubeVirt's masquerade IPv6 addresses (the default `vmIPv6NetworkCIDR`, fd10:0:2::/120). */
export const masqueradeGateway6 = 'fd10:0:2::1';
export const masqueradeGuest6 = 'fd10:0:2::2';
const masqueradePrefix6 = 120;
/** The link-local address the DHCP server of a bridge binding answers from (KubeVirt's choice). */
const bridgeDhcpAddress = '169.254.75.10';

export type PodBinding = 'masquerade' | 'bridge';

/** A port the masquerade binding forwards to the guest. */
export interface ForwardedPort {
  protocol: 'tcp' | 'udp';
  port: number;
}

/** What the sandbox is made for. */
export interface SandboxSpec {
  binding: PodBinding;
  /** The guest NIC's MAC, the only one DHCP answers. */
  mac: string;
  /** DHCP's host name option. */
  hostname: string;
  /** DHCP's domain option, when set. */
  domain?: string;
  /** DNS servers handed out by DHCP (none: the pod network's own, if it has one). */
  dnsServers: readonly string[];
  /** DHCP's domain search list (option 119), sent with the DNS servers. */
  searchDomains?: readonly string[];
  /** Masquerade only: the forwarded ports; empty forwards every TCP and UDP port. */
  ports: readonly ForwardedPort[];
  /** The VMI's Multus NICs (bridge binding), attached by CNI plugins into the sandbox before DHCP starts. */
  secondaries?: readonly SecondaryNic[];
  /** The VMI the sandbox is for, as CNI plugins are told (`K8S_POD_NAMESPACE`/`K8S_POD_NAME`); needed with `secondaries`. */
  owner?: { namespace: string; name: string };
  /** The MAC of `k6t-eth0`, the guest's gateway (masquerade): the same on every node the VMI runs on. */
  gatewayMac?: string;
  /** The target of a live migration: the pod addresses the VMI has (no prefix), kept instead of new ones. */
  keptAddresses?: readonly string[];
}

/** What a made sandbox is, kept in its state directory for status and cleanup. */
export interface SandboxState {
  netns: string;
  hostVeth: string;
  tap: string;
  binding: PodBinding;
  mac: string;
  /** The pod addresses (without prefix), IPv4 first. */
  podIps: string[];
  /** The addresses the guest is given (masquerade: 10.0.2.2 and fd10:0:2::2; bridge: the pod's IPv4 address). */
  guestIps: string[];
  /** The Multus NICs, net1, net2… in order. */
  secondaries: SecondaryLink[];
  /** Pod addresses of another node's range (a migrated VMI's): this node routes them to the sandbox once the guest runs here. */
  foreignIps?: string[];
  /** The guest of a live migration switched over to this sandbox: its foreign addresses are routed here. */
  arrived?: boolean;
}

/** Where one sandbox's files are. */
export function sandboxFiles(stateDir: string): { state: string; dnsmasqPid: string; hostBatch: string; sandboxBatch: string; rules: string } {
  return {
    state: join(stateDir, 'sandbox.json'),
    dnsmasqPid: join(stateDir, 'dnsmasq.pid'),
    hostBatch: join(stateDir, 'host.ip'),
    sandboxBatch: join(stateDir, 'sandbox.ip'),
    rules: join(stateDir, 'sandbox.nft'),
  };
}

/** True when `lease` holds an IPv6 pod address (the node has an IPv6 pod subnet): masquerade then serves IPv6 too. */
function hasIpv6(lease: Lease): boolean {
  return lease.addresses.some((a) => a.includes(':'));
}

function withoutPrefix(address: string): string {
  const slash = address.indexOf('/');
  return slash < 0 ? address : address.slice(0, slash);
}

/** The `ip -n NS -batch` lines that configure the inside of a sandbox. */
export function sandboxBatch(spec: SandboxSpec, lease: Lease, subnets: readonly Cidr[]): string[] {
  const mac = spec.gatewayMac === undefined ? '' : ` address ${spec.gatewayMac}`;
  const lines = ['link set lo up', `link add ${sandboxBridge}${mac} type bridge`, `tuntap add dev ${sandboxTap} mode tap`, `link set ${sandboxTap} master ${sandboxBridge}`, `link set ${sandboxTap} up`];
  if (spec.binding === 'masquerade') {
    lines.push('link set eth0 up');
    for (const address of lease.addresses) lines.push(`addr add ${address} dev eth0${address.includes(':') ? ' nodad' : ''}`);
    // Another node's address is no neighbour of this node's gateway: the route says the gateway is on the link anyway.
    const foreign = foreignAddresses(lease, subnets);
    const onlink = (family: 4 | 6): string => (foreign.some((ip) => ip.includes(':') === (family === 6)) ? ' onlink' : '');
    for (const subnet of subnets) lines.push(`route add ${subnet.family === 4 ? 'default' : '::/0'} via ${addressAt(subnet, 1n)} dev eth0${onlink(subnet.family)}`);
    lines.push(`addr add ${masqueradeGateway}/24 dev ${sandboxBridge}`);
    if (hasIpv6(lease)) lines.push(`addr add ${masqueradeGateway6}/${masqueradePrefix6} dev ${sandboxBridge} nodad`);
  } else {
    lines.push(`link set eth0 master ${sandboxBridge}`, 'link set eth0 up', `addr add ${bridgeDhcpAddress}/32 dev ${sandboxBridge}`);
  }
  lines.push(`link set ${sandboxBridge} up`);
  return lines;
}

/**
 * The sandbox's nftables program (masquerade only): SNAT out, DNAT in, for
 * IPv4 and, when `lease` has an IPv6 address, the same rules for IPv6.
 */
export function sandboxRuleset(spec: SandboxSpec, lease: Lease): string {
  const byProtocol = (protocol: 'tcp' | 'udp'): number[] => spec.ports.filter((p) => p.protocol === protocol).map((p) => p.port);
  const guests = hasIpv6(lease) ? [['ip', masqueradeGuest], ['ip6', masqueradeGuest6]] as const : [['ip', masqueradeGuest]] as const;
  // Unicast only: a bridge-bound guest's DHCP broadcast (0.0.0.0:68 → 255.255.255.255:67) reaches every sandbox's eth0, and a DNAT
  // conntrack entry made from it would catch this guest's own DHCP requests, which have the same addresses and ports.
  const dnat = guests.flatMap(([family, guest]) => spec.ports.length === 0
    ? [`    iifname "eth0" meta pkttype host meta l4proto { tcp, udp } dnat ${family} to ${guest}`]
    : (['tcp', 'udp'] as const).filter((p) => byProtocol(p).length > 0).map((p) => `    iifname "eth0" meta pkttype host ${p} dport { ${byProtocol(p).join(', ')} } dnat ${family} to ${guest}`));
  const snat = guests.map(([family, guest]) => `    oifname "eth0" ${family} saddr ${guest} masquerade`);
  return [
    `table inet ${sandboxTable} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...dnat,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...snat,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The dnsmasq tag of the pod network's range: its options stay off the Multus NICs' leases. */
const podTag = 'pod';

/** dnsmasq's arguments: DHCP only (no DNS: port 0), a static lease for the guest's MAC alone. */
export function dnsmasqArgs(spec: SandboxSpec, lease: Lease, subnets: readonly Cidr[], pidFile: string): string[] {
  const args = ['--conf-file=/dev/null', '--port=0', '--no-resolv', '--no-hosts', '--bind-interfaces', `--interface=${sandboxBridge}`, '--leasefile-ro', '--dhcp-authoritative', `--pid-file=${pidFile}`];
  if (spec.binding === 'masquerade') {
    args.push(`--dhcp-range=set:${podTag},${masqueradeGuest},static,255.255.255.0`, `--dhcp-host=${spec.mac},${masqueradeGuest},${spec.hostname},infinite`, `--dhcp-option=tag:${podTag},option:router,${masqueradeGateway}`);
    if (hasIpv6(lease)) args.push(...masqueradeDhcpv6Args(spec));
  } else {
    const v4 = subnets.find((s) => s.family === 4);
    const address = lease.addresses.find((a) => !a.includes(':'));
    if (v4 === undefined || address === undefined) throw new Error('the bridge binding needs an IPv4 pod subnet on the node');
    const network = addressAt(v4, 0n);
    args.push(`--dhcp-range=set:${podTag},${network},static,${prefixToMask(v4.prefix)}`, `--shared-network=${sandboxBridge},${network}`, `--dhcp-host=${spec.mac},${withoutPrefix(address)},${spec.hostname},infinite`, `--dhcp-option=tag:${podTag},option:router,${addressAt(v4, 1n)}`);
  }
  if (spec.dnsServers.length > 0) args.push(`--dhcp-option=tag:${podTag},option:dns-server,${spec.dnsServers.join(',')}`);
  // Forced: DHCP clients seldom ask for option 119 (busybox's udhcpc does not), and the search list is what makes short names work.
  if (spec.dnsServers.length > 0 && spec.searchDomains !== undefined && spec.searchDomains.length > 0) args.push(`--dhcp-option-force=tag:${podTag},option:domain-search,${spec.searchDomains.join(',')}`);
  if (spec.domain !== undefined) args.push(`--domain=${spec.domain}`, `--dhcp-option=tag:${podTag},option:domain-name,${spec.domain}`);
  return args;
}

/**
 * The masquerade binding's IPv6 half of dnsmasq: DHCPv6 hands the guest's
 * MAC fd10:0:2::2 (KubeVirt's DHCPv6 server does the same), and router
 * advertisements on k6t-eth0 (managed: addresses come from DHCPv6) give the
 * guest its on-link prefix and a default route via the bridge.
 */
function masqueradeDhcpv6Args(spec: SandboxSpec): string[] {
  return ['--enable-ra', `--dhcp-range=set:${podTag},${masqueradeGuest6},static,${masqueradePrefix6},infinite`, `--dhcp-host=${spec.mac},[${masqueradeGuest6}],${spec.hostname},infinite`];
}

function prefixToMask(prefix: number): string {
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return [24, 16, 8, 0].map((s) => String((mask >>> s) & 255)).join('.');
}

/**
 * Makes the sandbox of `lease` (leftovers of an earlier attempt must have
 * been removed first) and returns its state, written to `stateDir`.
 */
export async function createSandbox(
  names: NetworkNames,
  sandbox: SandboxNames,
  options: {
    spec: SandboxSpec;
    lease: Lease;
    subnets: readonly Cidr[];
    stateDir: string;
    signal: AbortSignal;
    /** Attaches the spec's Multus NICs inside the made namespace (before DHCP starts, which serves them too). */
    attachSecondaries?: (netns: string) => Promise<SecondaryLink[]>;
  },
): Promise<SandboxState> {
  const { spec, lease, subnets, signal } = options;
  const files = sandboxFiles(options.stateDir);
  // Hairpin: a VMI reaching itself through a Service's cluster IP is DNATed back out the port it came in by (CNI's bridge plugin sets it too).
  // Not for the bridge binding: the guest's own broadcasts would come back into the sandbox's bridge, which would then learn the guest's MAC on eth0.
  const hairpin = spec.binding === 'masquerade' ? [`link set ${sandbox.hostVeth} type bridge_slave hairpin on`] : [];
  const host = [`netns add ${sandbox.netns}`, `link add ${sandbox.hostVeth} type veth peer name eth0 netns ${sandbox.netns}`, `link set ${sandbox.hostVeth} master ${names.bridge}`, ...hairpin, `link set ${sandbox.hostVeth} up`];
  await writeFile(files.hostBatch, `${host.join('\n')}\n`);
  await runTool('ip', ['-batch', files.hostBatch], { signal });
  await writeFile(files.sandboxBatch, `${sandboxBatch(spec, lease, subnets).join('\n')}\n`);
  await runTool('ip', ['-n', sandbox.netns, '-batch', files.sandboxBatch], { signal });
  if (spec.binding === 'masquerade') {
    // The sandbox routes between the guest's bridge and eth0; a new namespace starts with forwarding off.
    const forwarding = ['net.ipv4.ip_forward=1', ...(hasIpv6(lease) ? ['net.ipv6.conf.all.forwarding=1'] : [])];
    await runTool('ip', ['netns', 'exec', sandbox.netns, 'sysctl', '-qw', ...forwarding], { signal });
    await writeFile(files.rules, sandboxRuleset(spec, lease));
    await runTool('ip', ['netns', 'exec', sandbox.netns, 'nft', '-f', files.rules], { signal });
  }
  const secondaries = options.attachSecondaries === undefined ? [] : await options.attachSecondaries(sandbox.netns);
  const dhcp = [...dnsmasqArgs(spec, lease, subnets, files.dnsmasqPid), ...secondaryDhcpArgs(secondaries, spec.hostname)];
  await runTool('ip', ['netns', 'exec', sandbox.netns, 'dnsmasq', ...dhcp], { signal });
  const podIps = lease.addresses.map(withoutPrefix);
  const state: SandboxState = {
    netns: sandbox.netns,
    hostVeth: sandbox.hostVeth,
    tap: sandboxTap,
    binding: spec.binding,
    mac: spec.mac,
    podIps,
    guestIps: spec.binding === 'masquerade' ? [masqueradeGuest, ...(hasIpv6(lease) ? [masqueradeGuest6] : [])] : podIps.filter((ip) => !ip.includes(':')),
    secondaries,
  };
  const foreign = foreignAddresses(lease, subnets);
  if (foreign.length > 0) Object.assign(state, { foreignIps: foreign, arrived: false });
  await writeSandboxState(options.stateDir, state);
  return state;
}

/** Writes a sandbox's record (after a change: a migrated guest arrived). */
export async function writeSandboxState(stateDir: string, state: SandboxState): Promise<void> {
  await writeFile(sandboxFiles(stateDir).state, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

/** The state a sandbox was made with; undefined when there is none (or it is unreadable). */
export async function readSandboxState(stateDir: string): Promise<SandboxState | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(sandboxFiles(stateDir).state, 'utf8'));
  } catch {
    return undefined;
  }
  if (!isPlainObject(value)) return undefined;
  const { netns, hostVeth, tap, binding, mac, podIps, guestIps, secondaries } = value;
  const strings = (list: unknown): string[] | undefined => (Array.isArray(list) && list.every((s) => typeof s === 'string') ? list : undefined);
  const pod = strings(podIps);
  const guest = strings(guestIps);
  if (typeof netns !== 'string' || typeof hostVeth !== 'string' || typeof tap !== 'string' || typeof mac !== 'string') return undefined;
  if ((binding !== 'masquerade' && binding !== 'bridge') || pod === undefined || guest === undefined) return undefined;
  // Written by this agent with the state (a sandbox from before Multus NICs has none).
  const links = Array.isArray(secondaries) ? secondaries.map(readSecondaryLink).filter((l) => l !== undefined) : [];
  const state: SandboxState = { netns, hostVeth, tap, binding, mac, podIps: pod, guestIps: guest, secondaries: links };
  const foreign = strings(value.foreignIps);
  if (foreign !== undefined && foreign.length > 0) Object.assign(state, { foreignIps: foreign, arrived: value.arrived === true });
  return state;
}

/** One Multus NIC of a sandbox record; undefined when it is not one. */
function readSecondaryLink(value: unknown): SecondaryLink | undefined {
  if (!isPlainObject(value)) return undefined;
  const { name, network, interfaceName, bridge, tap, mac, interfaceMac, addresses, router, dns } = value;
  if (typeof name !== 'string' || typeof network !== 'string' || typeof interfaceName !== 'string' || typeof bridge !== 'string' || typeof tap !== 'string' || typeof mac !== 'string') return undefined;
  if (!Array.isArray(addresses) || !addresses.every((a) => typeof a === 'string')) return undefined;
  const link: SecondaryLink = { name, network, interfaceName, bridge, tap, mac, addresses, dns: isPlainObject(dns) ? dns : {} };
  if (typeof interfaceMac === 'string') link.interfaceMac = interfaceMac;
  if (typeof router === 'string') link.router = router;
  return link;
}

/** The dnsmasq of a sandbox, if it runs: its pid file's pid, checked against its command line. */
export function dnsmasqPid(stateDir: string): number | undefined {
  const pidFile = sandboxFiles(stateDir).dnsmasqPid;
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`--pid-file=${pidFile}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes whatever exists of a sandbox: its dnsmasq (waited for, so the
 * namespace really goes), the namespace (with `eth0`, the tap and the
 * in-sandbox bridge and rules), the host veth, and `stateDir` with the
 * lease (unless `keepLease`: a retried start keeps its addresses).
 */
export async function removeSandbox(sandbox: SandboxNames, stateDir: string, options: { keepLease: boolean; signal: AbortSignal }): Promise<void> {
  const { signal } = options;
  const pid = dnsmasqPid(stateDir);
  if (pid !== undefined) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const deadline = Date.now() + 3_000;
    while (dnsmasqPid(stateDir) !== undefined && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (existsSync(`/run/netns/${sandbox.netns}`)) await runTool('ip', ['netns', 'del', sandbox.netns], { signal });
  // The veth goes with the namespace once nothing holds it; one whose namespace never came is removed here.
  if (existsSync(`/sys/class/net/${sandbox.hostVeth}`)) {
    try {
      await runTool('ip', ['link', 'del', sandbox.hostVeth], { signal });
    } catch (err) {
      if (existsSync(`/sys/class/net/${sandbox.hostVeth}`)) throw err;
    }
  }
  if (!options.keepLease) {
    await rm(stateDir, { recursive: true, force: true });
    return;
  }
  let entries: string[] = [];
  try {
    entries = await readdir(stateDir);
  } catch {
    return;
  }
  for (const entry of entries) if (entry !== 'lease.json') await rm(join(stateDir, entry), { recursive: true, force: true });
}

