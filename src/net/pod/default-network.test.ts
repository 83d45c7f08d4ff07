import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SandboxSpec } from './sandbox.js';
import type { SecondaryLink } from './secondary.js';
import { defaultNetworkDhcpArgs, defaultNetworkState, isDefaultNetworkSandbox } from './default-network.js';

const spec: SandboxSpec = { binding: 'bridge', mac: '02:00:00:00:00:01', hostname: 'vm', dnsServers: [], ports: [], domain: 'web.vms.svc.cluster.local' };
const primary: SecondaryLink = { name: 'main', network: 'vms/main', interfaceName: 'eth0', bridge: 'k6t-eth0', tap: 'tapeth0', mac: '02:00:00:00:00:01', addresses: ['10.9.0.5/24', 'fd00::5/64'], router: '10.9.0.1', dns: {} };
const unaddressed: SecondaryLink = { name: 'l2', network: 'vms/l2', interfaceName: 'net1', bridge: 'k6t-net1', tap: 'tap1', mac: '02:00:00:00:00:02', addresses: [], dns: {} };

test('the default network’s sandbox record: no host veth, no pod addresses, the guest’s IPv4 address and tap from eth0', () => {
  const state = defaultNetworkState('ns', spec, [primary, unaddressed]);
  assert.deepEqual(state, { netns: 'ns', hostVeth: '', tap: 'tapeth0', binding: 'bridge', mac: '02:00:00:00:00:01', podIps: [], guestIps: ['10.9.0.5'], secondaries: [primary, unaddressed] });
  assert.equal(isDefaultNetworkSandbox(state), true);
  assert.throws(() => defaultNetworkState('ns', spec, [unaddressed]), /made no eth0/);
});

test('DHCP for the default network: a static lease with its router and the VMI’s domain; none at all without an IPv4 address', () => {
  const args = defaultNetworkDhcpArgs(spec, [primary, unaddressed], '/run/pid');
  assert.ok(args.includes('--pid-file=/run/pid'));
  assert.ok(args.includes('--port=0'));
  assert.ok(args.includes('--dhcp-host=02:00:00:00:00:01,10.9.0.5,vm,infinite'));
  assert.ok(args.includes('--dhcp-option=tag:eth0,option:router,10.9.0.1'));
  assert.ok(args.includes('--dhcp-option=tag:eth0,option:domain-name,web.vms.svc.cluster.local'));
  assert.equal(args.some((a) => a.includes('k6t-net1')), false);
  assert.deepEqual(defaultNetworkDhcpArgs(spec, [unaddressed], '/run/pid'), []);
});
