/**
 * autoattachPodInterface with real guests (TCG): a VMI of the test guest
 * created without interfaces and networks runs on the pod network with
 * the bridge binding (KubeVirt's default): the guest holds the pod address
 * it got by DHCP, status.interfaces reports it, and another guest fetches
 * its HTTP page there; one with `autoattachPodInterface: false` runs with
 * no NIC and no sandbox. A node without a pod range fails such a VMI with
 * a message that says why and what to do, instead of leaving it Scheduled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { leftoverQemus, phaseOf, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { createBound, importBlankImage, phase, startAgentFixture, vmiManifest, waitVmi } from '../agent/support.js';
import { hostNetworkState } from './support.js';
import { bootedGuest, closeGuestEnv, openGuestEnv, podGuest, runOnConsole } from './guests.js';

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openGuestEnv('vireo-autoattach-test');
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeGuestEnv(env);
});

/** The test guest with no interfaces and no networks (and `devices` as given). */
function bareGuest(name: string, devices: Record<string, unknown> = {}): KObject {
  const vmi = podGuest(name, 'bridge');
  const spec = vmi.spec as { domain: { devices: Record<string, unknown> }; networks?: unknown };
  delete spec.domain.devices.interfaces;
  delete spec.networks;
  Object.assign(spec.domain.devices, devices);
  return vmi;
}

test('a guest created without networks gets the pod network with the bridge binding, its address by DHCP, and is reached there', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const names = networkNames(env.agentDir);
  await env.client.create(vmis, bareGuest('auto'));
  await env.client.create(vmis, podGuest('client', 'masquerade'));
  const auto = await bootedGuest(env, 'auto');
  const client = await bootedGuest(env, 'client');
  try {
    assert.deepEqual(recordsAt(auto.vmi, 'spec', 'networks'), [{ name: 'default', pod: {} }]);
    assert.deepEqual(recordsAt(auto.vmi, 'spec', 'domain', 'devices', 'interfaces'), [{ name: 'default', bridge: {} }]);
    const statuses = recordsAt(auto.vmi, 'status', 'interfaces');
    assert.equal(statuses.length, 1);
    assert.equal(stringAt(statuses[0], 'name'), 'default');
    const ip = stringAt(statuses[0], 'ipAddress') ?? '';
    assert.match(ip, /^10\.\d+\.\d+\.\d+$/);
    // Bridge binding: the guest itself holds the pod address (its boot log and eth0 say so).
    await eventually(() => auto.console.text().includes(`network: eth0 ${ip}/24`), { what: 'the guest to get its pod address', timeoutMs: 60_000 });
    assert.match(await runOnConsole(auto.console, 'ip -4 -o addr show dev eth0', 'ADDR'), new RegExp(`inet ${ip.replaceAll('.', '\\.')}/24`));
    const fetched = await runOnConsole(client.console, `wget -qO- http://${ip}/`, 'FETCH');
    assert.match(fetched, /Vireo test guest/);
    assert.match(fetched, /FETCH-0/);
  } finally {
    auto.console.close();
    client.console.close();
  }
  for (const name of ['auto', 'client']) await env.client.delete(vmis, 'default', name);
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'auto')) === undefined && (await env.client.tryGet(vmis, 'default', 'client')) === undefined, { what: 'the VMIs gone', timeoutMs: 60_000 });
  assert.deepEqual(hostNetworkState([names.netnsPrefix]).netns, []);
  const sandboxes = join(env.agentDir, 'network', 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], [], 'the leases are released');
  assert.deepEqual(leftoverQemus(env), []);
});

test('autoattachPodInterface: false runs the guest with no NIC and no sandbox', { skip: skipWithoutQemu, timeout: 600_000 }, async () => {
  const names = networkNames(env.agentDir);
  await env.client.create(vmis, bareGuest('no-nic', { autoattachPodInterface: false }));
  const running = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'no-nic');
    if (phaseOf(found) === 'Failed') throw new Error(`VMI no-nic failed: ${JSON.stringify(found?.status)}`);
    return phaseOf(found) === 'Running' ? found : undefined;
  }, { what: 'VMI no-nic running', timeoutMs: 300_000, intervalMs: 100 });
  assert.deepEqual(recordsAt(running, 'spec', 'networks'), []);
  assert.deepEqual(recordsAt(running, 'status', 'interfaces'), []);
  assert.deepEqual(hostNetworkState([`${names.netnsPrefix}${running.metadata.uid ?? ''}`]).netns, [], 'no sandbox for a VMI without a NIC');
  await env.client.delete(vmis, 'default', 'no-nic');
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'no-nic')) === undefined, { what: 'VMI no-nic gone', timeoutMs: 60_000 });
});

