/**
 * The node-local IPAM of the pod network (host-local's model): each VMI
 * gets the lowest free address of each of the node's pod subnets, leased
 * in a file of its own under the agent's data directory, so a restarted
 * agent knows what is taken and a released VMI frees its addresses by
 * the removal of its directory. Offset 1 of each subnet is the gateway
 * (the node bridge); offset 0 and the IPv4 broadcast are never handed out.
 */
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isPlainObject } from '../../api/object.js';
import type { Cidr } from './cidr.js';
import { addressAt, contains, parseAddress, sizeOf } from './cidr.js';

/** A VMI's addresses, each with its subnet's prefix length, e.g. 10.244.0.5/24. */
export interface Lease {
  uid: string;
  addresses: string[];
}

/** The highest IPv6 offset tried: a node runs far fewer guests. */
const maxScan = 65_536n;

/** The lease file of `uid` in its own directory under `root`. */
export function leaseFile(root: string, uid: string): string {
  return join(root, uid, 'lease.json');
}

export class NodeIpam {
  /** One allocation at a time: two VMIs starting at once must not take the same address. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly root: string) {}

  /** The lease of `uid`: the one it has, else new addresses from `subnets`. */
  acquire(uid: string, subnets: readonly Cidr[]): Promise<Lease> {
    const next = this.queue.then(() => this.acquireNow(uid, subnets));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Every lease on the node, by uid. */
  async leases(): Promise<Map<string, Lease>> {
    const found = new Map<string, Lease>();
    let entries: string[];
    try {
      entries = await readdir(this.root);
    } catch {
      return found;
    }
    for (const uid of entries) {
      const lease = await readLease(leaseFile(this.root, uid));
      if (lease !== undefined && lease.uid === uid) found.set(uid, lease);
    }
    return found;
  }

  private async acquireNow(uid: string, subnets: readonly Cidr[]): Promise<Lease> {
    const all = await this.leases();
    const own = all.get(uid);
    if (own !== undefined && own.addresses.length === subnets.length) return own;
    const taken = new Set<bigint>();
    for (const lease of all.values()) {
      for (const address of lease.addresses) {
        const parsed = parseAddress(address.slice(0, address.indexOf('/')));
        if (parsed !== undefined) taken.add(parsed.value);
      }
    }
    const addresses = subnets.map((subnet) => {
      const last = subnet.family === 4 ? sizeOf(subnet) - 2n : sizeOf(subnet) - 1n;
      for (let offset = 2n; offset <= last && offset < maxScan; offset++) {
        if (!taken.has(subnet.base + offset) && contains(subnet, subnet.base + offset)) return `${addressAt(subnet, offset)}/${subnet.prefix}`;
      }
      throw new Error(`the node's pod subnet ${addressAt(subnet, 0n)}/${subnet.prefix} has no free address left: delete VMIs on this node or give the cluster a wider --cluster-cidr`);
    });
    const lease: Lease = { uid, addresses };
    const file = leaseFile(this.root, uid);
    await mkdir(join(this.root, uid), { recursive: true, mode: 0o700 });
    await writeFile(`${file}.tmp`, `${JSON.stringify(lease)}\n`, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    return lease;
  }
}

async function readLease(file: string): Promise<Lease | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (!isPlainObject(value) || typeof value.uid !== 'string' || !Array.isArray(value.addresses)) return undefined;
  const addresses = value.addresses.filter((a): a is string => typeof a === 'string');
  return { uid: value.uid, addresses };
}
