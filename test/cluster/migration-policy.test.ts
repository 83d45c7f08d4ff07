/**
 * Migration settings on lab hosts with a real TCG guest whose loop
 * rewrites 8 MiB of /dev/shm as fast as it can, migrated at 1 MiB/s so
 * that pre-copy cannot converge. With the KubeVirt CR's small
 * `completionTimeoutPerGiB` and no post-copy, the migration is aborted at
 * the completion timeout: Failed with KubeVirt's reason, the guest runs on
 * at the source, nothing is left on the target. Then a MigrationPolicy
 * matching the guest allows post-copy (and overrides the timeout): the
 * migration switches to post-copy at the timeout and completes, the VMI's
 * `migrationState.mode` is PostCopy, and the guest's counter goes on on
 * the target without a gap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore, TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { LabConsole, counters } from './lab-console.js';
import { startLabCluster } from './support.js';
import { labSkip } from './requirements.js';

const bootMs = 300_000;
const labLabel = 'vireo.io/migration-policy-lab';
const migrationPolicies = { group: 'migrations.kubevirt.io', version: 'v1alpha1', plural: 'migrationpolicies', namespaced: false };

/** A guest without networks on its containerDisk, 128 MiB. */
function churnVmi(name: string): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 0,
      nodeSelector: { [labLabel]: 'yes' },
      domain: { devices: { autoattachGraphicsDevice: false, autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [] }, memory: { guest: '128Mi' } },
      networks: [],
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }],
    },
  };
}

/** Rewrites 8 MiB of random data in /dev/shm (tmpfs: guest memory) without pause. */
const dirtyLoop = 'head -c 8388608 /dev/urandom > /dev/shm/seed; (while true; do cp /dev/shm/seed /dev/shm/dirty; done) &';
/** Each second, `count N` on the console. */
const counterLoop = '(i=0; while true; do i=$((i+1)); echo "count $i"; sleep 1; done) &';