test('a node without a pod range fails a VMI that gets the pod network, saying why and what to do, and leaves nothing behind', { skip: skipWithoutQemu, timeout: 120_000 }, async (t) => {
  const fixture = await startAgentFixture();
  const names = networkNames(fixture.dataDir);
  t.after(async () => {
    await fixture.close();
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.netnsPrefix]), { netns: [], links: [], tables: [] });
  });
  // The fixture gave its Node a range; this one has none (as when the cluster range ran out).
  await fixture.client.patch(resources.nodes, undefined, fixture.nodeName, 'merge', { spec: { podCIDR: null, podCIDRs: null } });
  await importBlankImage(fixture.images);
  const created = await createBound(fixture, vmiManifest('no-range'));
  assert.deepEqual(recordsAt(created, 'spec', 'networks'), [{ name: 'default', pod: {} }]);
  const started = Date.now();
  const failed = await waitVmi(fixture, 'no-range', (v) => phase(v) === 'Failed', 'the VMI to fail', 60_000);
  t.diagnostic(`failed after ${Date.now() - started} ms`);
  const ready = recordsAt(failed, 'status', 'conditions').find((c) => c.type === 'Ready');
  assert.equal(ready?.reason, 'FailedCreate');
  const message = String(ready?.message);
  assert.match(message, /the pod network is not available on this node/);
  assert.match(message, /no spec\.podCIDRs/);
  assert.match(message, /autoattachPodInterface: false/);
  const sandboxes = join(fixture.dataDir, 'network', 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], []);
  assert.deepEqual(hostNetworkState([names.netnsPrefix, names.bridge]), { netns: [], links: [], tables: [] });
});

test('an agent that stops with no guest on the pod network leaves no node bridge or tables; with one running, they stay for it', { skip: skipWithoutQemu, timeout: 300_000 }, async (t) => {
  const fixture = await startAgentFixture();
  const names = networkNames(fixture.dataDir);
  t.after(async () => {
    await fixture.close();
    assert.deepEqual(hostNetworkState([names.bridge, names.table, names.policyTable, names.netnsPrefix]), { netns: [], links: [], tables: [] });
  });
  await importBlankImage(fixture.images);
  await createBound(fixture, vmiManifest('first'));
  await waitVmi(fixture, 'first', (v) => phase(v) === 'Running', 'the VMI to run', 120_000);
  assert.ok(hostNetworkState([names.bridge]).links.includes(names.bridge), 'the first sandbox made the node bridge');

  // A guest runs on: the agent's stop keeps its datapath.
  await fixture.agent.stop();
  assert.ok(hostNetworkState([names.bridge]).links.includes(names.bridge), 'the bridge stays for the running guest');
  assert.equal(hostNetworkState([names.table]).tables.length > 0, true, 'so does the table');
  await fixture.restartAgent();
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'first');
  await eventually(async () => (await fixture.client.tryGet(resources.virtualMachineInstances, 'default', 'first')) === undefined, { what: 'the VMI gone', timeoutMs: 60_000 });

  // None left: the stop removes the bridge and the tables, and a new agent makes them again for its first guest.
  await fixture.agent.stop();
  assert.deepEqual(hostNetworkState([names.bridge, names.table, names.policyTable, names.netnsPrefix]), { netns: [], links: [], tables: [] });
  await fixture.restartAgent();
  await createBound(fixture, vmiManifest('second'));
  await waitVmi(fixture, 'second', (v) => phase(v) === 'Running', 'the VMI to run', 120_000);
  assert.ok(hostNetworkState([names.bridge]).links.includes(names.bridge));
});
