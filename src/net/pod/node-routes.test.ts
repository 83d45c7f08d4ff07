import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterPodRanges, desiredPodRoutes, parseRouteList } from './node-routes.js';
import type { RouteNode } from './node-routes.js';
import { networkNames } from './names.js';
import { nodeRuleset } from './node-network.js';
import { parseCidr } from './cidr.js';

const nodes: RouteNode[] = [
  { name: 'a', podCidrs: ['10.244.0.0/24', 'fd10:244::/64'], addresses: ['10.250.0.10'], linkLocal: 'fe80::a' },
  { name: 'b', podCidrs: ['10.244.1.0/24', 'fd10:244:0:1::/64'], addresses: ['10.250.0.11'], linkLocal: 'fe80::b' },
  { name: 'c', podCidrs: ['10.244.2.0/24', 'fd10:244:0:2::/64'], addresses: ['10.250.0.12', 'fd00::12'] },
];

test('one route per other node\'s range: IPv4 via its IPv4 address, IPv6 via its IPv6 address or else its link-local one on its IPv4 address\'s link', () => {
  const { routes, skipped } = desiredPodRoutes(nodes, 'a');
  assert.deepEqual(skipped, []);
  assert.deepEqual(routes, [
    { node: 'b', destination: '10.244.1.0/24', family: 4, via: '10.250.0.11' },
    { node: 'b', destination: 'fd10:244:0:1::/64', family: 6, via: 'fe80::b', linkOf: '10.250.0.11' },
    { node: 'c', destination: '10.244.2.0/24', family: 4, via: '10.250.0.12' },
    { node: 'c', destination: 'fd10:244:0:2::/64', family: 6, via: 'fd00::12' },
  ]);
});

test('Nodes that cannot be routed to are skipped with the reason: no address, no link-local, a bad or overlapping range', () => {
  const odd: RouteNode[] = [
    nodes[0] ?? { name: '', podCidrs: [], addresses: [] },
    { name: 'bare', podCidrs: ['10.244.3.0/24'], addresses: [] },
    { name: 'no-ll', podCidrs: ['fd10:244:0:4::/64'], addresses: ['10.250.0.14'] },
    { name: 'bad', podCidrs: ['10.244.5.0/33'], addresses: ['10.250.0.15'] },
    { name: 'clash', podCidrs: ['10.244.0.128/25'], addresses: ['10.250.0.16'] },
  ];
  const { routes, skipped } = desiredPodRoutes(odd, 'a');
  assert.deepEqual(routes, []);
  const reasons = new Map(skipped.map((s) => [s.node, s.reason]));
  assert.match(reasons.get('bare') ?? '', /no IPv4 InternalIP/);
  assert.match(reasons.get('no-ll') ?? '', /no IPv6 InternalIP and publishes no IPv6 link-local address/);
  assert.match(reasons.get('bad') ?? '', /not a CIDR/);
  assert.match(reasons.get('clash') ?? '', /overlaps 10\.244\.0\.0\/24/);
});

test('the cluster\'s pod ranges are every Node\'s, once each', () => {
  assert.deepEqual(clusterPodRanges([...nodes, { name: 'd', podCidrs: ['10.244.1.0/24', 'nonsense'], addresses: [] }]), ['10.244.0.0/24', '10.244.1.0/24', '10.244.2.0/24', 'fd10:244:0:1::/64', 'fd10:244:0:2::/64', 'fd10:244::/64']);
});

test('ip -j route show output: gateway and device; a host route gets its prefix', () => {
  const text = JSON.stringify([{ dst: '10.244.1.0/24', gateway: '10.250.0.11', dev: 'eth0', flags: [] }, { dst: '10.9.9.9', gateway: '10.250.0.11', dev: 'eth0' }, { type: 'unreachable' }]);
  assert.deepEqual(parseRouteList(text, 4), [
    { destination: '10.244.1.0/24', family: 4, via: '10.250.0.11', dev: 'eth0' },
    { destination: '10.9.9.9/32', family: 4, via: '10.250.0.11', dev: 'eth0' },
  ]);
  assert.deepEqual(parseRouteList('', 6), []);
});

test('the node table exempts the cluster\'s pod ranges from masquerade before it masquerades the node\'s subnets', () => {
  const text = nodeRuleset(networkNames('/tmp/x'), [parseCidr('10.244.0.0/24')], [parseCidr('10.244.1.0/24'), parseCidr('fd10:244:0:1::/64')]);
  assert.match(text, /set pod_ranges4 \{\n\s+type ipv4_addr; flags interval; auto-merge;\n\s+elements = \{ 10\.244\.0\.0\/24, 10\.244\.1\.0\/24 \}/);
  assert.match(text, /set pod_ranges6 \{\n\s+type ipv6_addr; flags interval; auto-merge;\n\s+elements = \{ fd10:244:0:1::\/64 \}/);
  const exempt = text.indexOf('ip daddr @pod_ranges4 return');
  const masquerade = text.indexOf('ip saddr 10.244.0.0/24');
  assert.ok(exempt > 0 && masquerade > exempt, text);
});
