/**
 * The node-local IPAM of the pod network (host-local's model): each VMI
 * gets the lowest free address of each of the node's pod subnets, leased
 * in a file of its own under the agent's data directory, so a restarted
 * agent knows what is taken and a released VMI frees its addresses by
 * the removal of its directory. Offset 1 of each subnet is the gateway
 * (the node bridge); offset 0 and the IPv4 broadcast are never handed out.
 *
 * Live migration keeps a VMI's addresses: the target leases the addresses
 * the VMI already has ({@link NodeIpam.keep}), those of another node's
 * range as host addresses (/32, /128); the node whose range they are from
 * keeps its lease, marked departed, while the VMI runs elsewhere, and
 * releases it once the VMI is gone.
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
  /** The VMI migrated to another node with these addresses: they stay taken here until it is deleted. */
  departed?: boolean;
}

/** Thrown when addresses a migrating VMI keeps cannot be leased here. */
export class AddressNotAvailable extends Error {
  override readonly name = 'AddressNotAvailable';
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

  /**
   * The lease of `uid` with exactly `ips` (no prefix): the VMI's addresses,
   * kept across a live migration. An address of one of `subnets` is leased
   * with the subnet's prefix (it must be free, or `uid`'s own departed
   * lease); any other is another node's and is leased as a host address.
   */
  keep(uid: string, subnets: readonly Cidr[], ips: readonly string[]): Promise<Lease> {
    const next = this.queue.then(() => this.keepNow(uid, subnets, ips));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Marks `uid`'s lease departed (its VMI runs on elsewhere with these addresses); false when it has none. */
  depart(uid: string): Promise<boolean> {
    const next = this.queue.then(async () => {
      const lease = await readLease(leaseFile(this.root, uid));
      if (lease === undefined) return false;
      await this.write({ ...lease, departed: true });
      return true;
    });
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
    await this.write(lease);
    return lease;
  }

  private async keepNow(uid: string, subnets: readonly Cidr[], ips: readonly string[]): Promise<Lease> {
    const all = await this.leases();
    const others = new Map<bigint, string>();
    for (const lease of all.values()) {
      if (lease.uid === uid) continue;
      for (const address of lease.addresses) {
        const parsed = parseAddress(withoutPrefix(address));
        if (parsed !== undefined) others.set(parsed.value, lease.uid);
      }
    }
    const addresses = ips.map((ip) => {
      const parsed = parseAddress(ip);
      if (parsed === undefined) throw new AddressNotAvailable(`the VMI's address ${JSON.stringify(ip)} is not an IP address`);
      const holder = others.get(parsed.value);
      if (holder !== undefined) throw new AddressNotAvailable(`the VMI's address ${ip} is leased to another VMI (uid ${holder}) on this node: it cannot keep it here`);
      const subnet = subnets.find((s) => s.family === parsed.family && contains(s, parsed.value));
      if (subnet === undefined) return `${ip}/${parsed.family === 4 ? 32 : 128}`;
      const offset = parsed.value - subnet.base;
      if (offset < 2n || (subnet.family === 4 && offset >= sizeOf(subnet) - 1n)) throw new AddressNotAvailable(`the VMI's address ${ip} is the network, gateway or broadcast address of this node's pod subnet ${addressAt(subnet, 0n)}/${subnet.prefix}`);
      return `${ip}/${subnet.prefix}`;
    });
    // A VMI back on the node of its range: the lease stays departed, so a failed return does not free what it still holds.
    const lease: Lease = { uid, addresses, ...(all.get(uid)?.departed === true ? { departed: true } : {}) };
    await this.write(lease);
    return lease;
  }

  private async write(lease: Lease): Promise<void> {
    const file = leaseFile(this.root, lease.uid);
    await mkdir(join(this.root, lease.uid), { recursive: true, mode: 0o700 });
    await writeFile(`${file}.tmp`, `${JSON.stringify(lease)}\n`, { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
}

function withoutPrefix(address: string): string {
  const slash = address.indexOf('/');
  return slash < 0 ? address : address.slice(0, slash);
}

/** The lease's addresses that are not of `subnets` (another node's, kept by a migrated VMI), without prefix. */
export function foreignAddresses(lease: Lease, subnets: readonly Cidr[]): string[] {
  return lease.addresses.map(withoutPrefix).filter((ip) => {
    const parsed = parseAddress(ip);
    return parsed !== undefined && !subnets.some((s) => s.family === parsed.family && contains(s, parsed.value));
  });
}

/** The lease in `file`; undefined when there is none (or it is unreadable). */
export async function readLease(file: string): Promise<Lease | undefined> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (!isPlainObject(value) || typeof value.uid !== 'string' || !Array.isArray(value.addresses)) return undefined;
  const addresses = value.addresses.filter((a): a is string => typeof a === 'string');
  return { uid: value.uid, addresses, ...(value.departed === true ? { departed: true } : {}) };
}
