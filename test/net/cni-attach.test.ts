/**
 * A VMI's secondary networks end to end, without a guest: NADs created
 * with the real kubectl on the real API server, resolved by the agent's
 * client, run by Debian's real CNI plugins into a sandbox namespace the test
 * makes (plugins inside the test's own "host" namespace); all or nothing on
 * failure, and DEL from the cache after a restart and after the NAD is gone.
 */
import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { HttpClient } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { CniError, CniRuntime, SecondaryNetworks, networkStatusEntries } from '../../src/net/cni/index.js';
import type { NetworkRequest, Sandbox } from '../../src/net/cni/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { Namespaces, addressesOf, ip, linksOf, macOf, uniqueSuffix } from './netns.js';

const signal = new AbortController().signal;

function nad(namespace: string, name: string, config: Record<string, unknown> | undefined): Record<string, unknown> {
  return { apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', metadata: { name, namespace }, spec: config === undefined ? {} : { config: JSON.stringify(config) } };
}

/** Host-local lease files (one per address) under a data dir, over all networks. */
async function leaseCount(dataDir: string): Promise<number> {
  let count = 0;
  for (const network of await readdir(dataDir).catch(() => [])) {
    count += (await readdir(join(dataDir, network))).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).length;
  }
  return count;
}

