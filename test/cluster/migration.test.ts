/**
 * Live migration between lab hosts (src/controllers/migration,
 * src/agent/migration) with a real TCG guest: a loop in the guest writes an
 * increasing counter to its emptyDisk and to its console; the VMI moves
 * host-1 → host-2 with `vireo migrate`; the counter goes on without a gap
 * or reset on the target's console, every record written before and
 * during the move is on the target's disk, the source QEMU is gone, and
 * the VMI's nodeName and migrationState say where it went. Then a
 * migration slowed by a MigrationPolicy's bandwidth is cancelled with
 * `vireo migrate-cancel` half-way: the guest runs on at the source, the
 * target QEMU is gone. Migrations of a VMI that does not exist, that is
 * bridge-bound on the pod network, or that is already migrating are refused saying why.
 * Both migrations go over TLS (KubeVirt's default): mid-way, a plain NBD
 * client to the target's export is turned away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { parseMigrationTarget } from '../../src/agent/index.js';
import { eventually } from '../../src/testing/wait.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { LabConsole, counters } from './lab-console.js';
import { bootMs, counterLoop, labLabel, moverVmi } from './migration-support.js';
import { startLabCluster } from './support.js';
import { labSkip } from './requirements.js';

const skip = labSkip;
const run = promisify(execFile);

/** Counts, on the console, the records 1..last that are not what the loop wrote; prints `bad=N`. */
function verifyCommand(last: number): string {
  return `n=0; j=1; while [ $j -le ${last} ]; do r=$(dd if=/dev/vdb bs=16 skip=$j count=1 2>/dev/null | cut -c1-13); [ "$r" = "$(printf tick-%08d $j)" ] || n=$((n+1)); j=$((j+1)); done; echo "bad=$n checked=${last}"`;
}

