/**
 * A sandbox whose primary network is a Multus NAD (`multus.default: true`)
 * instead of the pod network, as Multus makes such a pod: no veth to the
 * node bridge and no lease of the node's range; the NAD's CNI plugins make
 * `eth0` inside the namespace, and it is wired like any Multus NIC
 * (`secondary.ts`: `k6t-eth0` with a tap, the IPAM address handed to the
 * guest by the sandbox's dnsmasq). Pure: the dnsmasq arguments and the
 * sandbox record; `PodNetwork` runs them.
 */
import type { SandboxSpec, SandboxState } from './sandbox.js';
import type { SecondaryLink } from './secondary.js';
import { secondaryDhcpArgs } from './secondary.js';

/** The sandbox interface of the default network, as Multus names the pod's primary interface. */
export const defaultNetworkInterface = 'eth0';

/**
 * dnsmasq's arguments (DHCP only, as for a pod-network sandbox) for the
 * links' static leases, with the VMI's domain on the default network;
 * empty when no link has an IPv4 address (then no DHCP server runs).
 */
export function defaultNetworkDhcpArgs(spec: SandboxSpec, links: readonly SecondaryLink[], pidFile: string): string[] {
  const leases = secondaryDhcpArgs(links, spec.hostname);
  if (leases.length === 0) return [];
  const args = ['--conf-file=/dev/null', '--port=0', '--no-resolv', '--no-hosts', '--bind-interfaces', '--leasefile-ro', '--dhcp-authoritative', `--pid-file=${pidFile}`, ...leases];
  if (spec.dnsServers.length > 0) args.push(`--dhcp-option=tag:${defaultNetworkInterface},option:dns-server,${spec.dnsServers.join(',')}`);
  if (spec.domain !== undefined) args.push(`--domain=${spec.domain}`, `--dhcp-option=tag:${defaultNetworkInterface},option:domain-name,${spec.domain}`);
  return args;
}

/**
 * The record of a default-network sandbox: no host veth and no pod
 * addresses (nothing of the pod network: policies and Services do not see
 * it), the guest's primary NIC being the default network's link.
 */
export function defaultNetworkState(netns: string, spec: SandboxSpec, links: SecondaryLink[]): SandboxState {
  const primary = links.find((l) => l.interfaceName === defaultNetworkInterface);
  if (primary === undefined) throw new Error(`the default network's plugins made no ${defaultNetworkInterface} in the sandbox`);
  return {
    netns,
    hostVeth: '',
    tap: primary.tap,
    binding: 'bridge',
    mac: spec.mac,
    podIps: [],
    guestIps: primary.addresses.filter((a) => !a.includes(':')).map((a) => a.split('/')[0] ?? a),
    secondaries: links,
  };
}

/** True for the record of a sandbox on a Multus default network (no pod network). */
export function isDefaultNetworkSandbox(state: SandboxState): boolean {
  return state.hostVeth === '';
}
