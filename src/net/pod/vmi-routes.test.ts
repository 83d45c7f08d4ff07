import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteNode } from './node-routes.js';
import { movedVmiRoutes } from './vmi-routes.js';

const nodes: RouteNode[] = [
  { name: 'a', podCidrs: ['10.244.0.0/24', 'fd10:244::/64'], addresses: ['10.250.0.10'], linkLocal: 'fe80::a' },
  { name: 'b', podCidrs: ['10.244.1.0/24', 'fd10:244:0:1::/64'], addresses: ['10.250.0.11'], linkLocal: 'fe80::b' },
  { name: 'c', podCidrs: ['10.244.2.0/24'], addresses: [] },
];

const local = { bridge: 'vpod1', ips: [] };

test('a VMI running outside its range gets host routes via its node on every other node, the range\'s owner included', () => {
  const moved = [{ key: 'default/web', node: 'b', ips: ['10.244.0.5', 'fd10:244::5'] }];
  for (const self of ['a', 'c']) {
    assert.deepEqual(movedVmiRoutes(moved, nodes, self, local), {
      routes: [
        { node: 'b', destination: '10.244.0.5/32', family: 4, via: '10.250.0.11' },
        { node: 'b', destination: 'fd10:244::5/128', family: 6, via: 'fe80::b', linkOf: '10.250.0.11' },
      ],
      skipped: [],
    });
  }
});

test('a VMI inside its node\'s range, on this node or on an unknown node gets no host route', () => {
  const vmis = [
    { key: 'default/home', node: 'a', ips: ['10.244.0.7', 'fd10:244::7'] },
    { key: 'default/here', node: 'b', ips: ['10.244.0.5'] },
    { key: 'default/lost', node: 'gone', ips: ['10.244.0.9'] },
  ];
  assert.deepEqual(movedVmiRoutes(vmis, nodes, 'b', local), { routes: [], skipped: [] });
});

test('addresses of guests that arrived here go onto the bridge; a later route of the same address (the guest moved on) comes after them', () => {
  const { routes } = movedVmiRoutes([{ key: 'default/web', node: 'a', ips: ['10.244.2.5'] }], nodes, 'b', { bridge: 'vpod1', ips: ['10.244.2.5', 'fd10:244:0:2::5'] });
  assert.deepEqual(routes, [
    { node: 'b', destination: '10.244.2.5/32', family: 4, dev: 'vpod1' },
    { node: 'b', destination: 'fd10:244:0:2::5/128', family: 6, dev: 'vpod1' },
    { node: 'a', destination: '10.244.2.5/32', family: 4, via: '10.250.0.10' },
  ]);
});

test('a node without an address for the family is skipped, naming the VMI', () => {
  const { routes, skipped } = movedVmiRoutes([{ key: 'default/web', node: 'c', ips: ['10.244.0.5'] }], nodes, 'a', local);
  assert.deepEqual(routes, []);
  assert.equal(skipped.length, 1);
  assert.match(skipped[0]?.reason ?? '', /VMI default\/web keeps 10\.244\.0\.5 on node c, but the Node has no IPv4 InternalIP/);
});
