/**
 * The pod-network addresses of a VirtualMachineInstance, as its Services
 * see them: the `status.interfaces[]` entry of the interface attached to the
 * `pod: {}` network (the first entry when the VMI lists no networks), its
 * `ipAddresses` (else `ipAddress`), without prefix lengths and without
 * IPv6 link-local addresses. Real KubeVirt's Services select the
 * virt-launcher pod, whose IPs these are.
 */
import type { KObject } from '../object.js';
import { canonicalIp } from '../ip.js';
import { arrayAt, has, recordsAt, stringAt } from './read.js';

/** The name of the VMI's pod network interface; undefined when it has none (only Multus networks). */
export function podInterfaceName(vmi: KObject): string | undefined {
  const networks = recordsAt(vmi, 'spec', 'networks');
  if (networks.length === 0) return undefined;
  const pod = networks.find((n) => has(n, 'pod'));
  return pod === undefined ? undefined : (stringAt(pod, 'name') ?? '');
}

/** The VMI's pod-network IPs in canonical form, IPv4 and IPv6; empty until the agent reports them. */
export function podAddresses(vmi: KObject): string[] {
  const interfaces = recordsAt(vmi, 'status', 'interfaces');
  const listed = recordsAt(vmi, 'spec', 'networks').length > 0;
  const name = podInterfaceName(vmi);
  if (listed && name === undefined) return [];
  const entry = listed ? interfaces.find((i) => stringAt(i, 'name') === name) : interfaces[0];
  if (entry === undefined) return [];
  const many = arrayAt(entry, 'ipAddresses').filter((ip): ip is string => typeof ip === 'string');
  const single = stringAt(entry, 'ipAddress');
  const raw = many.length > 0 ? many : single === undefined ? [] : [single];
  const ips: string[] = [];
  for (const text of raw) {
    const ip = canonicalIp(text.split('/')[0] ?? '');
    if (ip === undefined || /^fe[89ab][0-9a-f]:/i.test(ip) || ips.includes(ip)) continue;
    ips.push(ip);
  }
  return ips;
}
