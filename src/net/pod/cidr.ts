/**
 * IP prefixes as numbers: parsing and printing IPv4 and IPv6 CIDRs, the
 * n-th subnet of a range (what the node IPAM hands each Node) and the n-th
 * address of a subnet (what the node's IPAM hands each VMI). Pure; bigint
 * so that IPv6 needs no second code path.
 */

/** One IP prefix, e.g. 10.244.1.0/24 or fd10:244:0:1::/64. */
export interface Cidr {
  family: 4 | 6;
  /** The network address (host bits zero). */
  base: bigint;
  prefix: number;
}

/** Why a CIDR string was refused. */
export class CidrError extends Error {
  override readonly name = 'CidrError';
}

export function bitsOf(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

/** Parses `a.b.c.d` or an IPv6 address into its number and family; undefined when it is neither. */
export function parseAddress(text: string): { family: 4 | 6; value: bigint } | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split('.').map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    return { family: 4, value: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) };
  }
  if (!/^[0-9a-fA-F:]+$/.test(text) || !text.includes(':')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' || halves[0] === undefined ? [] : halves[0].split(':');
  const tail = halves.length === 2 && halves[1] !== '' && halves[1] !== undefined ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if ((halves.length === 1 && missing !== 0) || (halves.length === 2 && missing < 1)) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  return { family: 6, value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

/** The canonical text of an address (IPv6 with the longest run of zero groups as `::`). */
export function formatAddress(family: 4 | 6, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((s) => Number((value >> s) & 0xffffn));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) { bestStart = i; bestLength = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Parses `address/prefix`; throws a {@link CidrError} saying what is wrong. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new CidrError(`"${text}" is not a CIDR: write it as address/prefix, e.g. 10.244.0.0/16 or fd10:244::/56`);
  const address = parseAddress(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined) throw new CidrError(`"${text}" is not a CIDR: "${text.slice(0, slash)}" is not an IPv4 or IPv6 address`);
  const bits = bitsOf(address.family);
  const prefix = Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText) || prefix > bits) throw new CidrError(`"${text}" is not a CIDR: the prefix length must be 0-${bits}`);
  const host = (1n << BigInt(bits - prefix)) - 1n;
  if ((address.value & host) !== 0n) throw new CidrError(`"${text}" has host bits set: its network is ${formatCidr({ family: address.family, base: address.value & ~host, prefix })}`);
  return { family: address.family, base: address.value, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatAddress(cidr.family, cidr.base)}/${cidr.prefix}`;
}

/** How many subnets of length `prefix` `range` holds. */
export function subnetCount(range: Cidr, prefix: number): bigint {
  return prefix < range.prefix ? 0n : 1n << BigInt(prefix - range.prefix);
}

/** The `index`-th subnet of length `prefix` in `range`. */
export function subnetAt(range: Cidr, prefix: number, index: bigint): Cidr {
  return { family: range.family, base: range.base + (index << BigInt(bitsOf(range.family) - prefix)), prefix };
}

/** Which subnet of length `prefix` of `range` `cidr` is; undefined when it is not one of them. */
export function subnetIndex(range: Cidr, prefix: number, cidr: Cidr): bigint | undefined {
  if (cidr.family !== range.family || cidr.prefix !== prefix || !contains(range, cidr.base)) return undefined;
  return (cidr.base - range.base) >> BigInt(bitsOf(range.family) - prefix);
}

/** The `offset`-th address of `cidr` (0 is the network address). */
export function addressAt(cidr: Cidr, offset: bigint): string {
  return formatAddress(cidr.family, cidr.base + offset);
}

/** How many addresses `cidr` spans. */
export function sizeOf(cidr: Cidr): bigint {
  return 1n << BigInt(bitsOf(cidr.family) - cidr.prefix);
}

export function contains(cidr: Cidr, value: bigint): boolean {
  return value >= cidr.base && value < cidr.base + sizeOf(cidr);
}
