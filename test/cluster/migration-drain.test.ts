/**
 * `vireo drain` with evictionStrategy LiveMigrate on two lab hosts (the
 * server's host-0 and host-1), real QEMUs, the real evacuation and
 * migration controllers: a TCG guest without networks counting on its
 * console, and a VMI with a hostDisk, both LiveMigrate, run on host-1. The
 * drain of host-1 is refused while the hostDisk VMI is there, naming it and
 * its reason, before anything is touched (host-1 stays cordoned). Once it
 * is gone, with host-0 cordoned too, the drain's migration waits for a
 * target and the drain times out naming it and its phase; uncordon clears
 * the guest's mark, and once that migration is cancelled none follows.
 * Then the drain marks the guest with status.evacuationNodeName, the
 * evacuation controller makes a `kubevirt-evacuation-` migration (the
 * first fails: host-0 lacks the guest's image until then; the next comes
 * after KubeVirt's 20 s backoff), and the
 * drain ends when the same VMI (same uid, its counter going on) runs on
 * host-0; its mark is cleared, host-1 stays cordoned, no QEMU is left on
 * it. Uncordon makes host-1 schedulable again; KubeVirt's drain taint
 * (`kubevirt.io/drain:NoSchedule`, set with kubectl taint) on host-0 then
 * migrates the guest back to host-1 without any mark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { booleanAt, recordAt, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore, TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, ensureTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { blankImage, importBlankImage, qemuPidsUnder } from '../agent/support.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { vireo } from '../subresources/support.js';
import { LabConsole, consoleCounterLoop, counters } from './lab-console.js';
import { startLabCluster } from './support.js';
import { labSkip } from './requirements.js';

const skip = labSkip;

const bootMs = 300_000;

/** A LiveMigrate VMI without networks; `volumes` after its root disk. */
function liveMigrateVmi(name: string, image: string, extra: { volumes: unknown[]; disks: unknown[] }): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      evictionStrategy: 'LiveMigrate',
      terminationGracePeriodSeconds: 0,
      domain: {
        devices: {
          autoattachGraphicsDevice: false,
          autoattachPodInterface: false,
          disks: [{ name: 'root', disk: { bus: 'virtio' } }, ...extra.disks],
          interfaces: [],
        },
        memory: { guest: '128Mi' },
      },
      networks: [],
      volumes: [{ name: 'root', containerDisk: { image } }, ...extra.volumes],
    },
  };
}

