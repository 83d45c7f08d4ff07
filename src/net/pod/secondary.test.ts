import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CniResult } from '../cni/index.js';
import { secondaryBatch, secondaryDhcpArgs, secondaryLinkOf } from './secondary.js';

const nic = { name: 'lan', networkName: 'lan', interfaceName: 'net1', mac: '02:00:00:00:00:01' };

function result(fields: Partial<CniResult>): CniResult {
  return { cniVersion: '1.0.0', interfaces: [], ips: [], routes: [], dns: {}, raw: {}, ...fields };
}

test('the sandbox interface’s addresses (IPv4 first), MAC and default gateway are read from the result; the host side is not the sandbox’s', () => {
  const link = secondaryLinkOf(nic, 'vms/lan', result({
    interfaces: [{ name: 'br0', mac: '0a:00:00:00:00:aa' }, { name: 'net1', mac: '0a:00:00:00:00:01', sandbox: '/run/netns/x' }],
    ips: [{ address: 'fd00::5/64', interface: 1 }, { address: '10.9.0.5/24', interface: 1, gateway: '10.9.0.1' }, { address: '10.8.0.1/24', interface: 0 }],
    routes: [{ dst: '0.0.0.0/0' }],
  }));
  assert.deepEqual(link, {
    name: 'lan', network: 'vms/lan', interfaceName: 'net1', bridge: 'k6t-net1', tap: 'tap1', mac: '02:00:00:00:00:01',
    interfaceMac: '0a:00:00:00:00:01', addresses: ['10.9.0.5/24', 'fd00::5/64'], router: '10.9.0.1', dns: {},
  });
});

test('no default route in the result: no router; DHCP options for that NIC say so, tagged apart from the pod network', () => {
  const link = secondaryLinkOf(nic, 'vms/lan', result({ interfaces: [{ name: 'net1', sandbox: '/run/netns/x' }], ips: [{ address: '10.9.0.5/23', interface: 0, gateway: '10.9.0.1' }] }));
  assert.equal(link.router, undefined);
  assert.deepEqual(secondaryDhcpArgs([link], 'vm'), [
    '--interface=k6t-net1',
    '--dhcp-range=set:net1,10.9.0.0,static,255.255.254.0',
    '--shared-network=k6t-net1,10.9.0.0',
    '--dhcp-host=02:00:00:00:00:01,10.9.0.5,vm,infinite',
    '--dhcp-option=tag:net1,option:router',
  ]);
  assert.deepEqual(secondaryBatch(link, 0, '02:ff:00:00:00:01'), [
    'addr flush dev net1', 'link add k6t-net1 type bridge', 'link set net1 master k6t-net1', 'link set net1 up',
    'tuntap add dev tap1 mode tap', 'link set tap1 master k6t-net1', 'link set tap1 up', 'addr add 169.254.75.11/32 dev k6t-net1', 'link set k6t-net1 up',
  ]);
});

test('no IPAM address: no DHCP and no DHCP address; a sandbox interface with the guest’s MAC gets the spare one', () => {
  const link = secondaryLinkOf(nic, 'vms/lan', result({ interfaces: [{ name: 'net1', mac: '02:00:00:00:00:01', sandbox: '/run/netns/x' }] }));
  assert.deepEqual(secondaryDhcpArgs([link], 'vm'), []);
  const batch = secondaryBatch(link, 1, '02:ff:00:00:00:01');
  assert.ok(batch.includes('link set net1 address 02:ff:00:00:00:01'));
  assert.ok(!batch.some((line) => line.startsWith('addr add')));
});
