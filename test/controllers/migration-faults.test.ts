/**
 * The migration controller's fault paths against a real in-process API
 * server, with scripted agents (src/testing/migration-agents.ts) in place
 * of the two nodes: a new leader picks a running migration up and
 * continues it to Succeeded, or ends it Failed when the source no longer
 * has it, or Succeeded when the hand-over was already done; a source agent
 * that is silent for a while does not fail a migration; a target that
 * refuses to prepare fails it with its message; a source that does not
 * quit its QEMU after the hand-over is asked again until it does.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { ApiError } from '../../src/api/errors.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { MigrationController } from '../../src/controllers/migration/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { testCertificateIssuer } from '../../src/testing/server.js';
import { ScriptedMigrationAgents } from '../../src/testing/migration-agents.js';
import type { Env } from './support.js';
import { condition, eventually, nodeManifest, startEnv } from './support.js';

let env: Env;

before(async () => {
  env = await startEnv();
  for (const [name, address] of [['src', '192.0.2.1'], ['dst', '192.0.2.2']] as const) {
    const node = nodeManifest(name, { cpu: '4', memory: '4Gi' });
    await env.client.create(resources.nodes, { ...node, status: { ...(node.status as Record<string, unknown>), addresses: [{ type: 'InternalIP', address }] } });
  }
});
after(async () => {
  await env.close();
});

/** A VMI without networks running on `src`. */
async function runningVmi(name: string): Promise<KObject> {
  await env.client.create(resources.virtualMachineInstances, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      domain: { devices: { autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [] }, memory: { guest: '64Mi' } },
      networks: [],
      volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
    },
  });
  return env.client.patch(resources.virtualMachineInstances, 'default', name, 'merge', { status: { phase: 'Running', nodeName: 'src' } });
}

function migrate(name: string, vmi: string): Promise<KObject> {
  return env.client.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace: 'default' }, spec: { vmiName: vmi } });
}

function phaseIs(name: string, phase: string, timeoutMs = 20_000): Promise<KObject> {
  return eventually(async () => {
    const m = await env.client.tryGet(resources.virtualMachineInstanceMigrations, 'default', name);
    return stringAt(m, 'status', 'phase') === phase ? m : undefined;
  }, { what: `migration ${name} ${phase}`, timeoutMs, intervalMs: 50 });
}

/** The steps `node` was asked for migration `uid`, by name. */
function stepsOf(agents: ScriptedMigrationAgents, node: string, uid: string | undefined): string[] {
  return agents.stepsOf(uid ?? '').filter((s) => s.node === node).map((s) => s.command.step);
}

async function withController<T>(agents: ScriptedMigrationAgents, work: () => Promise<T>): Promise<T> {
  const controller = new MigrationController(env.client, agents, silentLogger, await testCertificateIssuer());
  await controller.start();
  try {
    return await work();
  } finally {
    await controller.stop();
  }
}

test('a new leader continues a running migration to Succeeded when the source still has it', async () => {
  await runningVmi('resume-ok');
  const agents = new ScriptedMigrationAgents();
  const migration = await withController(agents, async () => {
    await migrate('resume-ok', 'resume-ok');
    return phaseIs('resume-ok', 'Running');
  });
  // No leader now: the migration waits in Running; the next one takes it from there.
  agents.setSource(migration.metadata.uid ?? '', { state: 'completed', downtimeMs: 12 });
  const done = await withController(agents, () => phaseIs('resume-ok', 'Succeeded'));
  assert.equal(done.metadata.annotations?.['vireo.io/migration-downtime-ms'], '12');
  const vmi = await env.client.get(resources.virtualMachineInstances, 'default', 'resume-ok');
  assert.equal(stringAt(vmi, 'status', 'nodeName'), 'dst');
  assert.equal(recordAt(vmi, 'status', 'migrationState')?.completed, true);
  assert.deepEqual(stepsOf(agents, 'dst', done.metadata.uid), ['prepare-target', 'finish-target']);
  assert.equal(stepsOf(agents, 'src', done.metadata.uid).filter((s) => s === 'start-source').length, 1, 'the source is not started twice');
});

test('a new leader fails a migration the source no longer has, saying why, and removes the target', async () => {
  await runningVmi('resume-lost');
  const agents = new ScriptedMigrationAgents();
  const migration = await withController(agents, async () => {
    await migrate('resume-lost', 'resume-lost');
    return phaseIs('resume-lost', 'Running');
  });
  agents.setSource(migration.metadata.uid ?? '', { state: 'unknown', message: 'the source agent knows nothing of this migration (it restarted?)' });
  const failed = await withController(agents, () => phaseIs('resume-lost', 'Failed'));
  assert.match(String(condition(failed, 'Failed')?.message), /knows nothing of this migration/);
  const vmi = await env.client.get(resources.virtualMachineInstances, 'default', 'resume-lost');
  assert.equal(stringAt(vmi, 'status', 'nodeName'), 'src');
  assert.equal(recordAt(vmi, 'status', 'migrationState')?.failed, true);
  assert.match(String(recordAt(vmi, 'status', 'migrationState')?.failureReason), /knows nothing of this migration/);
  assert.ok(stepsOf(agents, 'dst', failed.metadata.uid).includes('abort-target'), 'the target was told to remove its QEMU');
});

