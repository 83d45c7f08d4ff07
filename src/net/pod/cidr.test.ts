import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressAt, formatCidr, parseAddress, parseCidr, subnetAt, subnetCount, subnetIndex } from './cidr.js';

test('IPv4 and IPv6 CIDRs parse and print canonically', () => {
  assert.equal(formatCidr(parseCidr('10.244.0.0/16')), '10.244.0.0/16');
  assert.equal(formatCidr(parseCidr('fd10:244::/56')), 'fd10:244::/56');
  assert.equal(formatCidr(parseCidr('fd10:0244:0000:0000::/64')), 'fd10:244::/64');
  assert.equal(formatCidr(parseCidr('::/0')), '::/0');
  assert.equal(parseAddress('fd10:0:2::2')?.value, 0xfd10_0000_0002_0000_0000_0000_0000_0002n);
  assert.equal(parseAddress('1::2::3'), undefined);
  assert.equal(parseAddress('256.1.1.1'), undefined);
});

test('bad CIDRs are refused with what is wrong', () => {
  assert.throws(() => parseCidr('10.244.0.0'), /write it as address\/prefix/);
  assert.throws(() => parseCidr('10.244.0.1/16'), /host bits set: its network is 10\.244\.0\.0\/16/);
  assert.throws(() => parseCidr('10.244.0.0/33'), /prefix length must be 0-32/);
  assert.throws(() => parseCidr('banana/8'), /not an IPv4 or IPv6 address/);
});

test('subnets of a range: the n-th, its index, how many', () => {
  const v4 = parseCidr('10.244.0.0/16');
  assert.equal(subnetCount(v4, 24), 256n);
  assert.equal(formatCidr(subnetAt(v4, 24, 3n)), '10.244.3.0/24');
  assert.equal(subnetIndex(v4, 24, parseCidr('10.244.7.0/24')), 7n);
  assert.equal(subnetIndex(v4, 24, parseCidr('10.245.7.0/24')), undefined);
  const v6 = parseCidr('fd10:244::/56');
  assert.equal(formatCidr(subnetAt(v6, 64, 1n)), 'fd10:244:0:1::/64');
  assert.equal(addressAt(parseCidr('10.244.3.0/24'), 1n), '10.244.3.1');
  assert.equal(addressAt(parseCidr('fd10:244:0:1::/64'), 1n), 'fd10:244:0:1::1');
});
