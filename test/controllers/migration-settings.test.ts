/**
 * The migration controller's settings and limits on a real in-process API
 * server, with the agents' steps scripted (src/testing/migration-agents.ts,
 * no guests): the KubeVirt CR's and a MigrationPolicy's settings recorded
 * in the VMI's migrationState and sent to the source; the parallel limits
 * (per source node, per cluster) holding migrations in Pending, in creation
 * order, until a slot frees; a post-copy migration followed to its end and
 * not cancelled when deleted; a source that aborted on a timeout reported
 * as KubeVirt reports it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { MigrationController } from '../../src/controllers/migration/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { testCertificateIssuer } from '../../src/testing/server.js';
import { ScriptedMigrationAgents } from '../../src/testing/migration-agents.js';
import { vireo } from '../subresources/support.js';
import type { Env } from './support.js';
import { eventsFor, eventually, nodeManifest, startEnv } from './support.js';

const migrationPolicies = { group: 'migrations.kubevirt.io', version: 'v1alpha1', plural: 'migrationpolicies', namespaced: false };

let env: Env;
let controller: MigrationController;
const agents = new ScriptedMigrationAgents();

before(async () => {
  env = await startEnv();
  for (const [i, name] of ['node-a', 'node-b', 'node-c'].entries()) {
    const node = nodeManifest(name, { cpu: '8', memory: '16Gi' });
    (node.status as Record<string, unknown>).addresses = [{ type: 'InternalIP', address: `10.9.0.${i + 1}` }];
    await env.client.create(resources.nodes, node);
  }
  await env.client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } });
  await env.client.create(resources.kubeVirts, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'KubeVirt',
    metadata: { name: 'kubevirt', namespace: 'kubevirt' },
    spec: { configuration: { migrations: { parallelMigrationsPerCluster: 2, parallelOutboundMigrationsPerNode: 1, completionTimeoutPerGiB: 40, bandwidthPerMigration: '8Mi' } } },
  });
  controller = new MigrationController(env.client, agents, silentLogger, await testCertificateIssuer());
  await controller.start();
});

after(async () => {
  await controller.stop();
  await env.close();
});

/** A migratable VMI (no networks) that runs on `node`, as its agent would report it. */
async function runningVmi(name: string, node: string, labels: Record<string, string> = {}): Promise<void> {
  await env.client.create(resources.virtualMachineInstances, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', labels: { app: name, ...labels } },
    spec: {
      domain: { devices: { autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [] }, memory: { guest: '128Mi' } },
      networks: [],
      volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
    },
  });
  await env.client.patch(resources.virtualMachineInstances, 'default', name, 'merge', { metadata: { labels: { 'kubevirt.io/nodeName': node } }, status: { phase: 'Running', nodeName: node } });
}

async function migrate(name: string): Promise<KObject> {
  return env.client.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: `${name}-move`, namespace: 'default' }, spec: { vmiName: name } });
}

function phaseOf(name: string): Promise<string | undefined> {
  return env.client.tryGet(resources.virtualMachineInstanceMigrations, 'default', `${name}-move`).then((m) => stringAt(m, 'status', 'phase'));
}

function untilPhase(name: string, phase: string): Promise<true> {
  return eventually(async () => (await phaseOf(name)) === phase || undefined, { what: `migration ${name}-move ${phase}`, timeoutMs: 20_000 });
}

async function stateOf(name: string): Promise<Record<string, unknown>> {
  return recordAt(await env.client.get(resources.virtualMachineInstances, 'default', name), 'status', 'migrationState') ?? {};
}

