/**
 * Which NIC a VMI has on the pod network, read from `spec.networks` and
 * `spec.domain.devices.interfaces` as KubeVirt pairs them (by name): the
 * binding (`masquerade` or `bridge`), the device model, the MAC, the
 * forwarded ports, PCI address and boot order. A MAC the spec does not
 * give is derived from the VM's uid (the VMI's owner, else the VMI) and
 * the interface name, so it stays the same across restarts of the VM.
 * What Vireo cannot attach yet is refused with the field that asks for it.
 */
import { createHash } from 'node:crypto';
import type { KObject } from '../api/object.js';
import { recordsAt, stringAt } from '../api/kinds/read.js';
import type { ForwardedPort, PodBinding } from '../net/pod/index.js';
import { invalidDomain } from './qemu/index.js';

/** The NIC models QEMU has, by KubeVirt's `interfaces[].model` name. */
export const nicModels = { virtio: 'virtio-net-pci', e1000: 'e1000', e1000e: 'e1000e', rtl8139: 'rtl8139', ne2k_pci: 'ne2k_pci', pcnet: 'pcnet' } as const;
export type NicModel = keyof typeof nicModels;

/** The VMI's pod NIC. */
export interface PodInterface extends NicDevice {
  binding: PodBinding;
  ports: ForwardedPort[];
}

const macPattern = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;

