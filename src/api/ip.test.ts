import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bigIntToIp, canonicalIp, cidrAddress, cidrContains, cidrSize, ipToBigInt, parseCidr, reverseName } from './ip.js';

test('addresses round-trip through numbers in canonical form', () => {
  assert.equal(ipToBigInt('10.96.0.1'), 0x0a600001n);
  assert.equal(bigIntToIp(0x0a600001n, 'IPv4'), '10.96.0.1');
  assert.equal(canonicalIp('2001:DB8:0:0::1'), '2001:db8::1');
  assert.equal(canonicalIp('::ffff:1.2.3.4'), '::ffff:102:304');
  assert.equal(bigIntToIp(ipToBigInt('fd00:10:96::a') ?? 0n, 'IPv6'), 'fd00:10:96::a');
  assert.equal(canonicalIp('10.0.0.256'), undefined);
});

test('CIDRs parse, hold their addresses and refuse host bits', () => {
  const v4 = parseCidr('10.96.0.0/12');
  assert.ok(v4);
  assert.equal(cidrSize(v4), 1n << 20n);
  assert.ok(cidrContains(v4, '10.111.255.255'));
  assert.ok(!cidrContains(v4, '10.112.0.0'));
  assert.equal(cidrAddress(v4, 10n), '10.96.0.10');
  assert.equal(parseCidr('10.96.0.1/12'), undefined);
  assert.equal(parseCidr('10.96.0.0'), undefined);
  const v6 = parseCidr('fd00:10:96::/108');
  assert.ok(v6);
  assert.ok(cidrContains(v6, 'fd00:10:96::f:ffff'));
  assert.ok(!cidrContains(v6, '10.96.0.1'));
});

test('reverse names', () => {
  assert.equal(reverseName('10.96.0.80'), '80.0.96.10.in-addr.arpa');
  assert.equal(reverseName('2001:db8::1'), '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa');
});
