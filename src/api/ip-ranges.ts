/**
 * IP address arithmetic (NetworkPolicy validation, the policy compiler): CIDRs and addresses as
 * integer ranges per family, unions and differences (ipBlock `except`,
 * Calico `nets`), and the element text of an nftables interval set.
 */
import { isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 4 | 6;

/** An inclusive range of addresses of one family. */
export interface AddressRange {
  family: IpFamily;
  first: bigint;
  last: bigint;
}

function v4ToNumber(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6ToNumber(text: string): bigint {
  let address = text;
  // A trailing dotted quad (::ffff:10.0.0.1) is two groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted?.[1] !== undefined) {
    const v4 = v4ToNumber(dotted[1]);
    address = `${address.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = address.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...tailGroups];
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n);
}

/** Parses an address or a CIDR; `undefined` when it is neither. Host bits of a CIDR are ignored, as the kernel does. */
export function parseAddressOrCidr(text: string): AddressRange | undefined {
  const [address = '', prefixText, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const family: IpFamily | undefined = isIPv4(address) ? 4 : isIPv6(address) ? 6 : undefined;
  if (family === undefined) return undefined;
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > bits) return undefined;
  }
  const value = family === 4 ? v4ToNumber(address) : v6ToNumber(address);
  const hostBits = BigInt(bits - prefix);
  const first = (value >> hostBits) << hostBits;
  return { family, first, last: first + (1n << hostBits) - 1n };
}

/** True when `inner` lies wholly inside `outer`. */
export function rangeContains(outer: AddressRange, inner: AddressRange): boolean {
  return outer.family === inner.family && inner.first >= outer.first && inner.last <= outer.last;
}

/** Sorted, merged ranges: overlapping and adjacent ranges become one (nftables refuses overlapping interval elements). */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: AddressRange[] = [];
  for (const range of sorted) {
    const previous = merged[merged.length - 1];
    if (previous !== undefined && previous.family === range.family && range.first <= previous.last + 1n) {
      if (range.last > previous.last) previous.last = range.last;
    } else {
      merged.push({ ...range });
    }
  }
  return merged;
}

/** `ranges` without the addresses of `removed`. */
export function subtractRanges(ranges: readonly AddressRange[], removed: readonly AddressRange[]): AddressRange[] {
  let remaining = mergeRanges(ranges);
  for (const cut of removed) {
    const next: AddressRange[] = [];
    for (const range of remaining) {
      if (range.family !== cut.family || cut.last < range.first || cut.first > range.last) {
        next.push(range);
        continue;
      }
      if (cut.first > range.first) next.push({ family: range.family, first: range.first, last: cut.first - 1n });
      if (cut.last < range.last) next.push({ family: range.family, first: cut.last + 1n, last: range.last });
    }
    remaining = next;
  }
  return remaining;
}

function formatAddress(family: IpFamily, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  // Full form is valid nft input; the shortest form is not needed.
  return groups.join(':');
}

/** The element text of a range in an nftables interval set: an address or `first-last`. */
export function rangeElement(range: AddressRange): string {
  const first = formatAddress(range.family, range.first);
  return range.first === range.last ? first : `${first}-${formatAddress(range.family, range.last)}`;
}

/** The address text of a single address (as parsed from an endpoint's IP list). */
export function addressText(range: AddressRange): string {
  return formatAddress(range.family, range.first);
}