/** A stable, locally administered unicast MAC for interface `name` of VM `ownerUid`. */
export function derivedMac(ownerUid: string, name: string): string {
  const bytes = createHash('sha256').update(`${ownerUid}/${name}`).digest().subarray(0, 6);
  // Locally administered (bit 1), unicast (bit 0 clear).
  bytes[0] = ((bytes[0] ?? 0) & 0xfc) | 0x02;
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The uid the MAC is derived from: the owning VM's, so a restarted VM (a new VMI) keeps it. */
function macOwnerUid(vmi: KObject): string {
  const owner = (vmi.metadata.ownerReferences ?? []).find((ref) => ref.kind === 'VirtualMachine' && ref.controller === true);
  return owner?.uid ?? vmi.metadata.uid ?? '';
}

/** A Multus NIC of the VMI: KubeVirt's bridge binding on a secondary network. */
export interface MultusInterface extends NicDevice {
  /** `networks[].multus.networkName`. */
  networkName: string;
  /** net1, net2…, in the order of `spec.networks`. */
  interfaceName: string;
  /** `interfaces[].macAddress` as given, which KubeVirt passes on to the CNI plugins. */
  requestedMac?: string;
  /** `networks[].multus.default`: this network replaces the pod network (eth0 in the sandbox). */
  isDefault?: true;
}

/** What every NIC has on QEMU's side. */
export interface NicDevice {
  /** `interfaces[].name` (= `networks[].name`). */
  name: string;
  model: NicModel;
  mac: string;
  /** `0000:00:SS.F` style, when given. */
  pciAddress?: string;
  bootOrder?: number;
}

/** The VMI's NICs: the pod network's, if any, and the Multus ones (a default one first). */
export interface VmiInterfaces {
  pod?: PodInterface;
  multus: MultusInterface[];
}

/**
 * The VMI's NICs. Throws an `InvalidDomain` error for what cannot be
 * attached: a second pod network, two Multus default networks or one
 * beside the pod network, secondary Multus networks with neither, bindings
 * other than masquerade and bridge (bridge only on Multus), bad MACs or ports.
 */
export function interfacesOf(vmi: KObject): VmiInterfaces {
  const networks = recordsAt(vmi, 'spec', 'networks');
  const interfaces = recordsAt(vmi, 'spec', 'domain', 'devices', 'interfaces');
  const result: VmiInterfaces = { multus: [] };
  for (const [i, iface] of interfaces.entries()) {
    if (!networks.some((n) => n.name === iface.name)) throw invalidDomain(`spec.domain.devices.interfaces[${i}]`, `no network is named "${String(iface.name)}" in spec.networks (e.g. {name: default, pod: {}})`);
  }
  for (const [i, network] of networks.entries()) {
    const name = typeof network.name === 'string' ? network.name : '';
    const index = interfaces.findIndex((iface) => iface.name === name);
    const iface = interfaces[index];
    const path = `spec.domain.devices.interfaces[${index}]`;
    if (network.pod !== undefined) {
      if (result.pod !== undefined) throw invalidDomain('spec.networks', 'a VMI has at most one pod network');
      if (iface === undefined) throw invalidDomain('spec.domain.devices.interfaces', `no interface is named "${name}" for the pod network "${name}": add one with a binding, e.g. {name: ${name}, masquerade: {}}`);
      const binding = bindingOf(iface, path);
      result.pod = { ...deviceOf(vmi, iface, path, name), binding, ports: portsOf(iface, path, binding) };
      continue;
    }
    const networkName = stringAt(network, 'multus', 'networkName');
    if (networkName === undefined || networkName === '') throw invalidDomain(`spec.networks[${i}]`, 'a network is either {pod: {}} or {multus: {networkName: NAD}}; Vireo attaches no other kind');
    const isDefault = network.multus !== undefined && (network.multus as Record<string, unknown>).default === true;
    if (isDefault && result.multus.some((m) => m.isDefault === true)) throw invalidDomain('spec.networks', 'Multus CNI should only have one default network');
    if (iface === undefined) throw invalidDomain('spec.domain.devices.interfaces', `no interface is named "${name}" for the Multus network "${name}": add one, e.g. {name: ${name}, bridge: {}}`);
    if (bindingOf(iface, path, 'bridge') !== 'bridge') throw invalidDomain(`${path}.masquerade`, 'the masquerade binding is for the pod network only: use bridge: {} on a Multus network');
    // As Multus names them: the default network is eth0, the others net1, net2… in order.
    const ordinal = result.multus.filter((m) => m.isDefault !== true).length + 1;
    const nic: MultusInterface = { ...deviceOf(vmi, iface, path, name), networkName, interfaceName: isDefault ? 'eth0' : `net${ordinal}` };
    if (isDefault) nic.isDefault = true;
    const requested = stringAt(iface, 'macAddress');
    if (requested !== undefined) nic.requestedMac = nic.mac;
    result.multus.push(nic);
  }
  const hasDefault = result.multus.some((m) => m.isDefault === true);
  if (hasDefault && result.pod !== undefined) throw invalidDomain('spec.networks', 'Pod network cannot be defined when Multus default network is defined: the default network replaces the pod network');
  if (result.multus.length > 0 && result.pod === undefined && !hasDefault) {
    throw invalidDomain('spec.networks', 'Multus networks are attached beside the pod network or a Multus default network: add {name: default, pod: {}} to spec.networks and an interface for it, or mark one Multus network default: true (a VMI on secondary Multus networks alone is not supported yet)');
  }
  // The default network's NIC comes first, as eth0 does in the guest.
  result.multus.sort((a, b) => Number(b.isDefault === true) - Number(a.isDefault === true));
  return result;
}

/**
 * The VMI's pod NIC; undefined when it has none. Throws as {@link interfacesOf}.
 */
export function podInterfaceOf(vmi: KObject): PodInterface | undefined {
  return interfacesOf(vmi).pod;
}

function deviceOf(vmi: KObject, iface: Record<string, unknown>, path: string, name: string): NicDevice {
  const model = stringAt(iface, 'model') ?? 'virtio';
  if (!(model in nicModels)) throw invalidDomain(`${path}.model`, `"${model}" is not a NIC model: use one of ${Object.keys(nicModels).join(', ')}`);
  const mac = stringAt(iface, 'macAddress');
  if (mac !== undefined && !macPattern.test(mac)) throw invalidDomain(`${path}.macAddress`, `"${mac}" is not a MAC address: write six hex pairs, e.g. 02:00:00:00:00:01`);
  const result: NicDevice = {
    name,
    model: model as NicModel,
    mac: (mac ?? derivedMac(macOwnerUid(vmi), name)).toLowerCase().replaceAll('-', ':'),
  };
  const pci = stringAt(iface, 'pciAddress');
  if (pci !== undefined) {
    if (!/^0000:00:[01][0-9a-fA-F]\.[0-7]$/.test(pci)) throw invalidDomain(`${path}.pciAddress`, `"${pci}" cannot be used: Vireo places NICs on the root bus, 0000:00:SS.F with slot 02-1f`);
    result.pciAddress = pci;
  }
  const bootOrder = iface.bootOrder;
  if (bootOrder !== undefined) {
    if (typeof bootOrder !== 'number' || !Number.isInteger(bootOrder) || bootOrder < 1) throw invalidDomain(`${path}.bootOrder`, 'the boot order is a positive integer');
    result.bootOrder = bootOrder;
  }
  return result;
}

function bindingOf(iface: Record<string, unknown>, path: string, fallback: PodBinding = 'masquerade'): PodBinding {
  const bindings = ['masquerade', 'bridge', 'slirp', 'sriov', 'passt', 'macvtap', 'binding'].filter((b) => iface[b] !== undefined);
  if (bindings.length > 1) throw invalidDomain(path, `an interface has one binding, not ${bindings.join(' and ')}`);
  const binding = bindings[0] ?? fallback;
  if (binding === 'masquerade' || binding === 'bridge') return binding;
  throw invalidDomain(`${path}.${binding}`, `the ${binding} binding is not supported: use masquerade (NAT, the default) or bridge`);
}

function portsOf(iface: Record<string, unknown>, path: string, binding: PodBinding): ForwardedPort[] {
  const ports = recordsAt(iface, 'ports');
  if (ports.length > 0 && binding !== 'masquerade') throw invalidDomain(`${path}.ports`, 'ports are forwarded only by the masquerade binding; the bridge binding gives the guest every port');
  return ports.map((entry, i) => {
    const port = entry.port;
    const protocol = entry.protocol ?? 'TCP';
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw invalidDomain(`${path}.ports[${i}].port`, 'a port is 1-65535');
    if (protocol !== 'TCP' && protocol !== 'UDP') throw invalidDomain(`${path}.ports[${i}].protocol`, 'the protocol is TCP or UDP');
    return { protocol: protocol === 'TCP' ? 'tcp' : 'udp', port };
  });
}
