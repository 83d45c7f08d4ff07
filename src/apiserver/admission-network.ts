/**
 * The admission of KubeVirt's webhooks that reads the cluster's network
 * configuration (the KubeVirt CR's `spec.configuration.network`), and so
 * runs before the synchronous chain: a new VMI that names no network gets
 * the pod network with the default binding (autoattachPodInterface), and
 * `permitBridgeInterfaceOnPodNetwork: false` refuses the bridge binding on
 * the pod network of new VMIs and of VM templates.
 */
import { invalid } from '../api/errors.js';
import type { FieldError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { isPlainObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { clusterNetworkConfigOf, setDefaultNetworkInterface, validateBridgeOnPodNetwork } from '../api/kinds/pod-network-default.js';
import type { ClusterNetworkConfig } from '../api/kinds/pod-network-default.js';
import { recordAt } from '../api/kinds/read.js';
import type { Store } from '../store/types.js';

const kubevirtPrefix = '/registry/kubevirt.io/kubevirts/';

function isKubevirtKind(def: ResourceDef, kind: string): boolean {
  return def.group === 'kubevirt.io' && def.kind === kind;
}

/** True for the writes this module admits. */
export function isNetworkAdmitted(def: ResourceDef): boolean {
  return isKubevirtKind(def, 'VirtualMachineInstance') || isKubevirtKind(def, 'VirtualMachine');
}

/** The network configuration of the cluster's KubeVirt CR (the oldest one that is not being deleted), KubeVirt's defaults without one. */
async function clusterNetworkConfig(store: Store): Promise<ClusterNetworkConfig> {
  const list = await store.list(kubevirtPrefix);
  const kubevirts = list.items
    .map((kv) => JSON.parse(kv.value) as KObject)
    .filter((kv) => kv.metadata.deletionTimestamp === undefined)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
  return clusterNetworkConfigOf(kubevirts[0]);
}

/**
 * Mutates a new VMI (the default pod network) and checks VMIs and VM
 * templates against the cluster's network configuration; throws a 422
 * naming the field when one is refused. Updates of a VMI are left alone
 * (its spec is fixed), and a VM only when its template's networks change.
 */
export async function admitNetwork(def: ResourceDef, obj: KObject, old: KObject | undefined, store: Store): Promise<void> {
  const vmi = isKubevirtKind(def, 'VirtualMachineInstance');
  if (vmi && old !== undefined) return;
  const path = vmi ? 'spec' : 'spec.template.spec';
  const spec = vmi ? recordAt(obj, 'spec') : recordAt(obj, 'spec', 'template', 'spec');
  if (spec === undefined) return;
  if (!vmi && old !== undefined && JSON.stringify(networkFields(spec)) === JSON.stringify(networkFields(recordAt(old, 'spec', 'template', 'spec')))) return;
  const config = await clusterNetworkConfig(store);
  const errors: FieldError[] = [];
  if (vmi) {
    const refused = setDefaultNetworkInterface(path, spec, config);
    if (refused !== undefined) errors.push(refused);
  }
  errors.push(...validateBridgeOnPodNetwork(path, spec, config));
  if (errors.length > 0) throw invalid(def.kind, def.group, obj.metadata.name ?? obj.metadata.generateName ?? '', errors);
}

function networkFields(spec: Record<string, unknown> | undefined): unknown[] {
  const devices = recordAt(spec, 'domain', 'devices');
  return [spec?.networks, isPlainObject(devices) ? devices.interfaces : undefined];
}
