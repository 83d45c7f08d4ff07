/**
 * The pod network a VMI gets when it names none, as KubeVirt's VMI
 * mutating webhook gives it (`SetDefaultNetworkInterface`): a VMI created
 * with neither `spec.networks` nor `spec.domain.devices.interfaces`, and
 * without `autoattachPodInterface: false`, gets `networks: [{name: default,
 * pod: {}}]` and one interface `default` with the cluster's default binding
 * (the KubeVirt CR's `spec.configuration.network.defaultNetworkInterface`,
 * `bridge` when unset). The same CR's `permitBridgeInterfaceOnPodNetwork:
 * false` refuses the bridge binding on the pod network, defaulted or asked
 * for. Pure: the caller reads the KubeVirt CR.
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { isPlainObject } from '../object.js';
import { booleanAt, recordsAt, stringAt } from './read.js';

/** The part of the KubeVirt CR's `spec.configuration.network` that decides the pod network's binding. */
export interface ClusterNetworkConfig {
  /** `defaultNetworkInterface`: the binding of an auto-attached pod interface (KubeVirt's default: bridge). */
  defaultNetworkInterface: string;
  /** `permitBridgeInterfaceOnPodNetwork` (KubeVirt's default: true). */
  permitBridgeInterfaceOnPodNetwork: boolean;
}

/** KubeVirt's defaults, for a cluster without a KubeVirt CR or one that sets nothing. */
export const defaultClusterNetworkConfig: ClusterNetworkConfig = { defaultNetworkInterface: 'bridge', permitBridgeInterfaceOnPodNetwork: true };

/** The network configuration of `kubevirt` (a KubeVirt CR), KubeVirt's defaults where it sets nothing. */
export function clusterNetworkConfigOf(kubevirt: KObject | undefined): ClusterNetworkConfig {
  const binding = stringAt(kubevirt, 'spec', 'configuration', 'network', 'defaultNetworkInterface');
  const permit = booleanAt(kubevirt, 'spec', 'configuration', 'network', 'permitBridgeInterfaceOnPodNetwork');
  return {
    defaultNetworkInterface: binding === undefined || binding === '' ? defaultClusterNetworkConfig.defaultNetworkInterface : binding,
    permitBridgeInterfaceOnPodNetwork: permit ?? defaultClusterNetworkConfig.permitBridgeInterfaceOnPodNetwork,
  };
}

const configField = 'spec.configuration.network';

/**
 * Adds the pod network to `spec` (a VMI's spec, changed in place) when it
 * names no network and no interface and does not opt out. Returns the
 * error that refuses the VMI when the cluster's default binding cannot be
 * given, else undefined.
 */
export function setDefaultNetworkInterface(path: string, spec: Record<string, unknown>, config: ClusterNetworkConfig): FieldError | undefined {
  if (booleanAt(spec, 'domain', 'devices', 'autoattachPodInterface') === false) return undefined;
  if (recordsAt(spec, 'networks').length > 0 || recordsAt(spec, 'domain', 'devices', 'interfaces').length > 0) return undefined;
  const field = `${path}.domain.devices.interfaces`;
  const binding = config.defaultNetworkInterface;
  if (binding === 'bridge' && !config.permitBridgeInterfaceOnPodNetwork) {
    return {
      field,
      reason: 'FieldValueInvalid',
      message: `bridge interface is not enabled in kubevirt-config: the KubeVirt CR's ${configField}.defaultNetworkInterface is bridge (or unset) while permitBridgeInterfaceOnPodNetwork is false; set defaultNetworkInterface to masquerade there, or give the VMI its interfaces and networks`,
    };
  }
  if (binding !== 'bridge' && binding !== 'masquerade') {
    const why = binding === 'slirp' ? 'the slirp binding is deprecated as of KubeVirt v1.3' : `"${binding}" is not a binding Vireo can default to`;
    return { field, reason: 'FieldValueInvalid', message: `cannot add the default pod network: the KubeVirt CR's ${configField}.defaultNetworkInterface asks for ${binding}, and ${why}; set it to bridge or masquerade, or give the VMI its interfaces and networks` };
  }
  // New objects down to the interfaces: the caller's nested ones may be shared with other objects.
  const domain = isPlainObject(spec.domain) ? spec.domain : {};
  const devices = isPlainObject(domain.devices) ? domain.devices : {};
  spec.domain = { ...domain, devices: { ...devices, interfaces: [{ name: 'default', [binding]: {} }] } };
  spec.networks = [{ name: 'default', pod: {} }];
  return undefined;
}

/** KubeVirt's check of `permitBridgeInterfaceOnPodNetwork: false`: no interface on the pod network may use the bridge binding. */
export function validateBridgeOnPodNetwork(path: string, spec: Record<string, unknown>, config: ClusterNetworkConfig): FieldError[] {
  if (config.permitBridgeInterfaceOnPodNetwork) return [];
  const podNetworks = new Set(recordsAt(spec, 'networks').filter((n) => isPlainObject(n.pod)).map((n) => n.name));
  const errors: FieldError[] = [];
  recordsAt(spec, 'domain', 'devices', 'interfaces').forEach((iface, i) => {
    if (iface.bridge === undefined || !podNetworks.has(iface.name)) return;
    errors.push({
      field: `${path}.domain.devices.interfaces[${i}].name`,
      reason: 'FieldValueInvalid',
      message: `Bridge on pod network configuration is not enabled under kubevirt-config: the KubeVirt CR's ${configField}.permitBridgeInterfaceOnPodNetwork is false; use masquerade: {} on the pod network, or ask the cluster admin to permit bridge`,
    });
  });
  return errors;
}