test('a new leader that finds the hand-over done ends the migration Succeeded without asking the source where it is', async () => {
  await runningVmi('resume-handed');
  const agents = new ScriptedMigrationAgents();
  const running = await withController(agents, async () => {
    await migrate('resume-handed', 'resume-handed');
    return phaseIs('resume-handed', 'Running');
  });
  // The previous leader died right after binding the VMI to the target.
  const vmi = await env.client.get(resources.virtualMachineInstances, 'default', 'resume-handed');
  await env.client.patch(resources.virtualMachineInstances, 'default', 'resume-handed', 'merge', { status: { nodeName: 'dst', migrationState: { ...recordAt(vmi, 'status', 'migrationState'), completed: true } } });
  const before = stepsOf(agents, 'src', running.metadata.uid).length;
  const done = await withController(agents, () => phaseIs('resume-handed', 'Succeeded'));
  assert.deepEqual(stepsOf(agents, 'src', done.metadata.uid).slice(before), ['finish-source']);
});

test('a source agent silent for a few seconds (restarting) does not fail the migration', async () => {
  await runningVmi('silent-source');
  const agents = new ScriptedMigrationAgents();
  let silentUntil = 0;
  agents.intercept('src', () => {
    if (Date.now() < silentUntil) throw new Error('connect ECONNREFUSED 192.0.2.1:10250');
    return undefined;
  });
  await withController(agents, async () => {
    const migration = await migrate('silent-source', 'silent-source');
    await phaseIs('silent-source', 'Running');
    silentUntil = Date.now() + 3_000;
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    assert.equal(stringAt(await env.client.get(resources.virtualMachineInstanceMigrations, 'default', 'silent-source'), 'status', 'phase'), 'Running');
    agents.setSource(migration.metadata.uid ?? '', { state: 'completed' });
    await phaseIs('silent-source', 'Succeeded');
  });
});

test('a target that refuses to prepare fails the migration with its message; the next migration starts with a fresh state', async () => {
  await runningVmi('refused');
  const agents = new ScriptedMigrationAgents();
  agents.intercept('dst', (command) => {
    if (command.step === 'prepare-target') throw new ApiError('Conflict', 'migration step prepare-target of VMI default/refused failed: cannot pull image localhost/vireo/tiny:latest: manifest unknown');
    return undefined;
  });
  const failed = await withController(agents, async () => {
    await migrate('refused', 'refused');
    return phaseIs('refused', 'Failed');
  });
  assert.match(String(condition(failed, 'Failed')?.message), /cannot pull image localhost\/vireo\/tiny:latest: manifest unknown/);
  const vmi = await env.client.get(resources.virtualMachineInstances, 'default', 'refused');
  assert.equal(stringAt(vmi, 'status', 'nodeName'), 'src');
  assert.match(String(recordAt(vmi, 'status', 'migrationState')?.failureReason), /manifest unknown/);
  assert.ok(!stepsOf(agents, 'src', failed.metadata.uid).includes('start-source'), 'the source never started');
  // The next migration's state starts afresh: nothing of the failed one lingers in it (a target agent would take it as failed).
  agents.intercept('dst', undefined);
  await withController(agents, async () => {
    await migrate('refused-again', 'refused');
    await phaseIs('refused-again', 'Running');
    const state = recordAt(await env.client.get(resources.virtualMachineInstances, 'default', 'refused'), 'status', 'migrationState') ?? {};
    assert.equal(state.failed, undefined, JSON.stringify(state));
    assert.equal(state.failureReason, undefined);
    // Cancelled, so that no later test's controller picks it up.
    await env.client.delete(resources.virtualMachineInstanceMigrations, 'default', 'refused-again');
    await eventually(async () => (await env.client.tryGet(resources.virtualMachineInstanceMigrations, 'default', 'refused-again')) === undefined || undefined, { what: 'refused-again cancelled' });
  });
});

test('a source that does not quit its QEMU after the hand-over is asked again until it does', async () => {
  await runningVmi('stuck-source');
  const agents = new ScriptedMigrationAgents();
  let refusals = 4;
  agents.intercept('src', (command) => {
    if (command.step === 'start-source') agents.setSource(command.migrationUid, { state: 'completed' });
    if (command.step === 'finish-source' && refusals-- > 0) throw new Error('connect ECONNREFUSED 192.0.2.1:10250');
    return undefined;
  });
  await withController(agents, async () => {
    await migrate('stuck-source', 'stuck-source');
    const done = await phaseIs('stuck-source', 'Succeeded');
    assert.match(done.metadata.annotations?.['vireo.io/migration-source-cleanup'] ?? '', /finish-source on src failed \(connect ECONNREFUSED/);
    await eventually(async () => (await env.client.get(resources.virtualMachineInstanceMigrations, 'default', 'stuck-source')).metadata.annotations?.['vireo.io/migration-source-cleanup'] === undefined || undefined, { what: 'the source clean-up mark to go', timeoutMs: 20_000 });
    assert.equal(stepsOf(agents, 'src', done.metadata.uid).filter((s) => s === 'finish-source').length, 5);
  });
});