test('a running guest moves between lab hosts with its disks, and a cancelled migration leaves it where it was', { skip, timeout: 900_000 }, async (t) => {
  const cluster = await startLabCluster({ hosts: 3 });
  t.after(() => cluster.close());
  const { client, lab, kc } = cluster;
  const [, host1, host2] = lab.hosts;
  assert.ok(host1 !== undefined && host2 !== undefined);
  const dirOf = (host: { name: string }): string => join(cluster.root, host.name);
  // Together: one check of the cached build serves both imports.
  await Promise.all(cluster.agents.map((agent) => importTestGuest(new ImageStore(join(agent.dataDir, 'images')))));
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } }).catch(() => undefined);
  // host-1 and host-2 take the guest; host-2 only once the guest runs on host-1.
  await client.patch(resources.nodes, undefined, host1.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } } });
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } }, spec: { unschedulable: true } });

  const migrationsOf = async (name: string): Promise<KObject[]> => (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items.filter((m) => stringAt(m, 'spec', 'vmiName') === name);

  await t.test('a migration of a VMI that does not exist is refused saying so', async () => {
    await assert.rejects(
      client.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'ghost-move', namespace: 'default' }, spec: { vmiName: 'ghost' } }),
      /virtualmachineinstance.kubevirt.io "ghost" not found: spec.vmiName must name a VMI in namespace/,
    );
  });

  await client.create(resources.virtualMachineInstances, moverVmi('mover'));
  const running = await eventually(async () => {
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', 'mover');
    if (stringAt(vmi, 'status', 'phase') === 'Failed') throw new Error(`VMI mover failed: ${JSON.stringify(vmi?.status)}`);
    return stringAt(vmi, 'status', 'phase') === 'Running' ? vmi : undefined;
  }, { what: 'VMI mover running', timeoutMs: bootMs, intervalMs: 200 });
  assert.equal(stringAt(running, 'status', 'nodeName'), host1.name);
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { spec: { unschedulable: false } });
  const sourceConsole = await LabConsole.open(cluster, 'mover');
  t.after(() => { sourceConsole.close(); });
  await eventually(() => sourceConsole.output().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
  sourceConsole.type(counterLoop);
  await eventually(() => counters(sourceConsole.output()).some((n) => n >= 3), { what: 'the counter to reach 3', timeoutMs: 60_000, intervalMs: 200 });

  await t.test('the VMI says it can migrate (LiveMigratable True)', async () => {
    await eventually(async () => {
      const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', 'mover');
      const conditions = (recordAt(vmi, 'status')?.conditions ?? []) as { type?: string; status?: string }[];
      return conditions.some((c) => c.type === 'LiveMigratable' && c.status === 'True') || undefined;
    }, { what: 'LiveMigratable True on mover', timeoutMs: 30_000 });
  });

  let firstMigration: KObject | undefined;
  await t.test('vireo migrate moves the guest host-1 → host-2; the counter goes on, the disk is intact, the source QEMU is gone', async (st) => {
    const sourcePids = qemuPidsUnder(dirOf(host1));
    assert.equal(sourcePids.length, 1, 'one QEMU on host-1');
    const out = await vireo(['migrate', 'mover'], kc);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /VM mover was scheduled to migrate/);
    const done = await eventually(async () => {
      const [m] = await migrationsOf('mover');
      const phase = stringAt(m, 'status', 'phase');
      return phase === 'Succeeded' || phase === 'Failed' ? m : undefined;
    }, { what: 'the migration to end', timeoutMs: 240_000, intervalMs: 300 });
    assert.equal(stringAt(done, 'status', 'phase'), 'Succeeded', JSON.stringify(done.status));
    firstMigration = done;
    const phases = ((recordAt(done, 'status')?.phaseTransitionTimestamps ?? []) as { phase?: string }[]).map((p) => p.phase);
    assert.deepEqual(phases, ['Pending', 'Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running', 'Succeeded']);
    const downtime = Number(done.metadata.annotations?.['vireo.io/migration-downtime-ms']);
    assert.ok(Number.isFinite(downtime) && downtime >= 0, `downtime annotation: ${JSON.stringify(done.metadata.annotations)}`);
    st.diagnostic(`downtime ${downtime} ms, total ${done.metadata.annotations?.['vireo.io/migration-total-time-ms'] ?? '?'} ms (QEMU's figures)`);

    const vmi = await client.get(resources.virtualMachineInstances, 'default', 'mover');
    assert.equal(stringAt(vmi, 'status', 'nodeName'), host2.name);
    assert.equal(vmi.metadata.labels?.['kubevirt.io/nodeName'], host2.name);
    assert.equal(stringAt(vmi, 'status', 'migrationMethod'), 'BlockMigration');
    const state = recordAt(vmi, 'status', 'migrationState') ?? {};
    assert.equal(state.sourceNode, host1.name);
    assert.equal(state.targetNode, host2.name);
    assert.equal(state.targetNodeAddress, host2.address);
    assert.equal(state.migrationUid, done.metadata.uid);
    assert.equal(state.mode, 'PreCopy');
    assert.equal(recordAt(state, 'migrationConfiguration')?.disableTLS, false, 'migrated over TLS, KubeVirt\'s default');
    assert.equal(state.completed, true);
    assert.notEqual(state.failed, true);
    assert.equal(typeof state.startTimestamp, 'string');
    assert.equal(typeof state.endTimestamp, 'string');

    // The target's agent (virt-handler on host-2) recorded KubeVirt's PreparingTarget Events on the VMI, as real kubectl shows them.
    const targetEvents = await eventually(async () => {
      const shown = await kubectl(['get', 'events', '-n', 'default', '--field-selector', `involvedObject.kind=VirtualMachineInstance,involvedObject.name=mover,reason=PreparingTarget`, '-o', 'json'], kc);
      assert.equal(shown.code, 0, shown.stderr);
      const items = (JSON.parse(shown.stdout) as { items: { type?: string; message?: string; count?: number; source?: { component?: string; host?: string }; involvedObject?: { uid?: string } }[] }).items;
      return items.length === 2 ? items : undefined;
    }, { what: 'the target\'s two PreparingTarget Events on VMI mover', timeoutMs: 15_000 });
    for (const event of targetEvents) {
      assert.deepEqual([event.type, event.count, event.source?.component, event.source?.host, event.involvedObject?.uid], ['Normal', 1, 'virt-handler', host2.name, vmi.metadata.uid]);
    }
    const messages = targetEvents.map((e) => e.message ?? '').sort();
    assert.match(messages[0] ?? '', new RegExp(`^migration target listening at ${host2.address.replace(/\./g, '\\.')}, port \\d+ for the migration stream and \\d+ for the disks$`));
    assert.match(messages[1] ?? '', new RegExp(`^migration target prepared on node ${host2.name} for migration ${done.metadata.uid ?? '?'}`));

    await eventually(() => qemuPidsUnder(dirOf(host1)).length === 0 || undefined, { what: 'the source QEMU to be gone', timeoutMs: 30_000 });
    assert.equal(qemuPidsUnder(dirOf(host2)).length, 1, 'one QEMU on host-2');
    await eventually(async () => stringAt(await client.get(resources.virtualMachineInstances, 'default', 'mover'), 'status', 'phase') === 'Running' || undefined, { what: 'the VMI reported Running by host-2', timeoutMs: 30_000 });

    const before = counters(sourceConsole.output());
    const lastBefore = Math.max(...before);
    const targetConsole = await LabConsole.open(cluster, 'mover');
    t.after(() => { targetConsole.close(); });
    await eventually(() => counters(targetConsole.output()).some((n) => n >= lastBefore + 3), { what: 'the counter to go on on host-2', timeoutMs: 60_000, intervalMs: 200 });
    const after = counters(targetConsole.output());
    const seen = new Set([...before, ...after]);
    const top = Math.max(...after);
    const missing = [...Array(top).keys()].map((i) => i + 1).filter((n) => !seen.has(n));
    assert.deepEqual(missing, [], `no count missing between the source's and the target's console (source up to ${lastBefore}, target from ${Math.min(...after)})`);
    assert.ok(after.every((n, i) => i === 0 || n > (after[i - 1] ?? 0)), `the counter never resets on the target: ${after.join(' ')}`);
    assert.ok(Math.min(...after) > 3, 'the target continues the count, it does not start it again');

    const from = targetConsole.output().length;
    targetConsole.type(verifyCommand(lastBefore));
    const verdict = await eventually(() => /bad=(\d+) checked=\d+/.exec(targetConsole.output().slice(from)) ?? undefined, { what: 'the disk check on host-2', timeoutMs: 120_000, intervalMs: 300 });
    assert.equal(verdict[1], '0', `every record 1..${lastBefore} written on host-1 is on host-2's disk`);
  });

  await t.test('vireo migrate-cancel half-way leaves the guest running at the source; the target QEMU is gone', async () => {
    assert.ok(firstMigration !== undefined, 'the first migration ran');
    await client.create({ group: 'migrations.kubevirt.io', version: 'v1alpha1', plural: 'migrationpolicies', namespaced: false }, {
      apiVersion: 'migrations.kubevirt.io/v1alpha1',
      kind: 'MigrationPolicy',
      metadata: { name: 'slow' },
      spec: { selectors: { virtualMachineInstanceSelector: { app: 'mover' } }, bandwidthPerMigration: '1Mi' },
    });
    const out = await vireo(['migrate', 'mover'], kc);
    assert.equal(out.code, 0, out.stderr);
    const migrating = await eventually(async () => {
      const m = (await migrationsOf('mover')).find((x) => x.metadata.uid !== firstMigration?.metadata.uid);
      return ['Running', 'Failed', 'Succeeded'].includes(stringAt(m, 'status', 'phase') ?? '') ? m : undefined;
    }, { what: 'the slow migration to run', timeoutMs: 120_000, intervalMs: 200 });
    assert.equal(stringAt(migrating, 'status', 'phase'), 'Running', `the slow migration ended before it could be cancelled: ${JSON.stringify(migrating.status)}`);
    // host-1 now runs the waiting target QEMU.
    assert.equal(qemuPidsUnder(dirOf(host1)).length, 1, 'the target QEMU waits on host-1');
    // TLS by default: the target's NBD server takes only TLS clients with a certificate of the cluster CA; a plain one is turned away.
    const target = parseMigrationTarget(JSON.parse(migrating.metadata.annotations?.['vireo.io/migration-target'] ?? '{}'));
    const plain = await run('qemu-img', ['info', '--image-opts', `driver=nbd,host=${target.address},port=${target.nbdPort},export=${target.exports[0] ?? ''}`]).then(() => '', (err: unknown) => String((err as { stderr?: string }).stderr ?? err));
    assert.match(plain, /TLS/, 'a plain NBD client is refused by the TLS-only export');
    const vmiMid = await client.get(resources.virtualMachineInstances, 'default', 'mover');
    assert.equal(recordAt(vmiMid, 'status', 'migrationState')?.migrationPolicyName, 'slow');
    const second = await vireo(['migrate', 'mover'], kc);
    assert.notEqual(second.code, 0, 'a second migration of the same VMI is refused');
    assert.match(second.stderr, /in-flight migration detected/);
    const cancel = await vireo(['migrate-cancel', 'mover'], kc);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.match(cancel.stdout, /was scheduled to migrate-cancel/);
    await eventually(async () => (await client.tryGet(resources.virtualMachineInstanceMigrations, 'default', migrating.metadata.name ?? '')) === undefined || undefined, { what: 'the cancelled migration to go', timeoutMs: 60_000 });
    const vmi = await client.get(resources.virtualMachineInstances, 'default', 'mover');
    assert.equal(stringAt(vmi, 'status', 'nodeName'), host2.name, 'the VMI stays on host-2');
    const state = recordAt(vmi, 'status', 'migrationState') ?? {};
    assert.equal(state.migrationUid, migrating.metadata.uid);
    assert.equal(state.abortStatus, 'Succeeded');
    assert.equal(state.failed, true);
    assert.notEqual(state.completed, true);
    await eventually(() => qemuPidsUnder(dirOf(host1)).length === 0 || undefined, { what: 'the target QEMU on host-1 to be gone', timeoutMs: 30_000 });
    assert.equal(qemuPidsUnder(dirOf(host2)).length, 1, 'the guest still runs on host-2');
    const console = await LabConsole.open(cluster, 'mover');
    t.after(() => { console.close(); });
    const now = Math.max(...counters(console.output()));
    await eventually(() => counters(console.output()).some((n) => n >= now + 3) || undefined, { what: 'the counter to go on at the source', timeoutMs: 60_000, intervalMs: 200 });
    assert.equal(stringAt(await client.get(resources.virtualMachineInstances, 'default', 'mover'), 'status', 'phase'), 'Running');
  });

  await t.test('a VMI with the bridge binding on the pod network is not migratable, and its migration is refused saying why', async () => {
    const vmi = moverVmi('pod-guest');
    const spec = vmi.spec as Record<string, unknown>;
    spec.networks = [{ name: 'default', pod: {} }];
    const domain = spec.domain as { devices: Record<string, unknown> };
    domain.devices.interfaces = [{ name: 'default', bridge: {} }];
    delete domain.devices.autoattachPodInterface;
    await client.create(resources.virtualMachineInstances, vmi);
    await eventually(async () => {
      const found = await client.tryGet(resources.virtualMachineInstances, 'default', 'pod-guest');
      if (stringAt(found, 'status', 'phase') === 'Failed') throw new Error(`VMI pod-guest failed: ${JSON.stringify(found?.status)}`);
      const conditions = (recordAt(found, 'status')?.conditions ?? []) as { type?: string; status?: string; reason?: string; message?: string }[];
      const c = conditions.find((x) => x.type === 'LiveMigratable');
      return c?.status === 'False' && c.reason === 'InterfaceNotLiveMigratable' && /bridge binding/.test(c.message ?? '') ? c : undefined;
    }, { what: 'LiveMigratable False on the pod-network guest', timeoutMs: bootMs, intervalMs: 300 });
    const out = await vireo(['migrate', 'pod-guest'], kc);
    assert.notEqual(out.code, 0, 'the migration is refused');
    assert.match(out.stderr, /Cannot migrate VMI, Reason: InterfaceNotLiveMigratable, Message: interface default on the pod network uses the bridge binding.*use the masquerade binding/);
    assert.deepEqual(await migrationsOf('pod-guest'), []);
    // Gone only once its agent tore its network sandbox down: nothing of it outlives the lab.
    await client.delete(resources.virtualMachineInstances, 'default', 'pod-guest');
    await eventually(async () => (await client.tryGet(resources.virtualMachineInstances, 'default', 'pod-guest')) === undefined || undefined, { what: 'the pod-network guest to be gone', timeoutMs: 60_000 });
  });
});
