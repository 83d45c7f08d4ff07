/**
 * The CNI runtime against Debian's real plugins (bridge, host-local,
 * macvlan, static, tuning) and real kernel networking: ADD, CHECK and DEL
 * into namespaces the test makes, with plugins run inside a "host"
 * namespace of the test's own, so the real host is never touched.
 */
import { strict as assert } from 'node:assert';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CniError, CniRuntime, parseNetworkConfig } from '../../src/net/cni/index.js';
import type { CniAttachment } from '../../src/net/cni/index.js';
import { Namespaces, addressesOf, inNetns, ip, linksOf, macOf, uniqueSuffix } from './netns.js';

const signal = new AbortController().signal;

function attachment(sandbox: string, ifName: string, containerId: string, extra: Partial<CniAttachment> = {}): CniAttachment {
  return {
    containerId,
    netns: `/run/netns/${sandbox}`,
    ifName,
    args: [['IgnoreUnknown', 'true'], ['K8S_POD_NAMESPACE', 'default'], ['K8S_POD_NAME', containerId]],
    label: 'default/test',
    ...extra,
  };
}

/** The files host-local keeps for a network: one per leased address, plus its lock and last-reserved markers. */
async function leases(dataDir: string, network: string): Promise<string[]> {
  try {
    return (await readdir(join(dataDir, network))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
  } catch {
    return [];
  }
}

describe('CNI runtime on the real plugins', () => {
  const namespaces = new Namespaces();
  let dir: string;
  let host: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vireo-cni-test-'));
    host = await namespaces.create('host');
  });

  after(async () => {
    await namespaces.removeAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('bridge + host-local: two sandboxes ping each other; CHECK holds, then fails once the interface is gone; DEL releases the lease, also from a restarted runtime', async () => {
    const bridge = `vct${uniqueSuffix()}`;
    const dataDir = join(dir, 'leases-bridge');
    const cacheDir = join(dir, 'cache-bridge');
    const list = parseNetworkConfig(
      JSON.stringify({ cniVersion: '1.0.0', name: 'br-net', type: 'bridge', bridge, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.250.1.0/24' }]] } }),
      { source: 'test' },
    );
    const [a, b] = [await namespaces.create('a'), await namespaces.create('b')];
    const runtime = new CniRuntime({ cacheDir, pluginNetns: host });
    // The bridge made beforehand with a set MAC, as a node's bridge would be: the kernel otherwise gives a bridge
    // the lowest MAC of its ports, which changes as sandboxes join, and the bridge plugin's CHECK compares it.
    await ip('-n', host, 'link', 'add', bridge, 'type', 'bridge');
    await ip('-n', host, 'link', 'set', bridge, 'address', '02:00:5e:00:00:fe');

    const resultA = await runtime.add(list, attachment(a, 'net1', 'sandbox-a'), signal);
    const resultB = await runtime.add(list, attachment(b, 'net1', 'sandbox-b'), signal);
    const addressA = resultA.ips[0]?.address ?? '';
    const addressB = resultB.ips[0]?.address ?? '';
    assert.match(addressA, /^10\.250\.1\.\d+\/24$/);
    assert.deepEqual(await addressesOf(a, 'net1'), [addressA]);
    assert.deepEqual(await addressesOf(b, 'net1'), [addressB]);
    assert.equal(resultA.interfaces.find((i) => i.name === 'net1')?.sandbox, `/run/netns/${a}`);
    assert.ok((await linksOf(host)).includes(bridge), 'the bridge is made in the plugins’ namespace');
    assert.ok(!(await ip('-j', 'link', 'show')).includes(bridge), 'the real host has no such bridge');
    await inNetns(a, 'ping', '-c1', '-W2', addressB.split('/')[0] ?? '');
    assert.equal((await leases(dataDir, 'br-net')).length, 2);

    await runtime.check(list, attachment(a, 'net1', 'sandbox-a'), signal);
    await runtime.check(list, attachment(b, 'net1', 'sandbox-b'), signal);
    await ip('-n', a, 'link', 'del', 'net1');
    await assert.rejects(runtime.check(list, attachment(a, 'net1', 'sandbox-a'), signal), (err: unknown) => {
      assert.ok(err instanceof CniError);
      assert.equal(err.failure, 'PluginFailed');
      assert.match(err.message, /^network default\/test: plugin bridge failed: .*net1/);
      return true;
    });

    assert.equal(await runtime.del(list, attachment(b, 'net1', 'sandbox-b'), signal), true);
    assert.deepEqual(await addressesOf(b, 'net1'), []);
    assert.ok(!(await linksOf(b)).includes('net1'));

    // An agent restart: a new runtime on the same cache deletes what the old one added (the interface is already gone by hand).
    const restarted = new CniRuntime({ cacheDir, pluginNetns: host });
    assert.ok((await restarted.cached('sandbox-a', 'net1')) !== undefined);
    assert.equal(await restarted.del(undefined, attachment(a, 'net1', 'sandbox-a'), signal), true);
    assert.deepEqual(await leases(dataDir, 'br-net'), []);
    // DEL is idempotent: no cache left, the config still runs DEL; with neither, nothing runs.
    assert.equal(await restarted.del(list, attachment(a, 'net1', 'sandbox-a'), signal), true);
    assert.equal(await restarted.del(undefined, attachment(a, 'net1', 'sandbox-a'), signal), false);
    assert.deepEqual(await readdir(cacheDir), []);
  });

  it('dual stack: host-local with an IPv4 and an IPv6 range gives the interface one address of each', async () => {
    const dataDir = join(dir, 'leases-dual');
    const list = parseNetworkConfig(
      JSON.stringify({ cniVersion: '1.0.0', name: 'dual', type: 'bridge', bridge: `vct${uniqueSuffix()}`, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.250.3.0/24' }], [{ subnet: 'fd00:250:3::/64' }]] } }),
      { source: 'test' },
    );
    const sandbox = await namespaces.create('dual');
    const runtime = new CniRuntime({ cacheDir: join(dir, 'cache-dual'), pluginNetns: host });
    const result = await runtime.add(list, attachment(sandbox, 'net1', 'sandbox-dual'), signal);
    const [v4, v6] = result.ips.map((i) => i.address);
    assert.match(v4 ?? '', /^10\.250\.3\.\d+\/24$/);
    assert.match(v6 ?? '', /^fd00:250:3::[0-9a-f]+\/64$/);
    assert.ok((await ip('-n', sandbox, 'addr', 'show', 'dev', 'net1')).includes(v6 ?? '-'), 'the IPv6 address is on the interface');
    await runtime.del(list, attachment(sandbox, 'net1', 'sandbox-dual'), signal);
    assert.deepEqual(await readdir(join(dataDir, 'dual')).then((files) => files.filter((f) => f.includes('.') || f.includes(':')).filter((f) => !f.startsWith('last_reserved'))), []);
  });

  it('macvlan with static IPAM on a veth master', async () => {
    // A veth end as the master: this kernel has no dummy module, and macvlan needs only an Ethernet parent.
    const master = `vcm${uniqueSuffix()}`;
    await ip('-n', host, 'link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`);
    await ip('-n', host, 'link', 'set', master, 'up');
    const sandbox = await namespaces.create('mv');
    const list = parseNetworkConfig(
      JSON.stringify({ cniVersion: '0.4.0', name: 'mv-net', type: 'macvlan', master, mode: 'bridge', ipam: { type: 'static', addresses: [{ address: '192.168.77.10/24', gateway: '192.168.77.1' }], routes: [{ dst: '192.168.78.0/24', gw: '192.168.77.1' }] } }),
      { source: 'test' },
    );
    const runtime = new CniRuntime({ cacheDir: join(dir, 'cache-mv'), pluginNetns: host });
    const result = await runtime.add(list, attachment(sandbox, 'net2', 'sandbox-mv'), signal);
    assert.deepEqual(result.ips.map((i) => i.address), ['192.168.77.10/24']);
    assert.deepEqual(await addressesOf(sandbox, 'net2'), ['192.168.77.10/24']);
    assert.match(await ip('-n', sandbox, 'route', 'show', 'dev', 'net2'), /192\.168\.78\.0\/24 via 192\.168\.77\.1/);
    await runtime.check(list, attachment(sandbox, 'net2', 'sandbox-mv'), signal);
    await runtime.del(list, attachment(sandbox, 'net2', 'sandbox-mv'), signal);
    assert.ok(!(await linksOf(sandbox)).includes('net2'));
  });

  it('a conflist chains bridge into tuning: tuning gets prevResult and sets the MAC it is given through runtimeConfig', async () => {
    const bridge = `vct${uniqueSuffix()}`;
    const dataDir = join(dir, 'leases-chain');
    const list = parseNetworkConfig(
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'chained',
        plugins: [
          { type: 'bridge', bridge, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.250.2.0/24' }]] } },
          // tuning keeps the interface's original MAC to restore on DEL: in the test's directory, not /run/cni.
          { type: 'tuning', capabilities: { mac: true }, sysctl: { 'net.ipv4.conf.net1.arp_filter': '1' }, dataDir: join(dir, 'tuning') },
        ],
      }),
      { source: 'test' },
    );
    const sandbox = await namespaces.create('chain');
    const runtime = new CniRuntime({ cacheDir: join(dir, 'cache-chain'), pluginNetns: host });
    const mac = '02:00:5e:10:00:01';
    const result = await runtime.add(list, attachment(sandbox, 'net1', 'sandbox-chain', { runtime: { mac } }), signal);
    assert.equal(await macOf(sandbox, 'net1'), mac);
    assert.equal(result.interfaces.find((i) => i.name === 'net1')?.mac, mac, 'the final result is tuning’s, which carries the new MAC');
    assert.equal((await inNetns(sandbox, 'cat', '/proc/sys/net/ipv4/conf/net1/arp_filter')).trim(), '1');
    await runtime.check(list, attachment(sandbox, 'net1', 'sandbox-chain'), signal);
    await runtime.del(list, attachment(sandbox, 'net1', 'sandbox-chain'), signal);
    assert.ok(!(await linksOf(sandbox)).includes('net1'));
    assert.deepEqual(await leases(dataDir, 'chained'), []);
  });

  it('a plugin that refuses its config fails with its own message; a missing plugin says where it looked; VERSION answers', async () => {
    const sandbox = await namespaces.create('fail');
    const runtime = new CniRuntime({ cacheDir: join(dir, 'cache-fail'), pluginNetns: host });
    const bad = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'bad', type: 'bridge', bridge: `vct${uniqueSuffix()}`, vlan: -5, ipam: {} }), { source: 'test' });
    await assert.rejects(runtime.add(bad, attachment(sandbox, 'net1', 'sandbox-fail'), signal), (err: unknown) => {
      assert.ok(err instanceof CniError);
      assert.equal(err.failure, 'PluginFailed');
      assert.equal(err.message, 'network default/test: plugin bridge failed: invalid VLAN ID -5 (must be between 0 and 4094)');
      assert.equal(err.report?.msg, 'invalid VLAN ID -5 (must be between 0 and 4094)');
      return true;
    });
    const missing = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'missing', type: 'no-such-plugin' }), { source: 'test' });
    await assert.rejects(runtime.add(missing, attachment(sandbox, 'net1', 'sandbox-fail'), signal), /CNI plugin "no-such-plugin" not found in the CNI path \/usr\/lib\/cni:\/opt\/cni\/bin/);
    assert.deepEqual(await linksOf(sandbox), ['lo']);
    assert.ok((await runtime.versions('bridge', signal)).includes('1.0.0'));
    const fineBridge = `vct${uniqueSuffix()}`;
    const fine = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'fine', type: 'bridge', bridge: fineBridge, ipam: {} }), { source: 'test' });
    await assert.rejects(runtime.add(fine, attachment(sandbox, 'a-very-long-interface-name', 'sandbox-fail'), signal), /interface name "a-very-long-interface-name" is not a valid Linux interface name/);
    await assert.rejects(runtime.add(fine, attachment(sandbox, 'net1', '../escape'), signal), /container ID "\.\.\/escape" is not valid for CNI/);
    assert.deepEqual(await linksOf(sandbox), ['lo']);
    assert.ok(!(await linksOf(host)).includes(fineBridge), 'no plugin ran: its bridge was not made');
  });

  it('a plugin that hangs is killed at the timeout; an aborted call is killed too', async () => {
    const pluginDir = join(dir, 'plugins');
    await mkdir(pluginDir);
    // A stand-in for a wedged plugin: the runtime's timeout is what is under test, not a plugin.
    await writeFile(join(pluginDir, 'hang'), '#!/bin/sh\nexec sleep 30\n');
    await chmod(join(pluginDir, 'hang'), 0o755);
    const list = parseNetworkConfig(JSON.stringify({ cniVersion: '1.0.0', name: 'hang', type: 'hang' }), { source: 'test' });
    const runtime = new CniRuntime({ cacheDir: join(dir, 'cache-hang'), cniPath: [pluginDir], pluginTimeoutMs: 300 });
    const sandbox = await namespaces.create('hang');
    const started = Date.now();
    await assert.rejects(runtime.add(list, attachment(sandbox, 'net1', 'sandbox-hang'), signal), (err: unknown) => {
      assert.ok(err instanceof CniError);
      assert.equal(err.failure, 'PluginTimeout');
      assert.match(err.message, /plugin hang ADD did not finish within 300 ms and was killed/);
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
    const controller = new AbortController();
    const slow = new CniRuntime({ cacheDir: join(dir, 'cache-hang'), cniPath: [pluginDir], pluginTimeoutMs: 60_000 });
    const pending = slow.add(list, attachment(sandbox, 'net1', 'sandbox-hang'), controller.signal);
    setTimeout(() => { controller.abort(); }, 100);
    await assert.rejects(pending, (err: unknown) => err instanceof Error && err.name === 'AbortError');
  });
});