test('the parallel limits hold migrations in Pending, oldest first, and a freed slot starts the next; settings come from the KubeVirt CR and the policy', async () => {
  await env.client.create(migrationPolicies, {
    apiVersion: 'migrations.kubevirt.io/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name: 'gold' },
    spec: { selectors: { virtualMachineInstanceSelector: { tier: 'gold' } }, allowPostCopy: true, completionTimeoutPerGiB: 5 },
  });
  await runningVmi('first', 'node-a');
  await runningVmi('second', 'node-a');
  await runningVmi('third', 'node-b', { tier: 'gold' });
  const first = await migrate('first');
  const second = await migrate('second');
  const third = await migrate('third');

  await untilPhase('first', 'Running');
  await untilPhase('third', 'Running');
  // node-a may send one at a time: second waits, saying why.
  const waiting = await eventually(async () => (await eventsFor(env.client, 'second-move')).find((e) => e.reason === 'MigrationWaiting'), { what: 'the waiting Event of second-move' });
  assert.match(String(waiting.message), /1 migrations leave node node-a, the limit per node is 1/);
  assert.equal(await phaseOf('second'), 'Pending');

  const firstState = await stateOf('first');
  assert.equal(firstState.migrationPolicyName, undefined);
  assert.equal(recordAt(firstState, 'migrationConfiguration')?.completionTimeoutPerGiB, 40);
  const thirdState = await stateOf('third');
  assert.equal(thirdState.migrationPolicyName, 'gold');
  assert.deepEqual(
    [recordAt(thirdState, 'migrationConfiguration')?.completionTimeoutPerGiB, recordAt(thirdState, 'migrationConfiguration')?.allowPostCopy, recordAt(thirdState, 'migrationConfiguration')?.bandwidthPerMigration],
    [5, true, '8Mi'],
  );
  const start = agents.stepsOf(third.metadata.uid ?? '').find((s) => s.command.step === 'start-source')?.command;
  assert.deepEqual(start?.step === 'start-source' ? [start.bandwidthBytesPerSecond, start.convergence] : undefined, [
    8 * 2 ** 20,
    { allowAutoConverge: false, allowPostCopy: true, allowWorkloadDisruption: true, completionTimeoutPerGiB: 5, progressTimeoutSeconds: 150 },
  ]);
  const prepare = agents.stepsOf(third.metadata.uid ?? '').find((s) => s.command.step === 'prepare-target')?.command;
  assert.equal(prepare?.step === 'prepare-target' ? prepare.allowPostCopy : undefined, true, 'the target is ready for post-copy');
  // TLS by default: the target gets a serving certificate naming its address, the source a client certificate, both from the cluster CA.
  const served = prepare?.step === 'prepare-target' && prepare.tls !== undefined ? new X509Certificate(prepare.tls.cert) : undefined;
  assert.ok(served !== undefined && prepare?.step === 'prepare-target', 'prepare-target carries TLS credentials');
  assert.equal(served.subjectAltName, `IP Address:${prepare.address}`);
  const client = start?.step === 'start-source' && start.tls !== undefined ? new X509Certificate(start.tls.cert) : undefined;
  assert.ok(client !== undefined && start?.step === 'start-source' && start.tls !== undefined, 'start-source carries TLS credentials');
  assert.ok(client.checkIssued(new X509Certificate(start.tls.caCert)) && served.checkIssued(new X509Certificate(start.tls.caCert)), 'both issued by the cluster CA');
  assert.match(client.subject, /CN=migration-source-/);

  // first ends: node-a's slot (and a cluster slot) frees, second starts.
  agents.setSource(first.metadata.uid ?? '', { state: 'completed', downtimeMs: 12, totalTimeMs: 900 });
  await untilPhase('first', 'Succeeded');
  await untilPhase('second', 'Running');
  assert.ok(agents.stepsOf(second.metadata.uid ?? '').length > 0);
  agents.setSource(second.metadata.uid ?? '', { state: 'completed' });
  await untilPhase('second', 'Succeeded');
});

test('a post-copy migration: mode PostCopy, the target resumes the guest, a delete does not cancel it, it completes and then goes', async () => {
  const third = await env.client.get(resources.virtualMachineInstanceMigrations, 'default', 'third-move');
  const uid = third.metadata.uid ?? '';
  agents.setSource(uid, { state: 'migrating', mode: 'PostCopy', switchedOver: true });
  await eventually(async () => (await stateOf('third')).mode === 'PostCopy' || undefined, { what: 'mode PostCopy on third' });
  await eventually(() => agents.stepsOf(uid).some((s) => s.command.step === 'resume-target' && s.node !== 'node-b') || undefined, { what: 'the target to be asked to resume the guest' });

  const refused = await vireo(['migrate-cancel', 'third'], { kubeconfig: env.server.kubeconfig });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /cannot cancel the migration of VM third: it is in post-copy mode: the guest already runs on node-/);

  await env.client.delete(resources.virtualMachineInstanceMigrations, 'default', 'third-move');
  await eventually(async () => (await stateOf('third')).abortStatus === 'Failed' || undefined, { what: 'abortStatus Failed on third' });
  const state = await stateOf('third');
  assert.equal(state.abortRequested, true);
  assert.ok((await eventsFor(env.client, 'third')).some((e) => e.reason === 'MigrationAbortFailed'));
  assert.ok(!agents.stepsOf(uid).some((s) => s.command.step === 'cancel-source' || s.command.step === 'abort-target'), 'nothing was cancelled');
  assert.ok((await env.client.tryGet(resources.virtualMachineInstanceMigrations, 'default', 'third-move')) !== undefined, 'kept until it ends');

  agents.setSource(uid, { state: 'completed', mode: 'PostCopy' });
  await eventually(async () => (await env.client.tryGet(resources.virtualMachineInstanceMigrations, 'default', 'third-move')) === undefined || undefined, { what: 'the deleted migration to go once completed' });
  const vmi = await env.client.get(resources.virtualMachineInstances, 'default', 'third');
  assert.notEqual(stringAt(vmi, 'status', 'nodeName'), 'node-b', 'the guest moved');
  assert.equal(recordAt(vmi, 'status', 'migrationState')?.completed, true);
});

test('a source that aborted on a timeout: Failed with its reason, abortStatus Succeeded, the target removed', async () => {
  await runningVmi('slow', 'node-c');
  const migration = await migrate('slow');
  const uid = migration.metadata.uid ?? '';
  await untilPhase('slow', 'Running');
  agents.setSource(uid, { state: 'failed', aborted: true, mode: 'PreCopy', message: 'Live migration is not completed after 40 sec and has been aborted' });
  await untilPhase('slow', 'Failed');
  const state = await stateOf('slow');
  assert.equal(state.failureReason, 'Live migration is not completed after 40 sec and has been aborted');
  assert.equal(state.abortStatus, 'Succeeded');
  assert.equal(state.failed, true);
  assert.ok(agents.stepsOf(uid).some((s) => s.command.step === 'abort-target'));
  assert.ok(!agents.stepsOf(uid).some((s) => s.command.step === 'cancel-source'), 'the source rolled back by itself');
});
