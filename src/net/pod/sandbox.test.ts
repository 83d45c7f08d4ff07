import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr } from './cidr.js';
import type { Lease } from './ipam.js';
import type { SandboxSpec } from './sandbox.js';
import { dnsmasqArgs, sandboxBatch, sandboxRuleset } from './sandbox.js';

const dualStack: Lease = { uid: 'u', addresses: ['10.244.1.5/24', 'fd10:244:0:1::5/64'] };
const ipv4Only: Lease = { uid: 'u', addresses: ['10.244.1.5/24'] };
const subnets = [parseCidr('10.244.1.0/24'), parseCidr('fd10:244:0:1::/64')];

function spec(binding: 'masquerade' | 'bridge', ports: SandboxSpec['ports'] = []): SandboxSpec {
  return { binding, mac: '02:00:00:00:00:0a', hostname: 'vm', dnsServers: [], ports };
}

/** The rule lines of a ruleset, without the table and chain scaffolding. */
function rules(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => /(dnat|masquerade)/.test(l));
}

test('masquerade with an IPv6 pod address: every TCP/UDP port DNATed to 10.0.2.2 and fd10:0:2::2, both SNATed out of eth0', () => {
  assert.deepEqual(rules(sandboxRuleset(spec('masquerade'), dualStack)), [
    'iifname "eth0" meta pkttype host meta l4proto { tcp, udp } dnat ip to 10.0.2.2',
    'iifname "eth0" meta pkttype host meta l4proto { tcp, udp } dnat ip6 to fd10:0:2::2',
    'oifname "eth0" ip saddr 10.0.2.2 masquerade',
    'oifname "eth0" ip6 saddr fd10:0:2::2 masquerade',
  ]);
});

test('masquerade with listed ports: only those are DNATed, for each family the same', () => {
  const ports = [{ protocol: 'tcp', port: 80 }, { protocol: 'udp', port: 53 }, { protocol: 'tcp', port: 22 }] as const;
  assert.deepEqual(rules(sandboxRuleset(spec('masquerade', ports), dualStack)), [
    'iifname "eth0" meta pkttype host tcp dport { 80, 22 } dnat ip to 10.0.2.2',
    'iifname "eth0" meta pkttype host udp dport { 53 } dnat ip to 10.0.2.2',
    'iifname "eth0" meta pkttype host tcp dport { 80, 22 } dnat ip6 to fd10:0:2::2',
    'iifname "eth0" meta pkttype host udp dport { 53 } dnat ip6 to fd10:0:2::2',
    'oifname "eth0" ip saddr 10.0.2.2 masquerade',
    'oifname "eth0" ip6 saddr fd10:0:2::2 masquerade',
  ]);
});

test('masquerade on an IPv4-only node: no IPv6 rule, no IPv6 gateway, no DHCPv6 or router advertisements', () => {
  assert.equal(rules(sandboxRuleset(spec('masquerade'), ipv4Only)).some((l) => l.includes('ip6')), false);
  assert.equal(sandboxBatch(spec('masquerade'), ipv4Only, subnets.slice(0, 1)).some((l) => l.includes('fd10:0:2::')), false);
  const args = dnsmasqArgs(spec('masquerade'), ipv4Only, subnets.slice(0, 1), '/run/x.pid');
  assert.equal(args.includes('--enable-ra'), false);
  assert.equal(args.some((a) => a.includes('fd10:0:2::')), false);
});

test('masquerade with an IPv6 pod address: k6t-eth0 holds fd10:0:2::1/120 (no DAD wait), eth0 the pod addresses and both default routes', () => {
  const lines = sandboxBatch(spec('masquerade'), dualStack, subnets);
  assert.ok(lines.includes('addr add fd10:0:2::1/120 dev k6t-eth0 nodad'));
  assert.ok(lines.includes('addr add 10.0.2.1/24 dev k6t-eth0'));
  assert.ok(lines.includes('addr add fd10:244:0:1::5/64 dev eth0 nodad'));
  assert.ok(lines.includes('route add ::/0 via fd10:244:0:1::1 dev eth0'));
});

test('masquerade with an IPv6 pod address: dnsmasq serves fd10:0:2::2 by DHCPv6 to the guest’s MAC alone and sends router advertisements', () => {
  const args = dnsmasqArgs(spec('masquerade'), dualStack, subnets, '/run/x.pid');
  assert.ok(args.includes('--enable-ra'));
  assert.ok(args.includes('--dhcp-range=set:pod,fd10:0:2::2,static,120,infinite'));
  assert.ok(args.includes('--dhcp-host=02:00:00:00:00:0a,[fd10:0:2::2],vm,infinite'));
  // The IPv4 lease is unchanged.
  assert.ok(args.includes('--dhcp-host=02:00:00:00:00:0a,10.0.2.2,vm,infinite'));
});

test('bridge: IPv4 only, as KubeVirt’s bridge binding (no DHCPv6, no router advertisements, no IPv6 address on k6t-eth0)', () => {
  const args = dnsmasqArgs(spec('bridge'), dualStack, subnets, '/run/x.pid');
  assert.equal(args.includes('--enable-ra'), false);
  assert.equal(args.some((a) => a.startsWith('--dhcp-range') && a.includes('::')), false);
  assert.ok(args.includes('--dhcp-host=02:00:00:00:00:0a,10.244.1.5,vm,infinite'));
  assert.equal(sandboxBatch(spec('bridge'), dualStack, subnets).some((l) => l.includes('fd10:0:2::')), false);
});

test('a migration target\'s sandbox: another node\'s addresses as host addresses with onlink default routes, the gateway MAC set on k6t-eth0', () => {
  const kept: Lease = { uid: 'u', addresses: ['10.244.0.5/32', 'fd10:244::5/128'] };
  const lines = sandboxBatch({ ...spec('masquerade'), gatewayMac: '02:aa:bb:cc:dd:ee' }, kept, subnets);
  assert.ok(lines.includes('link add k6t-eth0 address 02:aa:bb:cc:dd:ee type bridge'), lines.join('\n'));
  assert.ok(lines.includes('addr add 10.244.0.5/32 dev eth0'));
  assert.ok(lines.includes('addr add fd10:244::5/128 dev eth0 nodad'));
  assert.ok(lines.includes('route add default via 10.244.1.1 dev eth0 onlink'));
  assert.ok(lines.includes('route add ::/0 via fd10:244:0:1::1 dev eth0 onlink'));
  const own = sandboxBatch(spec('masquerade'), dualStack, subnets);
  assert.ok(own.includes('route add default via 10.244.1.1 dev eth0'), 'an address of the node\'s own range needs no onlink');
});