describe('secondary networks of a VMI on the real plugins', () => {
  const namespaces = new Namespaces();
  let server: TestServer;
  let client: HttpClient;
  let dir: string;
  let dataDir: string;
  let confDir: string;
  let host: string;

  const networks = (cacheDir: string): SecondaryNetworks =>
    new SecondaryNetworks({ client, runtime: new CniRuntime({ cacheDir, pluginNetns: host }), logger: silentLogger, confDir });

  before(async () => {
    server = await startTestServer();
    client = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'vireo-cni-test' });
    dir = await mkdtemp(join(tmpdir(), 'vireo-cni-test-'));
    dataDir = join(dir, 'leases');
    confDir = join(dir, 'net.d');
    host = await namespaces.create('host');
    const master = `vcm${uniqueSuffix()}`;
    await ip('-n', host, 'link', 'add', master, 'type', 'veth', 'peer', 'name', `${master}p`);
    await ip('-n', host, 'link', 'set', master, 'up');
    const hostLocal = (subnet: string): Record<string, unknown> => ({ type: 'host-local', dataDir, ranges: [[{ subnet }]] });
    const manifests = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } },
      nad('default', 'blue', { cniVersion: '1.0.0', type: 'bridge', bridge: `vcb${uniqueSuffix()}`, ipam: hostLocal('10.250.10.0/24') }),
      nad('default', 'green', {
        cniVersion: '1.0.0',
        name: 'green-net',
        plugins: [{ type: 'bridge', bridge: `vcg${uniqueSuffix()}`, ipam: hostLocal('10.250.11.0/24') }, { type: 'tuning', capabilities: { mac: true }, dataDir: join(dir, 'tuning') }],
      }),
      nad('other', 'red', { cniVersion: '0.4.0', type: 'macvlan', master, mode: 'bridge', ipam: { type: 'static', addresses: [{ address: '192.168.77.10/24' }] } }),
      nad('default', 'broken', { cniVersion: '1.0.0', type: 'bridge', bridge: `vcx${uniqueSuffix()}`, vlan: -5, ipam: {} }),
      nad('default', 'ancient', { cniVersion: '0.2.0', type: 'bridge' }),
      nad('default', 'fromfile', undefined),
      nad('default', 'nofile', undefined),
    ];
    const applied = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) });
    assert.equal(applied.code, 0, applied.stderr);
    await mkdir(confDir);
    await writeFile(join(confDir, '10-fromfile.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'fromfile', type: 'bridge', bridge: `vcf${uniqueSuffix()}`, ipam: hostLocal('10.250.12.0/24') }));
  });

  after(async () => {
    client.close();
    await server.stop();
    await namespaces.removeAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('attaches three NADs as net1…net3 (bare name, namespace/name, a conflist with a MAC), writes network-status from the results, and detaches them', async () => {
    const sandbox: Sandbox = { netns: await namespaces.create('vmi'), vmi: { namespace: 'default', name: 'vm1', uid: `uid-${uniqueSuffix()}` } };
    const requests: NetworkRequest[] = [
      { networkName: 'blue', interfaceName: 'net1' },
      { networkName: 'other/red', interfaceName: 'net2' },
      { networkName: 'default/green', interfaceName: 'net3', mac: '02:00:5e:10:00:03' },
    ];
    const secondary = networks(join(dir, 'cache-attach'));
    const attached = await secondary.attach(sandbox, requests, { signal });
    assert.deepEqual(attached.map((a) => [a.network, a.interfaceName]), [['default/blue', 'net1'], ['other/red', 'net2'], ['default/green', 'net3']]);
    assert.match((await addressesOf(sandbox.netns, 'net1'))[0] ?? '', /^10\.250\.10\.\d+\/24$/);
    assert.deepEqual(await addressesOf(sandbox.netns, 'net2'), ['192.168.77.10/24']);
    assert.match((await addressesOf(sandbox.netns, 'net3'))[0] ?? '', /^10\.250\.11\.\d+\/24$/);
    assert.equal(await macOf(sandbox.netns, 'net3'), '02:00:5e:10:00:03');

    const status = networkStatusEntries({ podNetwork: { name: 'vireo-pod-network', interface: 'eth0', ips: ['10.244.0.9'] }, attachments: attached });
    assert.deepEqual(status.map((s) => [s.name, s.interface, s.default]), [['vireo-pod-network', 'eth0', true], ['default/blue', 'net1', undefined], ['other/red', 'net2', undefined], ['default/green', 'net3', undefined]]);
    for (const entry of status.slice(1)) {
      const inKernel = (await addressesOf(sandbox.netns, entry.interface ?? '')).map((a) => a.split('/')[0]);
      assert.deepEqual(entry.ips, inKernel, `${entry.name}: the annotation shows what the kernel has`);
      assert.equal(entry.mac, await macOf(sandbox.netns, entry.interface ?? ''));
    }
    assert.equal(await leaseCount(dataDir), 2);

    // CHECK from a fresh instance (as after a restart) holds, and names the NAD once an interface is gone.
    await networks(join(dir, 'cache-attach')).check(sandbox, requests, { signal });
    await ip('-n', sandbox.netns, 'link', 'del', 'net2');
    await assert.rejects(secondary.check(sandbox, requests, { signal }), /^CniError: network other\/red: plugin macvlan failed: \S/);

    await secondary.detach(sandbox, requests, { signal });
    assert.deepEqual(await linksOf(sandbox.netns), ['lo']);
    assert.equal(await leaseCount(dataDir), 0);
    assert.deepEqual(await readdir(join(dir, 'cache-attach')), []);
  });

  it('when the second network fails, the first is deleted again and the error is the plugin’s own, naming the NAD', async () => {
    const sandbox: Sandbox = { netns: await namespaces.create('vmi'), vmi: { namespace: 'default', name: 'vm2', uid: `uid-${uniqueSuffix()}` } };
    const secondary = networks(join(dir, 'cache-fail'));
    await assert.rejects(secondary.attach(sandbox, [{ networkName: 'blue', interfaceName: 'net1' }, { networkName: 'broken', interfaceName: 'net2' }], { signal }), (err: unknown) => {
      assert.ok(err instanceof CniError);
      assert.equal(err.failure, 'PluginFailed');
      assert.equal(err.network, 'default/broken');
      assert.equal(err.message, 'network default/broken: plugin bridge failed: invalid VLAN ID -5 (must be between 0 and 4094)');
      return true;
    });
    assert.deepEqual(await linksOf(sandbox.netns), ['lo']);
    assert.equal(await leaseCount(dataDir), 0);
    assert.deepEqual(await readdir(join(dir, 'cache-fail')).catch(() => []), []);
  });

  it('a missing NAD, a config no plugin speaks, and a NAD without config or conf file are refused before any plugin runs', async () => {
    const sandbox: Sandbox = { netns: await namespaces.create('vmi'), vmi: { namespace: 'default', name: 'vm3', uid: `uid-${uniqueSuffix()}` } };
    const secondary = networks(join(dir, 'cache-refused'));
    const refused = async (networkName: string, message: string | RegExp, failure: string): Promise<void> => {
      await assert.rejects(secondary.attach(sandbox, [{ networkName: 'blue', interfaceName: 'net1' }, { networkName, interfaceName: 'net2' }], { signal }), (err: unknown) => {
        assert.ok(err instanceof CniError);
        assert.equal(err.failure, failure);
        if (typeof message === 'string') assert.equal(err.message, message);
        else assert.match(err.message, message);
        return true;
      });
      assert.deepEqual(await linksOf(sandbox.netns), ['lo'], 'net1 was never added');
      assert.equal(await leaseCount(dataDir), 0);
    };
    await refused('nope', 'network-attachment-definition default/nope not found: create it, or fix networks[].multus.networkName', 'NetworkNotFound');
    await refused('other/blue', 'network-attachment-definition other/blue not found: create it, or fix networks[].multus.networkName', 'NetworkNotFound');
    await refused('ancient', /^network-attachment-definition default\/ancient has an invalid CNI config: cniVersion "0\.2\.0" is not supported: use one of 0\.3\.0, 0\.3\.1, 0\.4\.0, 1\.0\.0$/, 'InvalidConfig');
    await refused('nofile', `network-attachment-definition default/nofile has no spec.config, and no CNI conf file in ${confDir} names network "nofile": add spec.config, or the conf file`, 'NetworkNotFound');
  });

  it('a NAD without spec.config runs the conf file of its name', async () => {
    const sandbox: Sandbox = { netns: await namespaces.create('vmi'), vmi: { namespace: 'default', name: 'vm4', uid: `uid-${uniqueSuffix()}` } };
    const secondary = networks(join(dir, 'cache-file'));
    const requests = [{ networkName: 'fromfile', interfaceName: 'net1' }];
    const [attached] = await secondary.attach(sandbox, requests, { signal });
    assert.match(attached?.result.ips[0]?.address ?? '', /^10\.250\.12\.\d+\/24$/);
    await secondary.detach(sandbox, requests, { signal });
    assert.deepEqual(await linksOf(sandbox.netns), ['lo']);

    // A detach asked for while the attach still runs (a VMI deleted as it starts) waits for it, then undoes it.
    const attaching = secondary.attach(sandbox, requests, { signal });
    const detaching = secondary.detach(sandbox, requests, { signal });
    await Promise.all([attaching, detaching]);
    assert.deepEqual(await linksOf(sandbox.netns), ['lo']);
    assert.equal(await leaseCount(dataDir), 0);
  });

  it('after an agent restart and with the NAD deleted, detach still deletes what was added, from the cache', async () => {
    const sandbox: Sandbox = { netns: await namespaces.create('vmi'), vmi: { namespace: 'default', name: 'vm5', uid: `uid-${uniqueSuffix()}` } };
    const cacheDir = join(dir, 'cache-restart');
    const applied = await kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: JSON.stringify(nad('default', 'short-lived', { cniVersion: '1.0.0', type: 'bridge', bridge: `vcs${uniqueSuffix()}`, ipam: { type: 'host-local', dataDir, ranges: [[{ subnet: '10.250.13.0/24' }]] } })) });
    assert.equal(applied.code, 0, applied.stderr);
    const requests = [{ networkName: 'short-lived', interfaceName: 'net1' }];
    await networks(cacheDir).attach(sandbox, requests, { signal });
    assert.equal(await leaseCount(dataDir), 1);
    const deleted = await kubectl(['delete', 'network-attachment-definitions', 'short-lived'], { kubeconfig: server.kubeconfig });
    assert.equal(deleted.code, 0, deleted.stderr);

    // A new agent knows only the VMI's spec (and not even that the NAD is gone): the cache has the config.
    await networks(cacheDir).detach(sandbox, requests, { signal });
    assert.deepEqual(await linksOf(sandbox.netns), ['lo']);
    assert.equal(await leaseCount(dataDir), 0);
    // Detaching again is harmless: nothing cached, no NAD, nothing to do.
    await networks(cacheDir).detach(sandbox, requests, { signal });
  });
});