test('vireo drain live-migrates a LiveMigrate VMI off the node, and a LiveMigrate VMI that cannot migrate blocks it', { skip, timeout: 600_000 }, async (t) => {
  const startedMs = Date.now();
  const elapsed = (): string => `${((Date.now() - startedMs) / 1000).toFixed(1)} s`;
  const cluster = await startLabCluster({ hosts: 2 });
  t.after(() => cluster.close());
  const { client, lab, kc, serverNode } = cluster;
  t.diagnostic(`lab cluster up: ${elapsed()}`);
  const host1 = lab.hosts[1];
  assert.ok(host1 !== undefined);
  const host1Dir = join(cluster.root, host1.name);
  const serverImages = new ImageStore(join(cluster.root, 'server', 'images'));
  const host1Images = new ImageStore(join(host1Dir, 'images'));
  // host-0 gets the guest's image only after the first migration there failed for the lack of it.
  const guest = await ensureTestGuest();
  await Promise.all([host1Images.importFiles(TEST_GUEST_IMAGE, { disk: guest.disk, kernel: guest.kernel, initrd: guest.initrd }), importBlankImage(host1Images)]);
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } });
  const vmiOf = (name: string): Promise<KObject | undefined> => client.tryGet(resources.virtualMachineInstances, 'default', name);
  const runningOn = (name: string, node: string): Promise<KObject> => eventually(async () => {
    const vmi = await vmiOf(name);
    if (stringAt(vmi, 'status', 'phase') === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(vmi?.status)}`);
    return stringAt(vmi, 'status', 'phase') === 'Running' && stringAt(vmi, 'status', 'nodeName') === node ? vmi : undefined;
  }, { what: `VMI ${name} running on ${node}`, timeoutMs: bootMs, intervalMs: 200 });

  // Both land on host-1: the server's node is cordoned until they run.
  assert.equal((await vireo(['cordon', serverNode], kc)).code, 0);
  await client.create(resources.virtualMachineInstances, liveMigrateVmi('mover', TEST_GUEST_IMAGE, { disks: [{ name: 'data', disk: { bus: 'virtio' } }], volumes: [{ name: 'data', emptyDisk: { capacity: '16Mi' } }] }));
  await client.create(resources.virtualMachineInstances, liveMigrateVmi('pinned', blankImage, {
    disks: [{ name: 'host', disk: { bus: 'virtio' } }],
    volumes: [{ name: 'host', hostDisk: { path: join(cluster.root, 'host-disks', 'pinned.img'), type: 'DiskOrCreate', capacity: '16Mi' } }],
  }));
  t.diagnostic(`images imported, VMIs created: ${elapsed()}`);
  const mover = await runningOn('mover', host1.name);
  await runningOn('pinned', host1.name);
  t.diagnostic(`both VMIs running on ${host1.name}: ${elapsed()}`);
  assert.equal((await vireo(['uncordon', serverNode], kc)).code, 0);
  const console = await LabConsole.open(cluster, 'mover');
  t.after(() => { console.close(); });
  await eventually(() => console.output().includes(TEST_GUEST_READY_MARKER) || undefined, { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
  console.type(consoleCounterLoop);
  await eventually(() => counters(console.output()).some((n) => n >= 3) || undefined, { what: 'the counter to reach 3', timeoutMs: 60_000, intervalMs: 200 });
  t.diagnostic(`the guest counts: ${elapsed()}`);

  await t.test('a LiveMigrate VMI with a hostDisk blocks the drain, named with its reason; nothing is touched, host-1 stays cordoned', async () => {
    const out = await vireo(['drain', host1.name, '--timeout', '60s'], kc);
    assert.equal(out.code, 2, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, new RegExp(`^node/${host1.name} cordoned$`, 'm'));
    assert.match(out.stderr, new RegExp(`cannot drain node ${host1.name} \\(it stays cordoned; nothing was stopped\\)`));
    assert.match(out.stderr, /virtualmachineinstance default\/pinned has eviction strategy LiveMigrate \(from its spec\.evictionStrategy\) but is not live-migratable \(DisksNotLiveMigratable: cannot migrate VMI with non-shared HostDisk: volume host .*\), so it cannot be evicted: make it migratable, or set its evictionStrategy/);
    assert.doesNotMatch(out.stderr, /default\/mover/, 'the guest can migrate: it is not what blocks the drain');
    assert.doesNotMatch(out.stdout, /evicting/);
    assert.equal(stringAt(await vmiOf('mover'), 'status', 'evacuationNodeName'), undefined, 'the guest was not marked');
    assert.deepEqual((await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items, []);
    assert.equal(booleanAt(await client.get(resources.nodes, undefined, host1.name), 'spec', 'unschedulable'), true);
  });

  await t.test('with no node to move to, the drain times out naming the migration and its phase; uncordon clears the mark', async () => {
    await client.delete(resources.virtualMachineInstances, 'default', 'pinned');
    await eventually(async () => (await vmiOf('pinned')) === undefined || undefined, { what: 'the hostDisk VMI to be gone', timeoutMs: 60_000 });
    assert.equal((await vireo(['cordon', serverNode], kc)).code, 0);
    const out = await vireo(['drain', host1.name, '--timeout', '10s'], kc);
    assert.equal(out.code, 4, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/mover \(LiveMigrate: live migration; /m);
    assert.match(out.stderr, new RegExp(`drain of node ${host1.name} did not complete within 10000 ms: still on the node: default/mover \\(LiveMigrate: live migration: migration kubevirt-evacuation-[a-z0-9]+ (Pending|Scheduling)\\)\\. The node stays cordoned`));
    const marked = await client.get(resources.virtualMachineInstances, 'default', 'mover');
    assert.equal(stringAt(marked, 'status', 'evacuationNodeName'), host1.name);
    assert.equal(stringAt(marked, 'status', 'nodeName'), host1.name, 'still on host-1');
    const [waiting] = (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items;
    const uncordoned = await vireo(['uncordon', host1.name], kc);
    assert.equal(uncordoned.code, 0, uncordoned.stderr);
    assert.equal(uncordoned.stdout, `node/${host1.name} uncordoned\nvirtualmachineinstance default/mover: evacuation from node ${host1.name} cancelled (status.evacuationNodeName cleared); its migration ${waiting?.metadata.name ?? '?'} goes on (vireo migrate-cancel mover stops it)\n`);
    assert.equal(stringAt(await vmiOf('mover'), 'status', 'evacuationNodeName'), undefined);
    assert.equal((await vireo(['migrate-cancel', 'mover'], kc)).code, 0);
    await eventually(async () => (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items.length === 0 || undefined, { what: 'the cancelled migration to go', timeoutMs: 60_000 });
    // No mark, no new migration: the evacuation controller leaves the VMI alone.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.deepEqual((await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items, []);
    assert.equal(stringAt(await vmiOf('mover'), 'status', 'nodeName'), host1.name);
    assert.equal((await vireo(['uncordon', serverNode], kc)).code, 0);
  });

  await t.test('the drain live-migrates the guest to host-0 (after a failed migration and a backoff): the same VMI, its counter going on; host-1 is left cordoned and empty', async () => {
    const lastBefore = Math.max(...counters(console.output()));
    const draining = vireo(['drain', host1.name, '--timeout', '280s'], { ...kc, timeoutMs: 300_000 });
    // host-0 has no image of the guest's containerDisk yet: the target cannot be prepared, the migration fails.
    const failed = await eventually(async () => (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items.find((m) => stringAt(m, 'status', 'phase') === 'Failed'), { what: 'the first evacuation migration to fail', timeoutMs: 120_000, intervalMs: 200 });
    await serverImages.importFiles(TEST_GUEST_IMAGE, { disk: guest.disk, kernel: guest.kernel, initrd: guest.initrd });
    const out = await draining;
    assert.equal(out.code, 0, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, new RegExp(`^virtualmachineinstance default/mover: migration ${failed.metadata.name ?? '?'} Failed: .*not found in the node's image store.*; the evacuation controller tries again after a backoff$`, 'm'));
    assert.match(out.stdout, new RegExp(`^node/${host1.name} cordoned$`, 'm'));
    assert.match(out.stdout, new RegExp(`^evicting virtualmachineinstance default/mover \\(LiveMigrate: live migration; marked status\\.evacuationNodeName=${host1.name} for the evacuation controller\\)$`, 'm'));
    assert.match(out.stdout, /^virtualmachineinstance default\/mover: migration kubevirt-evacuation-[a-z0-9]+ (Pending|Scheduling|Scheduled|PreparingTarget|TargetReady|Running|Succeeded)$/m);
    assert.match(out.stdout, new RegExp(`^virtualmachineinstance/mover evicted \\(live-migrated to ${serverNode}\\)$`, 'm'));
    assert.match(out.stdout, new RegExp(`node/${host1.name} drained\\n$`));

    const moved = await client.get(resources.virtualMachineInstances, 'default', 'mover');
    assert.equal(moved.metadata.uid, mover.metadata.uid, 'the same VMI, not a new one');
    assert.equal(stringAt(moved, 'status', 'nodeName'), serverNode);
    assert.equal(stringAt(moved, 'status', 'phase'), 'Running');
    assert.equal(stringAt(moved, 'status', 'evacuationNodeName'), undefined, 'the mark is cleared once it left');
    // The VMI is handed over before the migration's last phase is written.
    const migrations = await eventually(async () => {
      const items = (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items;
      return items.every((m) => ['Succeeded', 'Failed'].includes(stringAt(m, 'status', 'phase') ?? '')) ? items : undefined;
    }, { what: 'the migration to end', timeoutMs: 30_000 });
    // Oldest first: the failed ones, then the one that moved it.
    const ordered = [...migrations].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
    const migration = ordered.at(-1);
    assert.ok(ordered.length >= 2, 'a new migration followed the failed one');
    assert.deepEqual(ordered.slice(0, -1).map((m) => stringAt(m, 'status', 'phase')), ordered.slice(0, -1).map(() => 'Failed'));
    for (const m of ordered) assert.match(m.metadata.name ?? '', /^kubevirt-evacuation-[a-z0-9]+$/);
    const failedAt = Date.parse(stringAt(recordsAt(failed, 'status', 'phaseTransitionTimestamps').find((p) => p.phase === 'Failed'), 'phaseTransitionTimestamp') ?? '');
    assert.ok(Date.parse(ordered[1]?.metadata.creationTimestamp ?? '') - failedAt >= 19_000, 'the next migration waited out the 20 s backoff');
    const backoff = await eventually(async () => (await client.list(resources.events, { namespace: 'default' })).items.find((e) => stringAt(e, 'reason') === 'MigrationBackoff' && stringAt(e, 'involvedObject', 'name') === 'mover'), { what: 'the MigrationBackoff Event on the VMI', timeoutMs: 30_000 });
    assert.match(stringAt(backoff, 'message') ?? '', new RegExp(`^1 evacuation migration\\(s\\) from node ${host1.name} failed: the next one starts in \\d+ s$`));
    assert.equal(migration?.metadata.annotations?.['kubevirt.io/evacuationMigration'], host1.name);
    assert.equal(stringAt(migration, 'spec', 'vmiName'), 'mover');
    assert.equal(stringAt(migration, 'status', 'phase'), 'Succeeded');
    assert.equal(recordAt(moved, 'status', 'migrationState')?.migrationUid, migration?.metadata.uid);
    assert.equal(booleanAt(await client.get(resources.nodes, undefined, host1.name), 'spec', 'unschedulable'), true, 'host-1 stays cordoned');
    await eventually(() => qemuPidsUnder(host1Dir).length === 0 || undefined, { what: 'no QEMU left on host-1', timeoutMs: 30_000 });

    // Not restarted: the loop the guest ran on host-1 goes on counting on host-0.
    const after = await LabConsole.open(cluster, 'mover');
    t.after(() => { after.close(); });
    await eventually(() => counters(after.output()).some((n) => n >= lastBefore + 3) || undefined, { what: 'the counter to go on on host-0', timeoutMs: 60_000, intervalMs: 200 });
    const seen = counters(after.output()).filter((n) => n > lastBefore);
    assert.ok(seen.every((n, i) => i === 0 || n > (seen[i - 1] ?? 0)), `the counter never resets: ${seen.join(' ')}`);
  });

  await t.test('uncordon makes host-1 schedulable again', async () => {
    const out = await vireo(['uncordon', host1.name], kc);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, `node/${host1.name} uncordoned\n`);
    assert.notEqual(booleanAt(await client.get(resources.nodes, undefined, host1.name), 'spec', 'unschedulable'), true);
  });

  await t.test('KubeVirt\'s drain taint (kubectl taint … kubevirt.io/drain:NoSchedule) on host-0 migrates the guest back to host-1', async () => {
    const tainted = await kubectl(['taint', 'node', serverNode, 'kubevirt.io/drain=draining:NoSchedule'], kc);
    assert.equal(tainted.code, 0, tainted.stderr);
    const back = await runningOn('mover', host1.name);
    assert.equal(back.metadata.uid, mover.metadata.uid, 'the same VMI again');
    const done = await eventually(async () => {
      const items = (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items;
      const found = items.find((m) => m.metadata.annotations?.['kubevirt.io/evacuationMigration'] === serverNode);
      return stringAt(found, 'status', 'phase') === 'Succeeded' ? found : undefined;
    }, { what: 'the taint\'s evacuation migration to succeed', timeoutMs: 30_000 });
    assert.match(done.metadata.name ?? '', /^kubevirt-evacuation-/);
    assert.equal(stringAt(back, 'status', 'evacuationNodeName'), undefined, 'the taint marks nothing');
    const untainted = await kubectl(['taint', 'node', serverNode, 'kubevirt.io/drain:NoSchedule-'], kc);
    assert.equal(untainted.code, 0, untainted.stderr);
    const after = await LabConsole.open(cluster, 'mover');
    t.after(() => { after.close(); });
    const now = Math.max(0, ...counters(after.output()));
    await eventually(() => counters(after.output()).some((n) => n >= now + 2) || undefined, { what: 'the counter to go on on host-1', timeoutMs: 60_000, intervalMs: 200 });
  });
});
