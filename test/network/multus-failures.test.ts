/**
 * A Multus network whose plugin refuses (the `bridge` plugin and an invalid
 * VLAN) fails the VMI with the plugin's own message, naming the NAD; the
 * network attached before it in the same VMI is deleted again (its
 * host-local lease released), and no sandbox is left. The test plays the
 * node IPAM (the fixture runs no controllers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { createBound, getVmi, importBlankImage, phase, qemuPidsUnder, startAgentFixture, vmiManifest, waitVmi } from '../agent/support.js';
import { hostNetworkState, testClusterCidr } from './support.js';

test('a plugin’s refusal fails the VMI with its message; the NAD attached before it is deleted again; no sandbox is left', { timeout: 300_000 }, async (t) => {
  const suffix = randomBytes(3).toString('hex');
  const bridges = [`vmuf${suffix}`, `vmug${suffix}`];
  const ipamDir = mkdtempSync(join(tmpdir(), 'vireo-multus-fail-'));
  const fixture = await startAgentFixture();
  const names = networkNames(fixture.dataDir);
  t.after(async () => {
    await fixture.close();
    for (const bridge of bridges) if (existsSync(`/sys/class/net/${bridge}`)) execFileSync('ip', ['link', 'del', bridge]);
    rmSync(ipamDir, { recursive: true, force: true });
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.netnsPrefix, suffix]), { netns: [], links: [], tables: [] }, 'the test left network state behind');
  });
  await fixture.client.patch(resources.nodes, undefined, fixture.nodeName, 'merge', { spec: { podCIDR: testClusterCidr() } });
  await importBlankImage(fixture.images);
  const subnet = `10.${200 + randomInt(8)}.${randomInt(256)}`;
  const nad = (name: string, config: Record<string, unknown>): KObject => ({ apiVersion: 'k8s.cni.cncf.io/v1', kind: 'NetworkAttachmentDefinition', metadata: { name, namespace: 'default' }, spec: { config: JSON.stringify(config) } });
  await fixture.client.create(resources.networkAttachmentDefinitions, nad('good', { cniVersion: '1.0.0', type: 'bridge', bridge: bridges[0], ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: `${subnet}.0/24` }]] } }));
  await fixture.client.create(resources.networkAttachmentDefinitions, nad('broken', { cniVersion: '1.0.0', type: 'bridge', bridge: bridges[1], vlan: -5, ipam: {} }));

  const manifest = vmiManifest('multus-broken', {
    spec: { networks: [{ name: 'default', pod: {} }, { name: 'good', multus: { networkName: 'good' } }, { name: 'broken', multus: { networkName: 'default/broken' } }] },
  });
  (manifest.spec as { domain: { devices: Record<string, unknown> } }).domain.devices.interfaces = [{ name: 'default', masquerade: {} }, { name: 'good', bridge: {} }, { name: 'broken', bridge: {} }];
  await createBound(fixture, manifest);
  const failed = await waitVmi(fixture, 'multus-broken', (v) => phase(v) === 'Failed', 'the VMI to fail', 60_000);
  const ready = recordsAt(failed, 'status', 'conditions').find((c) => c.type === 'Ready');
  assert.equal(ready?.reason, 'FailedCreate');
  assert.equal(ready?.message, 'network default/broken: plugin bridge failed: invalid VLAN ID -5 (must be between 0 and 4094)');
  const leases = existsSync(ipamDir) ? readdirSync(ipamDir).flatMap((network) => readdirSync(join(ipamDir, network)).filter((f) => f.startsWith(`${subnet}.`))) : [];
  assert.deepEqual(leases, [], 'the good network was deleted again');
  assert.equal(execFileSync('ip', ['-o', 'link', 'show', 'master', bridges[0] ?? ''], { encoding: 'utf8' }).trim(), '');
  assert.deepEqual(hostNetworkState([names.netnsPrefix]).netns, []);
  const sandboxes = join(fixture.dataDir, 'network', 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], []);
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), []);
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'multus-broken');
  await eventually(async () => (await getVmi(fixture, 'multus-broken')) === undefined, { what: 'the VMI gone', timeoutMs: 30_000 });
});
