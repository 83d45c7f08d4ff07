/**
 * Which CNI attachments a VMI asks for, read from its spec as KubeVirt
 * builds Multus' network-selection annotation: one per `networks[].multus`
 * entry in order, named net1, net2… as Multus names them; a `default: true`
 * multus network takes eth0 instead (it replaces the pod network); the
 * interface's `macAddress` goes along for plugins with the `mac` capability.
 */
import { booleanAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import type { NetworkRequest } from './attach.js';
import { qualifiedName } from './attach.js';

/** A VMI's secondary networks and, when one is the default, which (`namespace/name`). */
export interface MultusPlan {
  requests: NetworkRequest[];
  defaultNetwork?: string;
}

/** Reads `spec.networks` and `spec.domain.devices.interfaces` of a VMI in `namespace`. */
export function multusPlanOf(spec: Record<string, unknown>, namespace: string): MultusPlan {
  const interfaces = recordsAt(spec, 'domain', 'devices', 'interfaces');
  const plan: MultusPlan = { requests: [] };
  let ordinal = 0;
  for (const network of recordsAt(spec, 'networks')) {
    const networkName = stringAt(network, 'multus', 'networkName');
    if (networkName === undefined) continue;
    const isDefault = booleanAt(network, 'multus', 'default') === true;
    const name = stringAt(network, 'name');
    const mac = stringAt(interfaces.find((i) => stringAt(i, 'name') === name), 'macAddress');
    const request: NetworkRequest = { networkName, interfaceName: isDefault ? 'eth0' : `net${++ordinal}` };
    if (mac !== undefined && mac !== '') request.mac = mac;
    if (isDefault) plan.defaultNetwork = qualifiedName(networkName, namespace);
    plan.requests.push(request);
  }
  return plan;
}
