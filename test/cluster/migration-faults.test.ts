/**
 * Faults in the middle of a live migration, on three lab hosts (the server
 * in host-0, the guest on host-1, the target host-2), with one real TCG
 * guest counting on its console and disk, slowed to 1 MiB/s by a
 * MigrationPolicy so that each fault lands mid-way: the target QEMU is
 * killed; the network to the target is cut; the target falls silent
 * during the memory stream's TLS handshake; the target host dies (its
 * agent comes back later); the source agent restarts. After each the guest
 * still counts on host-1 alone, the migration is Failed with its cause in
 * its status and the VMI's migrationState, and nothing of the target stays
 * on host-2 (no QEMU, no VMI directory, no listener, no process in the
 * VMI's cgroup). Last, the VMI is deleted mid-migration: the migration
 * fails saying so and nothing stays on either host.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { Cgroups } from '../../src/agent/cgroups.js';
import { ImageStore, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import type { LabHost } from '../../src/testing/hosts-lab.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { LabConsole, counters } from './lab-console.js';
import { bootMs, counterLoop, labLabel, moverVmi } from './migration-support.js';
import { agentPort, startLabCluster } from './support.js';
import { labSkip } from './requirements.js';

const skip = labSkip;
const name = 'survivor';

test('faults mid-migration leave the guest on the source, the migration Failed with its cause, nothing on the target', { skip, timeout: 900_000 }, async (t) => {
  const began = Date.now();
  const cluster = await startLabCluster({ hosts: 3 });
  t.diagnostic(`lab cluster up in ${Date.now() - began} ms`);
  t.after(() => cluster.close());
  const { client, lab } = cluster;
  const [, host1, host2] = lab.hosts;
  assert.ok(host1 !== undefined && host2 !== undefined);
  const agentDir = (host: LabHost): string => join(cluster.root, host.name, 'agent');
  const cgroups = await Cgroups.detect();
  await Promise.all(cluster.agents.map((agent) => importTestGuest(new ImageStore(join(agent.dataDir, 'images')))));
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } }).catch(() => undefined);
  await client.patch(resources.nodes, undefined, host1.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } } });
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } }, spec: { unschedulable: true } });
  // Slow enough that every fault below lands while the memory is still being copied.
  await client.create({ group: 'migrations.kubevirt.io', version: 'v1alpha1', plural: 'migrationpolicies', namespaced: false }, {
    apiVersion: 'migrations.kubevirt.io/v1alpha1',
    kind: 'MigrationPolicy',
    metadata: { name: 'slow' },
    spec: { selectors: { virtualMachineInstanceSelector: { app: name } }, bandwidthPerMigration: '1Mi' },
  });

  await client.create(resources.virtualMachineInstances, moverVmi(name));
  const running = await eventually(async () => {
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', name);
    if (stringAt(vmi, 'status', 'phase') === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(vmi?.status)}`);
    return stringAt(vmi, 'status', 'phase') === 'Running' ? vmi : undefined;
  }, { what: `VMI ${name} running`, timeoutMs: bootMs, intervalMs: 200 });
  const uid = running.metadata.uid ?? '';
  assert.equal(stringAt(running, 'status', 'nodeName'), host1.name);
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { spec: { unschedulable: false } });
  const bootConsole = await LabConsole.open(cluster, name);
  await eventually(() => bootConsole.output().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
  bootConsole.type(counterLoop);
  await eventually(() => counters(bootConsole.output()).some((n) => n >= 2), { what: 'the counter to reach 2', timeoutMs: 60_000, intervalMs: 200 });
  bootConsole.close();
  t.diagnostic(`guest counting ${Date.now() - began} ms after the start`);

  /** Starts migration `migration` and waits until it runs and the target QEMU waits on host-2. */
  const startMigration = async (migration: string): Promise<KObject> => {
    await client.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: migration, namespace: 'default' }, spec: { vmiName: name } });
    const started = await eventually(async () => {
      const m = await client.tryGet(resources.virtualMachineInstanceMigrations, 'default', migration);
      const phase = stringAt(m, 'status', 'phase') ?? '';
      if (phase === 'Failed' || phase === 'Succeeded') throw new Error(`migration ${migration} ended before the fault: ${JSON.stringify(m?.status)}`);
      return phase === 'Running' && qemuPidsUnder(agentDir(host2)).length === 1 ? m : undefined;
    }, { what: `migration ${migration} running`, timeoutMs: 120_000, intervalMs: 100 });
    return started;
  };

  /** Waits until the memory of migration `migration` streams (the target's migration port has its connection): past the disks' NBD set-up. */
  const streaming = async (migration: KObject): Promise<void> => {
    const target = JSON.parse((await client.get(resources.virtualMachineInstanceMigrations, 'default', migration.metadata.name ?? '')).metadata.annotations?.['vireo.io/migration-target'] ?? '{}') as { migrationPort?: number };
    assert.ok(target.migrationPort !== undefined, 'the prepared target is kept on the migration');
    // Mid-way: the stream carries the guest's memory (past its TLS handshake, 256 KiB received), not merely connected.
    // (A target silent during the handshake is its own fault, below.)
    await eventually(async () => {
      const info = await lab.exec(host2, 'ss', '-Htni', 'state', 'established', `( sport = :${target.migrationPort ?? 0} )`);
      return Number(/bytes_received:(\d+)/.exec(info)?.[1] ?? 0) > 256 * 1024 || undefined;
    }, { what: 'the migration stream to carry memory', timeoutMs: 60_000, intervalMs: 50 });
  };

  /** Waits for migration `migration` to fail; checks its cause is in the migration's condition and the VMI's migrationState. */
  const failedWith = async (migration: string, cause: RegExp, timeoutMs = 120_000): Promise<KObject> => {
    const failed = await eventually(async () => {
      const m = await client.tryGet(resources.virtualMachineInstanceMigrations, 'default', migration);
      const phase = stringAt(m, 'status', 'phase');
      if (phase === 'Succeeded') throw new Error(`migration ${migration} succeeded; it was to fail`);
      return phase === 'Failed' ? m : undefined;
    }, { what: `migration ${migration} Failed`, timeoutMs, intervalMs: 100 });
    const conditions = (recordAt(failed, 'status')?.conditions ?? []) as { type?: string; status?: string; message?: string }[];
    const condition = conditions.find((c) => c.type === 'Failed');
    assert.equal(condition?.status, 'True', JSON.stringify(failed.status));
    assert.match(condition?.message ?? '', cause);
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', name);
    if (vmi !== undefined) {
      const state = recordAt(vmi, 'status', 'migrationState') ?? {};
      assert.equal(state.migrationUid, failed.metadata.uid);
      assert.equal(state.failed, true);
      assert.notEqual(state.completed, true);
      assert.match(String(state.failureReason), cause);
    }
    return failed;
  };

  /** The guest runs on host-1 alone and its counter goes on. */
  const stillCountingOnSource = async (): Promise<void> => {
    const vmi = await client.get(resources.virtualMachineInstances, 'default', name);
    assert.equal(stringAt(vmi, 'status', 'nodeName'), host1.name, 'the VMI stays on host-1');
    assert.equal(stringAt(vmi, 'status', 'phase'), 'Running');
    assert.equal(qemuPidsUnder(agentDir(host1)).length, 1, 'one QEMU on host-1');
    const console = await LabConsole.open(cluster, name);
    try {
      const now = Math.max(0, ...counters(console.output()));
      await eventually(() => counters(console.output()).some((n) => n >= now + 2) || undefined, { what: `the counter to go on at the source past ${now}`, timeoutMs: 60_000, intervalMs: 200 });
    } finally {
      console.close();
    }
  };

  /** What host-2 still holds of the VMI: QEMUs, its directory, listeners besides the agent's, processes in its cgroup that are not host-1's QEMU. */
  const leftOnTarget = async (): Promise<string[]> => {
    const left: string[] = [];
    const qemus = qemuPidsUnder(agentDir(host2));
    if (qemus.length > 0) left.push(`QEMU ${qemus.join(' ')}`);
    if (existsSync(join(agentDir(host2), 'vmis', uid))) left.push(`directory vmis/${uid}`);
    const listeners = (await lab.exec(host2, 'ss', '-Hltn')).split('\n').map((l) => l.trim().split(/\s+/)[3] ?? '').filter((a) => a !== '' && !a.endsWith(`:${agentPort}`));
    if (listeners.length > 0) left.push(`listeners ${listeners.join(' ')}`);
    const sourcePids = new Set(qemuPidsUnder(agentDir(host1)));
    for (const dir of cgroups.paths(uid)) {
      const procs = existsSync(join(dir, 'cgroup.procs')) ? readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((p) => p !== '').map(Number) : [];
      const others = procs.filter((p) => !sourcePids.has(p));
      if (others.length > 0) left.push(`processes ${others.join(' ')} in ${dir}`);
    }
    return left;
  };
  const nothingOnTarget = async (what: string): Promise<void> => {
    let last: string[] = [];
    await eventually(async () => {
      last = await leftOnTarget();
      return last.length === 0 || undefined;
    }, { what: `nothing of the target left on host-2 ${what} (left: ${last.join(', ')})`, timeoutMs: 60_000, intervalMs: 250 }).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; left: ${last.join(', ')}`);
    });
  };

  await t.test('the target QEMU is killed mid-way: Failed with the broken stream as cause, the guest runs on at the source', async () => {
    await startMigration('kill-target-qemu');
    const [pid] = qemuPidsUnder(agentDir(host2));
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    await failedWith('kill-target-qemu', /migration failed: /);
    await stillCountingOnSource();
    await nothingOnTarget('after its QEMU died');
  });

  await t.test('the network to the target is cut mid-way: Failed within the bound (10 s without data, then 10 s for the unreachable agent), nothing on the target after reconnect', async (st) => {
    await streaming(await startMigration('cut-target'));
    const cutAt = Date.now();
    await lab.cut(host2);
    try {
      await failedWith('cut-target', /no data reached the target for \d+ s: the target node or the network to it is down/, 60_000);
      const took = Date.now() - cutAt;
      st.diagnostic(`Failed ${took} ms after the cut`);
      assert.ok(took < 40_000, `failed within 40 s of the cut (${took} ms)`);
      await stillCountingOnSource();
    } finally {
      await lab.reconnect(host2);
    }
    // The target's agent learns the migration failed once it reads the VMI again, and removes its QEMU itself.
    await nothingOnTarget('after the reconnect');
  });

  await t.test('the target falls silent during the stream\'s TLS handshake: Failed within the bound, the guest runs on at the source', async (st) => {
    // The target's answers on its migration port are dropped from the moment it is prepared: QEMU's handshake in its main
    // loop then holds its monitor, which the source must not wait on for QMP's own timeout.
    await client.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'silent-handshake', namespace: 'default' }, spec: { vmiName: name } });
    const port = await eventually(async () => {
      const m = await client.tryGet(resources.virtualMachineInstanceMigrations, 'default', 'silent-handshake');
      if (stringAt(m, 'status', 'phase') === 'Failed') throw new Error(`migration failed before the fault: ${JSON.stringify(m?.status)}`);
      return (JSON.parse(m?.metadata.annotations?.['vireo.io/migration-target'] ?? '{}') as { migrationPort?: number }).migrationPort;
    }, { what: 'the target to be prepared', timeoutMs: 120_000, intervalMs: 20 });
    await lab.exec(host2, 'nft', `add table inet vireo_test_silent { chain out { type filter hook output priority 0; tcp sport ${port} ip length > 100 drop; }; }`);
    const silentAt = Date.now();
    try {
      await failedWith('silent-handshake', /no data reached the target for \d+ s: the target node or the network to it is down/, 90_000);
      const took = Date.now() - silentAt;
      st.diagnostic(`Failed ${took} ms after the target fell silent`);
      assert.ok(took < 25_000, `failed within 25 s (${took} ms)`);
    } finally {
      await lab.exec(host2, 'nft', 'delete', 'table', 'inet', 'vireo_test_silent');
    }
    await stillCountingOnSource();
    await nothingOnTarget('after the silent handshake');
  });

  await t.test('the target host dies mid-way: Failed, the guest runs on at the source; its agent, back, removes what the migration left', async () => {
    await streaming(await startMigration('kill-target-host'));
    await lab.kill(host2);
    await failedWith('kill-target-host', /migration failed: /);
    await stillCountingOnSource();
    assert.ok(existsSync(join(agentDir(host2), 'vmis', uid)), 'the dead target left its directory');
    await cluster.startAgent(host2);
    await nothingOnTarget('after its agent came back');
  });

  await t.test('the source agent restarts mid-way: its guest runs on, the migration is rolled back and Failed, one QEMU runs the guest', async (st) => {
    await streaming(await startMigration('restart-source-agent'));
    const source = cluster.agents.find((a) => a.host === host1);
    assert.ok(source !== undefined);
    const killedAt = Date.now();
    source.process.child.kill('SIGKILL');
    await source.process.exited;
    assert.equal(qemuPidsUnder(agentDir(host1)).length, 1, 'the guest outlives its agent');
    await cluster.startAgent(host1);
    st.diagnostic(`source agent back ${Date.now() - killedAt} ms after it was killed`);
    await failedWith('restart-source-agent', /agent restarted during the migration/);
    st.diagnostic(`Failed ${Date.now() - killedAt} ms after the source agent was killed`);
    await stillCountingOnSource();
    st.diagnostic(`counting again ${Date.now() - killedAt} ms after the source agent was killed`);
    await nothingOnTarget('after the source rolled back');
  });

  await t.test('the VMI is deleted mid-way: the migration fails saying so, nothing stays on either host', async () => {
    await startMigration('delete-vmi');
    await client.delete(resources.virtualMachineInstances, 'default', name);
    // Which of the two depends on whether the controller saw the VMI being deleted before it was gone (a grace period of 0).
    await failedWith('delete-vmi', /the VMI is (being deleted|gone)/);
    await eventually(async () => (await client.tryGet(resources.virtualMachineInstances, 'default', name)) === undefined || undefined, { what: 'the VMI to be gone', timeoutMs: 60_000 });
    await nothingOnTarget('after the VMI was deleted');
    await eventually(() => (qemuPidsUnder(agentDir(host1)).length === 0 && !existsSync(join(agentDir(host1), 'vmis', uid))) || undefined, { what: 'nothing of the guest left on host-1', timeoutMs: 60_000 });
  });
});
