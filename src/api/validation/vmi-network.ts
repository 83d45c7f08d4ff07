/**
 * Interface and network checks of a VirtualMachineInstance spec, as
 * KubeVirt's `network/admitter` makes them: every interface names a network
 * and every network is used by an interface, one source per network, at
 * most one pod network, one binding per interface, and sane interface fields.
 */
import type { FieldError } from '../errors.js';
import { quote } from '../names.js';
import { booleanAt, has, numberAt, recordsAt, stringAt } from '../kinds/read.js';
import { duplicate, invalid, notSupported, required } from './field-error.js';
import { isPortName } from './service.js';

const bindings = ['bridge', 'masquerade', 'sriov', 'passtBinding', 'binding'] as const;
const discontinued = { slirp: 'Slirp', passt: 'Passt', macvtap: 'Macvtap' } as const;
const interfaceModels = ['e1000', 'e1000e', 'igb', 'ne2k_pci', 'pcnet', 'rtl8139', 'virtio'];
const interfaceNameRe = /^[A-Za-z0-9_-]+$/;
const macRe = /^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/;
/** The MAC of the bridge inside a masquerade sandbox: a guest must not take it. */
const masqueradeBridgeMac = '02:00:00:00:00:00';
const pciRe = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;

/** Checks `<path>.networks` and `<path>.domain.devices.interfaces`. */
export function validateNetworks(path: string, spec: Record<string, unknown>): FieldError[] {
  const networks = recordsAt(spec, 'networks');
  const interfaces = recordsAt(spec, 'domain', 'devices', 'interfaces');
  const networksByName = new Map(networks.map((n) => [stringAt(n, 'name') ?? '', n]));
  const interfaceNames = new Set(interfaces.map((i) => stringAt(i, 'name') ?? ''));
  const errors: FieldError[] = [...validateNetworkSources(path, networks)];

  const seenNetworks = new Set<string>();
  networks.forEach((network, i) => {
    const name = stringAt(network, 'name') ?? '';
    const field = `${path}.networks[${i}].name`;
    if (seenNetworks.has(name)) {
      errors.push(duplicate(field, `Network with name ${quote(name)} already exists, every network must have a unique name`));
    }
    seenNetworks.add(name);
    if (!interfaceNames.has(name)) {
      errors.push(
        required(field, `network ${quote(name)} is not used by any interface: each network is attached through the interface of the same name; add one to ${path}.domain.devices.interfaces or remove the network`),
      );
    }
  });

  const seenInterfaces = new Set<string>();
  interfaces.forEach((iface, i) => {
    const p = `${path}.domain.devices.interfaces[${i}]`;
    const name = stringAt(iface, 'name') ?? '';
    if (seenInterfaces.has(name)) {
      errors.push(duplicate(`${p}.name`, `Only one interface can be connected to one specific network, but ${quote(name)} is used twice; rename one interface and add its network`));
    }
    seenInterfaces.add(name);
    const network = networksByName.get(name);
    if (network === undefined) {
      errors.push(
        invalid(`${p}.name`, `interface ${quote(name)} has no network: each interface connects to the network of the same name in ${path}.networks; add a network named ${quote(name)} (e.g. pod: {}) or rename the interface`),
      );
    }
    errors.push(...validateInterface(p, iface, network));
  });
  return errors;
}

function validateNetworkSources(path: string, networks: Record<string, unknown>[]): FieldError[] {
  const errors: FieldError[] = [];
  let podNetworks = 0;
  let multusDefaults = 0;
  networks.forEach((network, i) => {
    const p = `${path}.networks[${i}]`;
    const types = ['pod', 'multus', 'resourceClaim'].filter((t) => has(network, t));
    if (types.length === 0) errors.push(required(p, 'should have a network type: set pod: {} for the pod network or multus: {networkName: …} for a secondary network'));
    else if (types.length > 1) errors.push(required(p, `should have only one network type, but sets ${types.join(' and ')}`));
    if (has(network, 'pod')) podNetworks++;
    if (has(network, 'multus')) {
      if (booleanAt(network, 'multus', 'default') === true) multusDefaults++;
      if ((stringAt(network, 'multus', 'networkName') ?? '') === '') {
        errors.push(required(p, 'CNI delegating plugin must have a networkName: name the NetworkAttachmentDefinition, as <name> or <namespace>/<name>'));
      }
    }
  });
  if (podNetworks > 1) {
    errors.push(duplicate(`${path}.interfaces`, `more than one interface is connected to a pod network in ${path}.interfaces: a VMI has one pod network; use multus networks for the others`));
  }
  if (multusDefaults > 1) errors.push(invalid(`${path}.networks`, 'Multus CNI should only have one default network'));
  if (podNetworks > 0 && multusDefaults > 0) {
    errors.push(invalid(`${path}.networks`, 'Pod network cannot be defined when Multus default network is defined: the default network replaces the pod network'));
  }
  return errors;
}

