/**
 * Multus NICs across an agent restart: the running VMI keeps its net1 and
 * its status; the new agent, which never ran ADD, deletes the VMI's
 * network with CNI DEL from the result cache (the host-local lease is
 * released, the plugin's host veth goes), even though the NAD was deleted
 * meanwhile. The test plays the node IPAM (the fixture runs no controllers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { createBound, getVmi, importBlankImage, phase, qemuPidsUnder, startAgentFixture, vmiManifest, waitVmi } from '../agent/support.js';
import { hostNetworkState, testClusterCidr } from './support.js';

test('a new agent DELs the Multus network of a VMI the old one attached, from the cache, after its NAD is gone', { timeout: 300_000 }, async (t) => {
  const suffix = randomBytes(3).toString('hex');
  const bridge = `vmur${suffix}`;
  const ipamDir = mkdtempSync(join(tmpdir(), 'vireo-multus-restart-'));
  const fixture = await startAgentFixture();
  const names = networkNames(fixture.dataDir);
  t.after(async () => {
    await fixture.close();
    if (existsSync(`/sys/class/net/${bridge}`)) execFileSync('ip', ['link', 'del', bridge]);
    rmSync(ipamDir, { recursive: true, force: true });
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.netnsPrefix, suffix]), { netns: [], links: [], tables: [] }, 'the test left network state behind');
  });
  await fixture.client.patch(resources.nodes, undefined, fixture.nodeName, 'merge', { spec: { podCIDR: testClusterCidr() } });
  await importBlankImage(fixture.images);
  const subnet = `10.${200 + randomInt(8)}.${randomInt(256)}`;
  await fixture.client.create(resources.networkAttachmentDefinitions, {
    apiVersion: 'k8s.cni.cncf.io/v1',
    kind: 'NetworkAttachmentDefinition',
    metadata: { name: 'lan', namespace: 'default' },
    spec: { config: JSON.stringify({ cniVersion: '1.0.0', type: 'bridge', bridge, ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: `${subnet}.0/24` }]] } }) },
  });
  const leases = (): string[] => readdirSync(ipamDir).flatMap((network) => readdirSync(join(ipamDir, network)).filter((f) => f.startsWith(`${subnet}.`)));
  const ports = (): string => execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).trim();

  const manifest = vmiManifest('multus-keep', {
    spec: { networks: [{ name: 'default', pod: {} }, { name: 'lan', multus: { networkName: 'lan' } }] },
  });
  const devices = (manifest.spec as { domain: { devices: Record<string, unknown> } }).domain.devices;
  devices.interfaces = [{ name: 'default', masquerade: {} }, { name: 'lan', bridge: {} }];
  await createBound(fixture, manifest);
  const running = await waitVmi(fixture, 'multus-keep', (v) => phase(v) === 'Running' && recordsAt(v, 'status', 'interfaces').length === 2, 'the VMI to run with two interfaces', 60_000);
  const ip = stringAt(recordsAt(running, 'status', 'interfaces')[1], 'ipAddress') ?? '';
  assert.ok(ip.startsWith(`${subnet}.`), ip);
  assert.deepEqual(leases(), [ip]);
  assert.notEqual(ports(), '', 'the plugin plugged the sandbox into the bridge');
  const pids = qemuPidsUnder(fixture.dataDir);

  await fixture.restartAgent();
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), pids, 'the guest outlived the agent');
  const after = await waitVmi(fixture, 'multus-keep', (v) => phase(v) === 'Running', 'the VMI still running');
  assert.equal(stringAt(recordsAt(after, 'status', 'interfaces')[1], 'ipAddress'), ip);
  assert.deepEqual(leases(), [ip]);

  await fixture.client.delete(resources.networkAttachmentDefinitions, 'default', 'lan');
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'multus-keep');
  await eventually(async () => (await getVmi(fixture, 'multus-keep')) === undefined, { what: 'the VMI gone', timeoutMs: 60_000 });
  assert.deepEqual(leases(), [], 'DEL released the host-local lease');
  assert.equal(ports(), '', 'DEL removed the plugin’s veth');
  const cache = join(fixture.dataDir, 'cni', 'results');
  assert.deepEqual(existsSync(cache) ? readdirSync(cache) : [], []);
});
