/**
 * A VMI's Multus NICs inside its sandbox, wired as KubeVirt's bridge
 * binding wires a secondary network: the interface the CNI plugins made
 * (net1, net2…) joins an in-sandbox bridge (`k6t-net1`) with a tap for
 * QEMU, and the address the plugin's IPAM assigned is taken off it and
 * handed to the guest by the sandbox's DHCP server instead (a static lease
 * for the guest NIC's MAC). A network whose plugins assigned no IPv4
 * address gets no DHCP. Pure: the `ip -batch` lines and dnsmasq arguments.
 */
import type { CniResult } from '../cni/index.js';
import { formatAddress, parseAddress } from './cidr.js';

/** One Multus NIC to attach (bridge binding). */
export interface SecondaryNic {
  /** `networks[].name` of the VMI (= `interfaces[].name`). */
  name: string;
  /** `networks[].multus.networkName`. */
  networkName: string;
  /** The sandbox interface the plugins make: net1, net2… */
  interfaceName: string;
  /** The guest NIC's MAC. */
  mac: string;
  /** The MAC handed to plugins with the `mac` capability (`interfaces[].macAddress`, as KubeVirt passes it to Multus). */
  requestedMac?: string;
}

/** A Multus NIC as made: kept in the sandbox's state for status and the QEMU command line. */
export interface SecondaryLink {
  name: string;
  /** The NAD as `namespace/name`. */
  network: string;
  interfaceName: string;
  /** The in-sandbox bridge (`k6t-net1`). */
  bridge: string;
  /** The tap QEMU opens (`tap1` for net1). */
  tap: string;
  /** The guest NIC's MAC (what DHCP answers). */
  mac: string;
  /** The MAC the plugins gave the sandbox interface (for the network-status annotation). */
  interfaceMac?: string;
  /** The addresses IPAM assigned, with prefix length, IPv4 first. */
  addresses: string[];
  /** The IPv4 default gateway the plugins' result names, if any: DHCP's router option. */
  router?: string;
  /** DNS the plugins reported (for the annotation). */
  dns: CniResult['dns'];
}

/** The name of the in-sandbox bridge of a sandbox interface (KubeVirt's `k6t-` prefix). */
export function secondaryBridge(interfaceName: string): string {
  return `k6t-${interfaceName}`;
}

/** The link-local address the DHCP server answers from on the `index`-th (0-based) Multus bridge; the pod bridge binding uses .10. */
function dhcpAddress(index: number): string {
  return `169.254.75.${11 + index}`;
}

/** The sandbox interface's state after the plugins' ADD: which addresses and gateway it got. */
export function secondaryLinkOf(nic: SecondaryNic, network: string, result: CniResult): SecondaryLink {
  const index = result.interfaces.findIndex((i) => i.sandbox !== undefined && i.name === nic.interfaceName);
  const ips = result.ips.filter((ip) => ip.interface === undefined || ip.interface === index);
  const addresses = [...ips.filter((ip) => !ip.address.includes(':')), ...ips.filter((ip) => ip.address.includes(':'))].map((ip) => ip.address);
  const link: SecondaryLink = {
    name: nic.name,
    network,
    interfaceName: nic.interfaceName,
    bridge: secondaryBridge(nic.interfaceName),
    tap: `tap${nic.interfaceName.replace(/^net/, '')}`,
    mac: nic.mac,
    addresses,
    dns: { ...result.dns },
  };
  const interfaceMac = result.interfaces[index]?.mac;
  if (interfaceMac !== undefined && interfaceMac !== '') link.interfaceMac = interfaceMac;
  const v4 = ips.find((ip) => !ip.address.includes(':'));
  const defaultRoute = result.routes.find((r) => r.dst === '0.0.0.0/0');
  const router = defaultRoute?.gw ?? (defaultRoute === undefined ? undefined : v4?.gateway);
  if (router !== undefined && router !== '') link.router = router;
  return link;
}

/** The IPv4 address DHCP hands the guest, with its network; undefined when IPAM gave none. */
function leaseOf(link: SecondaryLink): { address: string; network: string; mask: string } | undefined {
  const cidr = link.addresses.find((a) => !a.includes(':'));
  if (cidr === undefined) return undefined;
  const [address = '', prefixText = '32'] = cidr.split('/');
  const parsed = parseAddress(address);
  const prefix = Number(prefixText);
  if (parsed === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  const mask = prefix === 0 ? 0n : ((0xffffffffn << BigInt(32 - prefix)) & 0xffffffffn);
  return { address, network: formatAddress(4, parsed.value & mask), mask: formatAddress(4, mask) };
}

/**
 * The `ip -n SANDBOX -batch` lines that move the `index`-th Multus
 * interface behind its bridge: the IPAM addresses off it (the guest takes
 * them), a tap beside it, and an address for DHCP on the bridge. A sandbox
 * interface whose MAC is the guest's (a plugin applied `macAddress`) gets
 * `spareMac`: one MAC on both sides of a bridge would be taken for the
 * bridge's own.
 */
export function secondaryBatch(link: SecondaryLink, index: number, spareMac: string): string[] {
  const lines = [`addr flush dev ${link.interfaceName}`];
  if (link.interfaceMac?.toLowerCase() === link.mac.toLowerCase()) lines.push(`link set ${link.interfaceName} down`, `link set ${link.interfaceName} address ${spareMac}`);
  lines.push(
    `link add ${link.bridge} type bridge`,
    `link set ${link.interfaceName} master ${link.bridge}`,
    `link set ${link.interfaceName} up`,
    `tuntap add dev ${link.tap} mode tap`,
    `link set ${link.tap} master ${link.bridge}`,
    `link set ${link.tap} up`,
  );
  if (leaseOf(link) !== undefined) lines.push(`addr add ${dhcpAddress(index)}/32 dev ${link.bridge}`);
  lines.push(`link set ${link.bridge} up`);
  return lines;
}

/** dnsmasq's arguments for the Multus NICs with an IPv4 address: each on its own bridge, tagged so the pod network's options stay off it. */
export function secondaryDhcpArgs(links: readonly SecondaryLink[], hostname: string): string[] {
  const args: string[] = [];
  for (const link of links) {
    const lease = leaseOf(link);
    if (lease === undefined) continue;
    const tag = link.interfaceName;
    args.push(
      `--interface=${link.bridge}`,
      `--dhcp-range=set:${tag},${lease.network},static,${lease.mask}`,
      `--shared-network=${link.bridge},${lease.network}`,
      `--dhcp-host=${link.mac},${lease.address},${hostname},infinite`,
    );
    if (link.router !== undefined) args.push(`--dhcp-option=tag:${tag},option:router,${link.router}`);
    else args.push(`--dhcp-option=tag:${tag},option:router`);
  }
  return args;
}
