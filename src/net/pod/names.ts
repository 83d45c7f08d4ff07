/**
 * The kernel names of one agent's pod network: its node bridge, its
 * nftables tables (the datapath's, the network policy's and the service
 * proxy's), and per VMI the sandbox network namespace and the host
 * end of its veth. Derived from the agent's data directory, so two agents
 * on one host (the tests run several at once) never share a name, and
 * short enough for Linux's 15-byte interface names.
 */
import { createHash } from 'node:crypto';
import { resolve } from 'node:path';

/** The names shared by every sandbox of one agent. */
export interface NetworkNames {
  /** The node bridge in the host namespace, holding the gateway address. */
  bridge: string;
  /** The host namespace's nftables table (family `inet`). */
  table: string;
  /** The network policy's tables in the host namespace (families `inet` and `bridge`, one name). */
  policyTable: string;
  /** The service proxy's table in the host namespace (family `inet`). */
  serviceTable: string;
  /** Every sandbox namespace of this agent starts with it. */
  netnsPrefix: string;
}

/** Names of one VMI's sandbox. */
export interface SandboxNames {
  netns: string;
  /** The host end of the veth whose other end is the sandbox's `eth0`. */
  hostVeth: string;
}

/** The bridge inside a sandbox joining the tap to the guest's side (KubeVirt's name). */
export const sandboxBridge = 'k6t-eth0';
/** The tap QEMU opens inside the sandbox. */
export const sandboxTap = 'tap0';
/** The sandbox's nftables table (family `inet`). */
export const sandboxTable = 'vireo_sandbox';

function digest(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

export function networkNames(dataDir: string): NetworkNames {
  const id = digest(resolve(dataDir), 6);
  return { bridge: `vpod${id}`, table: `vireo_${id}`, policyTable: `vireo_policy_${id}`, serviceTable: `vireo_svc_${id}`, netnsPrefix: `vireo-${id}-` };
}

export function sandboxNames(names: NetworkNames, uid: string): SandboxNames {
  return { netns: `${names.netnsPrefix}${uid}`, hostVeth: `vh${digest(`${names.netnsPrefix}${uid}`, 12)}` };
}
