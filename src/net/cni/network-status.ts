/**
 * The `k8s.v1.cni.cncf.io/network-status` annotation as Multus writes it on
 * a pod: one entry per network (`name` is the NAD's `namespace/name`, or the
 * cluster network's name for the pod network), with the interface, its
 * addresses (without prefix length), MAC, `default: true` on the network
 * that carries the default route, and `dns` (always present, `{}` when empty).
 */
import type { ResultDns } from './result.js';
import type { AttachedNetwork } from './attach.js';

/** The annotation key (the `k8s.v1.cni.cncf.io/` prefix is for annotations; NADs are `k8s.cni.cncf.io/v1`). */
export const networkStatusAnnotation = 'k8s.v1.cni.cncf.io/network-status';

/** One entry of the annotation, in Multus' field order. */
export interface NetworkStatusEntry {
  name: string;
  interface?: string;
  ips?: string[];
  mac?: string;
  mtu?: number;
  default?: true;
  dns: ResultDns;
}

/** The pod network's entry, as the pod network's datapath knows it. */
export interface PodNetworkStatus {
  /** The cluster network's name (Multus writes the default delegate's CNI name). */
  name: string;
  interface: string;
  ips: string[];
  mac?: string;
}

export interface NetworkStatusInput {
  /** The pod network, when the VMI has one; it is the default unless `defaultNetwork` names a NAD. */
  podNetwork?: PodNetworkStatus;
  attachments: readonly AttachedNetwork[];
  /** The NAD (`namespace/name`) of a `multus.default: true` network, which replaces the pod network. */
  defaultNetwork?: string;
}

/** The annotation's entries: the pod network first, then the attachments in order. */
export function networkStatusEntries(input: NetworkStatusInput): NetworkStatusEntry[] {
  const entries: NetworkStatusEntry[] = [];
  if (input.podNetwork !== undefined) {
    const pod = input.podNetwork;
    const entry: NetworkStatusEntry = { name: pod.name, interface: pod.interface, dns: {} };
    if (pod.ips.length > 0) entry.ips = [...pod.ips];
    if (pod.mac !== undefined) entry.mac = pod.mac;
    if (input.defaultNetwork === undefined) entry.default = true;
    entries.push(reorder(entry));
  }
  for (const attached of input.attachments) entries.push(attachmentEntry(attached, attached.network === input.defaultNetwork));
  return entries;
}

/** The annotation's value: the entries as JSON. */
export function networkStatusValue(input: NetworkStatusInput): string {
  return JSON.stringify(networkStatusEntries(input));
}

function attachmentEntry(attached: AttachedNetwork, isDefault: boolean): NetworkStatusEntry {
  const { result } = attached;
  // The interface in the sandbox with the requested name; host-side veth ends and bridges are not the pod's.
  const index = result.interfaces.findIndex((i) => i.sandbox !== undefined && i.name === attached.interfaceName);
  const entry: NetworkStatusEntry = { name: attached.network, interface: attached.interfaceName, dns: {} };
  const ips = result.ips.filter((ip) => ip.interface === undefined || ip.interface === index).map((ip) => withoutPrefix(ip.address));
  if (ips.length > 0) entry.ips = ips;
  const found = result.interfaces[index];
  if (found?.mac !== undefined && found.mac !== '') entry.mac = found.mac;
  if (found?.mtu !== undefined && found.mtu > 0) entry.mtu = found.mtu;
  if (isDefault) entry.default = true;
  entry.dns = { ...result.dns };
  return reorder(entry);
}

/** Keeps `dns` last, where Multus puts it, whatever order the fields were set in. */
function reorder(entry: NetworkStatusEntry): NetworkStatusEntry {
  const { dns, ...rest } = entry;
  return { ...rest, dns };
}

function withoutPrefix(address: string): string {
  const slash = address.indexOf('/');
  return slash < 0 ? address : address.slice(0, slash);
}
