/**
 * An endpoint's addresses as single-address ranges (malformed entries in a
 * VMI's status are skipped: they cannot be matched anyway).
 */
import type { AddressRange } from '../../api/ip-ranges.js';
import { parseAddressOrCidr } from '../../api/ip-ranges.js';
import type { PolicyEndpoint } from './model.js';

export function endpointRanges(endpoint: PolicyEndpoint): AddressRange[] {
  return endpoint.ips.flatMap((ip) => {
    const range = ip.includes('/') ? undefined : parseAddressOrCidr(ip);
    return range === undefined ? [] : [range];
  });
}
