/**
 * Sandboxes on the real kernel (namespaces, veths, bridges, taps, nftables,
 * dnsmasq), without guests: what one is made of, that sandboxes reach the
 * node, and that create/delete cycles and a lost agent leave nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { PodNetwork, addressAt, parseCidr } from '../../src/net/pod/index.js';
import type { SandboxSpec } from '../../src/net/pod/index.js';
import { hostNetworkState, inNetns, inNetnsAsync, testClusterCidr, testClusterCidr6 } from './support.js';

const dataDir = mkdtempSync(join(tmpdir(), 'vireo-podnet-'));
const v4 = testClusterCidr();
const v6 = testClusterCidr6();
let network: PodNetwork;
let markers: string[];
const signal = new AbortController().signal;

const spec = (binding: 'masquerade' | 'bridge', mac: string): SandboxSpec => ({ binding, mac, hostname: 'guest', dnsServers: [], ports: [] });

before(() => {
  network = new PodNetwork({ dataDir, podCidrs: () => Promise.resolve([v4, v6]), logger: silentLogger });
  // The sandboxes' veths show as "master <bridge>" in ip link: matched by the bridge's name, unlike other tests' links.
  markers = [network.names.bridge, network.names.table, network.names.netnsPrefix];
});
after(async () => {
  await network.sweep(new Set(), signal);
  await network.removeNode(signal);
  rmSync(dataDir, { recursive: true, force: true });
  const left = hostNetworkState([network.names.bridge, network.names.table, network.names.netnsPrefix]);
  assert.deepEqual(left, { netns: [], links: [], tables: [] }, 'the test left host network state behind');
});

test('a masquerade sandbox: eth0 with the first free pod addresses, default routes via the node bridge, the tap on k6t-eth0 (10.0.2.1 and fd10:0:2::1), NAT and NAT66 rules, dnsmasq', async () => {
  const state = await network.setUp('uid-a', spec('masquerade', '02:00:00:00:00:0a'), signal);
  const subnet = parseCidr(v4);
  assert.deepEqual(state.podIps, [addressAt(subnet, 2n), addressAt(parseCidr(v6), 2n)]);
  assert.deepEqual(state.guestIps, ['10.0.2.2', 'fd10:0:2::2']);
  const addresses = inNetns(state.netns, ['ip', '-o', 'addr', 'show']);
  assert.match(addresses, new RegExp(`eth0\\s+inet ${state.podIps[0]?.replaceAll('.', '\\.')}/24`));
  assert.match(addresses, /k6t-eth0\s+inet 10\.0\.2\.1\/24/);
  assert.match(addresses, /k6t-eth0\s+inet6 fd10:0:2::1\/120/);
  assert.match(inNetns(state.netns, ['ip', 'route']), new RegExp(`default via ${addressAt(subnet, 1n).replaceAll('.', '\\.')} dev eth0`));
  assert.match(inNetns(state.netns, ['ip', '-o', 'link', 'show', 'tap0']), /master k6t-eth0/);
  const rules = inNetns(state.netns, ['nft', 'list', 'ruleset']);
  assert.match(rules, /dnat ip to 10\.0\.2\.2/);
  assert.match(rules, /dnat ip6 to fd10:0:2::2/);
  assert.match(rules, /ip saddr 10\.0\.2\.2 masquerade/);
  assert.match(rules, /ip6 saddr fd10:0:2::2 masquerade/);
  assert.match(inNetns(state.netns, ['cat', '/proc/sys/net/ipv4/ip_forward']), /1/);
  assert.match(inNetns(state.netns, ['cat', '/proc/sys/net/ipv6/conf/all/forwarding']), /1/);
  assert.match(readdirSync(join(dataDir, 'network', 'sandboxes', 'uid-a')).join(' '), /dnsmasq\.pid/);
  // The node bridge holds the gateway, and the host end of the veth is on it.
  const bridge = hostNetworkState([network.names.bridge]).links;
  assert.ok(bridge.includes(network.names.bridge));
});

for (const family of [4, 6] as const) test(`a sandbox reaches the node through its IPv${family} gateway (TCP from inside the namespace)`, async () => {
  const gateway = addressAt(parseCidr(family === 4 ? v4 : v6), 1n);
  const server: Server = createServer((socket) => { socket.end('hello from the node\n'); });
  await new Promise<void>((resolve) => server.listen(0, gateway, resolve));
  try {
    const port = (server.address() as { port: number }).port;
    const state = await network.state('uid-a');
    assert.ok(state !== undefined);
    const script = `require('net').connect(${port}, '${gateway}').on('data', (d) => { process.stdout.write(d); process.exit(0); })`;
    assert.equal(await inNetnsAsync(state.netns, [process.execPath, '-e', script]), 'hello from the node\n');
  } finally {
    server.close();
  }
});

test('a bridge sandbox: eth0 and the tap on k6t-eth0, no address on eth0, dnsmasq on the link-local address', async () => {
  const state = await network.setUp('uid-b', spec('bridge', '02:00:00:00:00:0b'), signal);
  // uid-a holds .2: the next lease is .3.
  assert.deepEqual(state.guestIps, [addressAt(parseCidr(v4), 3n)]);
  assert.match(inNetns(state.netns, ['ip', '-o', 'link', 'show', 'eth0']), /master k6t-eth0/);
  assert.doesNotMatch(inNetns(state.netns, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0']), /inet/);
  assert.match(inNetns(state.netns, ['ip', '-o', 'addr', 'show', 'dev', 'k6t-eth0']), /169\.254\.75\.10\/32/);
  await network.tearDown('uid-b', signal);
  await network.tearDown('uid-a', signal);
});

test('50 create/delete cycles leave namespaces, links, nftables and leases as they were, and reuse the same address', async () => {
  const before = hostNetworkState(markers);
  const started = Date.now();
  const addresses = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const state = await network.setUp(`cycle-${i}`, spec(i % 2 === 0 ? 'masquerade' : 'bridge', '02:00:00:00:01:01'), signal);
    addresses.add(state.podIps[0] ?? '');
    await network.tearDown(`cycle-${i}`, signal);
  }
  const perCycle = (Date.now() - started) / 50;
  assert.deepEqual(hostNetworkState(markers), before);
  assert.deepEqual(readdirSync(join(dataDir, 'network', 'sandboxes')), []);
  assert.equal(addresses.size, 1, 'a released address is handed out again');
  console.log(`sandbox create+delete: ${perCycle.toFixed(0)} ms per cycle`);
});

test('sweep removes the sandboxes no VMI accounts for (an agent that died mid-way)', async () => {
  await network.setUp('orphan', spec('masquerade', '02:00:00:00:02:02'), signal);
  await network.setUp('kept', spec('masquerade', '02:00:00:00:02:03'), signal);
  const fresh = new PodNetwork({ dataDir, podCidrs: () => Promise.resolve([v4, v6]), logger: silentLogger });
  assert.deepEqual(await fresh.sweep(new Set(['kept']), signal), ['orphan']);
  const left = hostNetworkState([network.names.netnsPrefix]).netns;
  assert.deepEqual(left, [`${network.names.netnsPrefix}kept`]);
  // A new start of the kept one keeps its address.
  const again = await fresh.setUp('kept', spec('masquerade', '02:00:00:00:02:03'), signal);
  assert.equal(again.podIps[0], addressAt(parseCidr(v4), 3n));
  await fresh.tearDown('kept', signal);
});