function validateInterface(p: string, iface: Record<string, unknown>, network: Record<string, unknown> | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const name = stringAt(iface, 'name') ?? '';
  for (const [key, label] of Object.entries(discontinued)) {
    if (has(iface, key)) errors.push(invalid(`${p}.${key}`, `${label} interface support has been discontinued since KubeVirt v1.3; use masquerade or bridge`));
  }
  const set = bindings.filter((b) => has(iface, b));
  const usesDiscontinued = Object.keys(discontinued).some((key) => has(iface, key));
  if (set.length !== 1 && !usesDiscontinued) {
    errors.push(invalid(p, `logical ${name} interface must have exactly one binding method or binding plugin (masquerade, bridge, sriov, passtBinding or binding), but sets ${set.length === 0 ? 'none' : set.join(', ')}`));
  }
  if (has(iface, 'masquerade') && network !== undefined && !has(network, 'pod')) {
    errors.push(invalid(`${p}.name`, 'Masquerade interface only implemented with pod network: use bridge or sriov for multus networks'));
  }
  if (has(iface, 'masquerade') && (stringAt(iface, 'macAddress') ?? '').toLowerCase().replace(/-/g, ':') === masqueradeBridgeMac) {
    errors.push(invalid(`${p}.macAddress`, `The requested MAC address is reserved for the in-pod bridge. Please choose another one (any but ${masqueradeBridgeMac}).`));
  }
  if (!interfaceNameRe.test(name)) {
    errors.push(invalid(`${p}.name`, 'Network interface name can only contain alphabetical characters, numbers, dashes (-) or underscores (_)'));
  }
  const model = stringAt(iface, 'model') ?? '';
  if (model !== '' && !interfaceModels.includes(model)) {
    errors.push(notSupported(`${p}.model`, `interface ${p}.name uses model ${model} that is not supported; use one of ${interfaceModels.join(', ')}`));
  }
  const mac = stringAt(iface, 'macAddress') ?? '';
  if (mac !== '' && !macRe.test(mac)) {
    errors.push(invalid(`${p}.macAddress`, `interface ${p}.name has malformed MAC address (${mac}): use six hex pairs, e.g. 02:00:00:00:00:01`));
  }
  const pci = stringAt(iface, 'pciAddress') ?? '';
  if (pci !== '' && !pciRe.test(pci)) {
    errors.push(invalid(`${p}.pciAddress`, `interface ${p}.name has malformed PCI address (${pci}): use domain:bus:slot.function, e.g. 0000:81:01.0`));
  }
  if (network !== undefined && has(network, 'pod')) errors.push(...validatePorts(p, iface));
  return errors;
}

function validatePorts(p: string, iface: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const names = new Set<string>();
  recordsAt(iface, 'ports').forEach((port, i) => {
    const field = `${p}.ports[${i}]`;
    const name = stringAt(port, 'name') ?? '';
    if (name !== '') {
      if (names.has(name)) errors.push(duplicate(`${field}.name`, `Duplicate name of the port: ${name}`));
      if (isPortName(name).length > 0) errors.push(invalid(`${field}.name`, `Invalid name of the port: ${name} (${isPortName(name).join('; ')}): a Service's targetPort names it, so it must be an IANA service name such as http`));
      names.add(name);
    }
    const number = numberAt(port, 'port');
    if (number === undefined || number === 0) errors.push(required(`${field}.port`, 'Port field is mandatory: set the guest port to forward'));
    else if (number < 0 || number >= 65536) errors.push(invalid(`${field}.port`, 'Port field must be in range 0 < x < 65536.'));
    const protocol = stringAt(port, 'protocol') ?? '';
    if (protocol !== '' && protocol !== 'TCP' && protocol !== 'UDP') {
      errors.push(invalid(`${field}.protocol`, 'Unknown protocol, only TCP or UDP allowed'));
    }
  });
  return errors;
}
