/**
 * IP addresses and CIDR ranges as numbers, for the Service allocators (a
 * cluster IP is an offset in the service range) and the cluster DNS (PTR
 * names). IPv4 and IPv6; addresses come back in canonical form, so two
 * spellings of one address compare equal.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 'IPv4' | 'IPv6';

export interface Cidr {
  family: IpFamily;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
  /** As written after parsing: `10.96.0.0/12`. */
  text: string;
}

/** The family of `text`, or undefined when it is not an IP address. */
export function ipFamilyOf(text: string): IpFamily | undefined {
  if (isIPv4(text)) return 'IPv4';
  if (isIPv6(text)) return 'IPv6';
  return undefined;
}

function bitsOf(family: IpFamily): number {
  return family === 'IPv4' ? 32 : 128;
}

/** The address as a number; undefined when `text` is not an IP address. */
export function ipToBigInt(text: string): bigint | undefined {
  const family = ipFamilyOf(text);
  if (family === 'IPv4') return text.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
  if (family !== 'IPv6') return undefined;
  // The URL parser canonicalises IPv6 (embedded IPv4 becomes two hex groups), which leaves only `::` to expand.
  const canonical = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const [head = '', tail] = canonical.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.reduce((n, group) => (n << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** The canonical text of an address of `family`. */
export function bigIntToIp(value: bigint, family: IpFamily): string {
  if (family === 'IPv4') return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** `text` in canonical form (`2001:DB8:0::1` → `2001:db8::1`), or undefined when it is not an IP address. */
export function canonicalIp(text: string): string | undefined {
  const family = ipFamilyOf(text);
  const value = ipToBigInt(text);
  return family === undefined || value === undefined ? undefined : bigIntToIp(value, family);
}

/** Parses `10.96.0.0/12` or `fd00:10:96::/108`; undefined when it is not a CIDR or has host bits set. */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const family = ipFamilyOf(address);
  const value = ipToBigInt(address);
  if (family === undefined || value === undefined || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bitsOf(family)) return undefined;
  const base = (value >> hostBits(family, prefix)) << hostBits(family, prefix);
  if (base !== value) return undefined;
  return { family, base, prefix, text: `${bigIntToIp(base, family)}/${prefix}` };
}

function hostBits(family: IpFamily, prefix: number): bigint {
  return BigInt(bitsOf(family) - prefix);
}

/** How many addresses the range holds (network and broadcast included). */
export function cidrSize(cidr: Cidr): bigint {
  return 1n << hostBits(cidr.family, cidr.prefix);
}

/** True when `ip` lies in `cidr`. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const value = ipToBigInt(ip);
  if (value === undefined || ipFamilyOf(ip) !== cidr.family) return false;
  return value >= cidr.base && value < cidr.base + cidrSize(cidr);
}

/** The `offset`-th address of the range. */
export function cidrAddress(cidr: Cidr, offset: bigint): string {
  return bigIntToIp(cidr.base + offset, cidr.family);
}

/** Where `ip` sits in `cidr` (the caller checked `cidrContains`). */
export function cidrOffset(cidr: Cidr, ip: string): bigint {
  return (ipToBigInt(ip) ?? cidr.base) - cidr.base;
}

/** The reverse-DNS name of an address: `4.3.2.1.in-addr.arpa` or the IPv6 nibbles under `ip6.arpa`. */
export function reverseName(ip: string): string | undefined {
  const family = ipFamilyOf(ip);
  const value = ipToBigInt(ip);
  if (family === undefined || value === undefined) return undefined;
  if (family === 'IPv4') return `${bigIntToIp(value, family).split('.').reverse().join('.')}.in-addr.arpa`;
  return `${value.toString(16).padStart(32, '0').split('').reverse().join('.')}.ip6.arpa`;
}
