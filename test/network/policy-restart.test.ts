/**
 * The node's policy tables across agent restarts: an agent that stops and
 * leaves its guests running leaves its tables enforcing; the next agent
 * reprograms them from the cluster as it is then (a policy deleted while
 * no agent ran is gone from the table); an agent that stops its guests
 * removes them. The guest is a blank disk (nothing boots): the tables are
 * made for its sandbox. The test plays the node IPAM (the fixture's server
 * runs no controllers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { recordsAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { createBound, importBlankImage, phase, startAgentFixture, vmiManifest, waitVmi } from '../agent/support.js';
import { hostNetworkState, testClusterCidr } from './support.js';

const isolated = 'default/web ingress: no policy allows it';

test('the policy table keeps enforcing while no agent runs, is reprogrammed by the next agent, and goes with the guests', { timeout: 300_000 }, async (t) => {
  const fixture = await startAgentFixture();
  const names = networkNames(fixture.dataDir);
  t.after(async () => {
    await fixture.close();
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.policyTable, names.netnsPrefix]), { netns: [], links: [], tables: [] }, 'the fixture left pod network or policy state behind');
  });
  const table = (): string => {
    try {
      return execFileSync('nft', ['list', 'table', 'inet', names.policyTable], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return '';
    }
  };
  // No pod network yet, no tables: an agent without pod guests programs nothing.
  assert.equal(table(), '');
  await fixture.client.patch(resources.nodes, undefined, fixture.nodeName, 'merge', { spec: { podCIDR: testClusterCidr() } });
  await importBlankImage(fixture.images);
  const manifest = vmiManifest('web');
  manifest.metadata.labels = { app: 'web' };
  const spec = manifest.spec as { domain: { devices: Record<string, unknown> }; networks?: unknown[] };
  spec.domain.devices.interfaces = [{ name: 'default', masquerade: {} }];
  spec.networks = [{ name: 'default', pod: {} }];
  await createBound(fixture, manifest);
  await waitVmi(fixture, 'web', (v) => phase(v) === 'Running' && recordsAt(v, 'status', 'interfaces').length > 0, 'web to run with an interface', 60_000);

  await fixture.client.create(resources.networkPolicies, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-web', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] } });
  await eventually(() => table().includes(isolated), { what: 'the agent to program the deny', timeoutMs: 30_000 });
  // The guest's host veth is the key of the anti-spoofing table of the same name.
  assert.match(execFileSync('nft', ['list', 'table', 'bridge', names.policyTable], { encoding: 'utf8' }), /vh[0-9a-f]{12}/);

  // No agent: the table stays as it was and keeps enforcing.
  await fixture.agent.stop();
  assert.ok(table().includes(isolated), 'the stopped agent left the table in place');
  await fixture.client.delete(resources.networkPolicies, 'default', 'deny-web');
  assert.ok(table().includes(isolated));

  // The next agent reprograms it from the cluster as it is now.
  await fixture.restartAgent();
  await eventually(() => table() !== '' && !table().includes(isolated), { what: 'the next agent to reprogram the table', timeoutMs: 30_000 });
  assert.match(table(), /chain ingress/);
  await fixture.client.create(resources.networkPolicies, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-web-again', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] } });
  await eventually(() => table().includes(isolated), { what: 'the restarted agent to follow a new policy', timeoutMs: 30_000 });
});
