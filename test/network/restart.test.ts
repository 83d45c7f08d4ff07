/**
 * The pod network across agent restarts: a running guest keeps its QEMU
 * (inside the sandbox's namespace), its dnsmasq and its addresses; a guest
 * that died while no agent ran has its sandbox removed by the next agent.
 * The test plays the node IPAM (the fixture's server runs no controllers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { networkNames, sandboxNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { createBound, importBlankImage, phase, qemuPidsUnder, startAgentFixture, vmiDir, vmiManifest, waitVmi } from '../agent/support.js';
import type { AgentFixture } from '../agent/support.js';
import { hostNetworkState, testClusterCidr } from './support.js';

function podVmi(name: string): ReturnType<typeof vmiManifest> {
  const manifest = vmiManifest(name);
  const spec = manifest.spec as { domain: { devices: Record<string, unknown> }; networks?: unknown[] };
  spec.domain.devices.interfaces = [{ name: 'default', masquerade: {} }];
  spec.networks = [{ name: 'default', pod: {} }];
  return manifest;
}

function dnsmasqPidOf(fixture: AgentFixture, uid: string): number | undefined {
  try {
    return Number(readFileSync(join(fixture.dataDir, 'network', 'sandboxes', uid, 'dnsmasq.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

function alive(pid: number | undefined): boolean {
  return pid !== undefined && existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
}

test('a guest keeps its sandbox, dnsmasq and addresses over an agent restart; one that died meanwhile loses them', { timeout: 300_000 }, async (t) => {
  const fixture = await startAgentFixture();
  const names = networkNames(fixture.dataDir);
  t.after(async () => {
    await fixture.close();
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.policyTable, names.netnsPrefix]), { netns: [], links: [], tables: [] }, 'the fixture left pod network state behind');
  });
  await fixture.client.patch(resources.nodes, undefined, fixture.nodeName, 'merge', { spec: { podCIDR: testClusterCidr() } });
  await importBlankImage(fixture.images);
  const created = await createBound(fixture, podVmi('keep'));
  const uid = created.metadata.uid ?? '';
  const running = await waitVmi(fixture, 'keep', (v) => phase(v) === 'Running' && recordsAt(v, 'status', 'interfaces').length > 0, 'keep to run with an interface', 60_000);
  const ip = stringAt(recordsAt(running, 'status', 'interfaces')[0], 'ipAddress');
  const record = JSON.parse(readFileSync(join(vmiDir(fixture, uid), 'vmi.json'), 'utf8')) as { pid: number };
  const netns = sandboxNames(names, uid).netns;
  // QEMU runs inside the sandbox's namespace, and is the process the agent recorded (ip netns exec execs).
  assert.equal(readlinkSync(`/proc/${record.pid}/ns/net`), `net:[${statSync(`/run/netns/${netns}`).ino}]`);
  const dnsmasq = dnsmasqPidOf(fixture, uid);
  assert.ok(alive(dnsmasq), 'dnsmasq runs');

  await fixture.restartAgent();
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), [record.pid]);
  assert.ok(alive(dnsmasq), 'dnsmasq outlived the agent');
  assert.ok(existsSync(`/run/netns/${netns}`));
  const after = await waitVmi(fixture, 'keep', (v) => phase(v) === 'Running', 'keep still running');
  assert.equal(stringAt(recordsAt(after, 'status', 'interfaces')[0], 'ipAddress'), ip);

  // The guest dies while no agent runs: the next agent reports it and removes its sandbox.
  await fixture.agent.stop();
  process.kill(record.pid, 'SIGKILL');
  await fixture.restartAgent();
  await waitVmi(fixture, 'keep', (v) => phase(v) === 'Failed', 'keep to be reported Failed');
  // Its lease goes last, with the sandbox's directory.
  await eventually(() => !alive(dnsmasq) && !existsSync(`/run/netns/${netns}`) && !existsSync(join(fixture.dataDir, 'network', 'sandboxes', uid)), { what: 'the sandbox, its dnsmasq and its lease to go', timeoutMs: 30_000 });
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'keep');
});