test('a migration that cannot converge: aborted at the completion timeout, or finished in post-copy when a policy allows it', { skip: labSkip, timeout: 600_000 }, async (t) => {
  const started = Date.now();
  const cluster = await startLabCluster({ hosts: 2 });
  t.diagnostic(`lab cluster up in ${Date.now() - started} ms`);
  t.after(() => cluster.close());
  const { client, lab, kc } = cluster;
  const host1 = lab.hosts[1];
  assert.ok(host1 !== undefined);
  const serverNode = cluster.serverNode;
  const serverDir = join(cluster.root, 'server');
  const hostDir = join(cluster.root, host1.name);
  await Promise.all([join(serverDir, 'images'), ...cluster.agents.map((a) => join(a.dataDir, 'images'))].map((dir) => importTestGuest(new ImageStore(dir))));
  t.diagnostic(`guest image imported ${Date.now() - started} ms after the start`);
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'KubeVirt',
    metadata: { name: 'kubevirt', namespace: 'kubevirt' },
    spec: { configuration: { developerConfiguration: { useEmulation: true }, migrations: { completionTimeoutPerGiB: 3, bandwidthPerMigration: '1Mi' } } },
  });
  // The guest starts on host-1; the server's node takes it only once it runs there.
  await client.patch(resources.nodes, undefined, host1.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } } });
  await client.patch(resources.nodes, undefined, serverNode, 'merge', { metadata: { labels: { [labLabel]: 'yes' } }, spec: { unschedulable: true } });

  await client.create(resources.virtualMachineInstances, churnVmi('churn'));
  const running = await eventually(async () => {
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', 'churn');
    if (stringAt(vmi, 'status', 'phase') === 'Failed') throw new Error(`VMI churn failed: ${JSON.stringify(vmi?.status)}`);
    return stringAt(vmi, 'status', 'phase') === 'Running' ? vmi : undefined;
  }, { what: 'VMI churn running', timeoutMs: bootMs, intervalMs: 200 });
  assert.equal(stringAt(running, 'status', 'nodeName'), host1.name);
  t.diagnostic(`VMI running ${Date.now() - started} ms after the start`);
  await client.patch(resources.nodes, undefined, serverNode, 'merge', { spec: { unschedulable: false } });
  const sourceConsole = await LabConsole.open(cluster, 'churn');
  t.after(() => { sourceConsole.close(); });
  await eventually(() => sourceConsole.output().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
  t.diagnostic(`guest ready ${Date.now() - started} ms after the start`);
  sourceConsole.type(dirtyLoop);
  sourceConsole.type(counterLoop);
  await eventually(() => counters(sourceConsole.output()).some((n) => n >= 2), { what: 'the counter to reach 2', timeoutMs: 60_000, intervalMs: 200 });

  const migrationsOf = async (): Promise<KObject[]> => (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items.filter((m) => stringAt(m, 'spec', 'vmiName') === 'churn');
  const migrateToEnd = async (known: ReadonlySet<string>): Promise<KObject> => {
    const out = await vireo(['migrate', 'churn'], kc);
    assert.equal(out.code, 0, out.stderr);
    return eventually(async () => {
      const m = (await migrationsOf()).find((x) => !known.has(x.metadata.uid ?? ''));
      const phase = stringAt(m, 'status', 'phase');
      return phase === 'Succeeded' || phase === 'Failed' ? m : undefined;
    }, { what: 'the migration to end', timeoutMs: 180_000, intervalMs: 300 });
  };

  const seen = new Set<string>();
  await t.test('without post-copy, the completion timeout of the KubeVirt CR aborts the migration; the guest runs on at the source', async () => {
    const done = await migrateToEnd(seen);
    seen.add(done.metadata.uid ?? '');
    assert.equal(stringAt(done, 'status', 'phase'), 'Failed', JSON.stringify(done.status));
    const vmi = await client.get(resources.virtualMachineInstances, 'default', 'churn');
    assert.equal(stringAt(vmi, 'status', 'nodeName'), host1.name, 'the VMI stays on host-1');
    const state = recordAt(vmi, 'status', 'migrationState') ?? {};
    assert.equal(state.migrationUid, done.metadata.uid);
    assert.equal(state.failed, true);
    assert.notEqual(state.completed, true);
    assert.equal(state.abortStatus, 'Succeeded');
    // 128 MiB of memory and a small disk: one (rounded-up) GB, so 3 s × 1.
    assert.equal(state.failureReason, 'Live migration is not completed after 3 sec and has been aborted');
    assert.equal(state.mode, 'PreCopy');
    assert.equal(state.migrationPolicyName, undefined);
    const config = recordAt(state, 'migrationConfiguration') ?? {};
    assert.equal(config.completionTimeoutPerGiB, 3);
    assert.equal(config.bandwidthPerMigration, '1Mi');
    assert.equal(config.allowPostCopy, false);
    assert.equal(config.progressTimeout, 150);
    const conditions = (recordAt(done, 'status')?.conditions ?? []) as { type?: string; message?: string }[];
    assert.ok(conditions.some((c) => c.type === 'Failed' && c.message === state.failureReason), JSON.stringify(conditions));
    await eventually(() => qemuPidsUnder(serverDir).length === 0 || undefined, { what: 'the target QEMU on the server node to be gone', timeoutMs: 30_000 });
    assert.equal(qemuPidsUnder(hostDir).length, 1, 'the guest still runs on host-1');
    const now = Math.max(...counters(sourceConsole.output()));
    await eventually(() => counters(sourceConsole.output()).some((n) => n >= now + 2) || undefined, { what: 'the counter to go on at the source', timeoutMs: 60_000, intervalMs: 200 });
  });

  await t.test('a MigrationPolicy allowing post-copy: the migration switches to post-copy at its timeout and completes; the counter goes on on the target', async () => {
    await client.create(migrationPolicies, {
      apiVersion: 'migrations.kubevirt.io/v1alpha1',
      kind: 'MigrationPolicy',
      metadata: { name: 'postcopy' },
      spec: { selectors: { virtualMachineInstanceSelector: { app: 'churn' } }, allowPostCopy: true, completionTimeoutPerGiB: 2 },
    });
    const before = counters(sourceConsole.output());
    const done = await migrateToEnd(seen);
    assert.equal(stringAt(done, 'status', 'phase'), 'Succeeded', JSON.stringify(done.status));
    const vmi = await client.get(resources.virtualMachineInstances, 'default', 'churn');
    assert.equal(stringAt(vmi, 'status', 'nodeName'), serverNode);
    const state = recordAt(vmi, 'status', 'migrationState') ?? {};
    assert.equal(state.mode, 'PostCopy');
    assert.equal(state.completed, true);
    assert.notEqual(state.failed, true);
    assert.equal(state.migrationPolicyName, 'postcopy');
    const config = recordAt(state, 'migrationConfiguration') ?? {};
    assert.equal(config.allowPostCopy, true);
    assert.equal(config.allowWorkloadDisruption, true, 'follows allowPostCopy');
    assert.equal(config.completionTimeoutPerGiB, 2, 'the policy overrides the KubeVirt CR');
    assert.equal(config.bandwidthPerMigration, '1Mi', 'what the policy does not set comes from the KubeVirt CR');
    await eventually(() => qemuPidsUnder(hostDir).length === 0 || undefined, { what: 'the source QEMU to be gone', timeoutMs: 30_000 });
    assert.equal(qemuPidsUnder(serverDir).length, 1, 'one QEMU on the server node');

    const lastBefore = Math.max(...before);
    const targetConsole = await LabConsole.open(cluster, 'churn');
    t.after(() => { targetConsole.close(); });
    await eventually(() => counters(targetConsole.output()).some((n) => n >= lastBefore + 6) || undefined, { what: 'the counter to go on on the target', timeoutMs: 60_000, intervalMs: 200 });
    const all = new Set([...counters(sourceConsole.output()), ...counters(targetConsole.output())]);
    const top = Math.max(...all);
    const missing = [...Array(top).keys()].map((i) => i + 1).filter((n) => !all.has(n));
    assert.deepEqual(missing, [], 'no count missing across the move');
  });
});
