/**
 * Live migration of a VM whose data disk is a claim on a local volume
 * (src/controllers/migration/claims.ts, src/agent/migration/claim-copies.ts),
 * on lab hosts with a real TCG guest: a VM with a blank DataVolume from
 * its dataVolumeTemplates runs on host-1; the guest makes an ext2 file
 * system on it and a loop appends an increasing counter to a file there
 * (and prints it). A second VMI using the claim makes it not migratable,
 * saying why. A migration cancelled half-way leaves the claim untouched on
 * host-1 (the target's copy is gone). Then the VM moves host-1 → host-2:
 * the counter goes on, the file holds every count in order, the
 * PersistentVolume (kubectl) names host-2 and a path there, the source's
 * copy is gone, the DataVolume stays Succeeded, a user cannot point the
 * PV back (immutable for users); stopped and started, the
 * VM runs on host-2 and finds its data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore, TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { startLabCluster } from './support.js';
import { LabConsole, counters } from './lab-console.js';
import { labSkip } from './requirements.js';

const bootMs = 300_000;
const labLabel = 'vireo.io/migration-claims-lab';

/** A VM on the test guest's containerDisk with a blank 64 MiB DataVolume as its data disk (/dev/vdb); no network. */
function keeperVm(name: string): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      dataVolumeTemplates: [{ metadata: { name: `${name}-data` }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '64Mi' } } } } }],
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 0,
          nodeSelector: { [labLabel]: 'yes' },
          domain: {
            devices: { autoattachGraphicsDevice: false, autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }], interfaces: [] },
            memory: { guest: '128Mi' },
          },
          networks: [],
          volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }, { name: 'data', dataVolume: { name: `${name}-data` } }],
        },
      },
    },
  };
}

/** Each second: append N to /mnt/data/counter, sync, then print `count N`. */
const counterLoop = 'mke2fs -q /dev/vdb && mkdir -p /mnt/data && mount /dev/vdb /mnt/data && (i=0; while true; do i=$((i+1)); echo $i >> /mnt/data/counter; sync; echo "count $i"; sleep 1; done) &';

/** Prints `bad=B lines=L last=N`: B lines of the counter file that are not their line number. */
const verifyCommand = 'awk \'$1!=NR{b++} {l=$1} END{print "bad=" b+0 " lines=" NR " last=" l}\' /mnt/data/counter';

function conditionOf(vmi: KObject | undefined, type: string): { status?: string; reason?: string; message?: string } | undefined {
  const conditions = (recordAt(vmi, 'status')?.conditions ?? []) as { type?: string; status?: string; reason?: string; message?: string }[];
  return conditions.find((c) => c.type === type);
}

test('a VM with a claim on a local volume migrates with its data; a cancelled migration leaves the claim where it was', { skip: labSkip, timeout: 900_000 }, async (t) => {
  const began = Date.now();
  const elapsed = (what: string): void => { t.diagnostic(`${what} after ${((Date.now() - began) / 1000).toFixed(1)} s`); };
  const cluster = await startLabCluster({ hosts: 3 });
  elapsed('lab cluster up');
  t.after(() => cluster.close());
  const { client, lab, kc } = cluster;
  const [, host1, host2] = lab.hosts;
  assert.ok(host1 !== undefined && host2 !== undefined);
  const dirOf = (host: { name: string }): string => join(cluster.root, host.name);
  await Promise.all(cluster.agents.map((agent) => importTestGuest(new ImageStore(join(agent.dataDir, 'images')))));
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } }).catch(() => undefined);
  // The VM and its volume start on host-1: host-2 takes guests only once it runs.
  await client.patch(resources.nodes, undefined, host1.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } } });
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } }, spec: { unschedulable: true } });

  elapsed('test guest imported');
  await client.create(resources.virtualMachines, keeperVm('keeper'));
  const vmiRunning = async (): Promise<KObject> => eventually(async () => {
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', 'keeper');
    if (stringAt(vmi, 'status', 'phase') === 'Failed') throw new Error(`VMI keeper failed: ${JSON.stringify(vmi?.status)}`);
    return stringAt(vmi, 'status', 'phase') === 'Running' ? vmi : undefined;
  }, { what: 'VMI keeper running', timeoutMs: bootMs, intervalMs: 200 });
  const running = await vmiRunning();
  assert.equal(stringAt(running, 'status', 'nodeName'), host1.name);
  elapsed('VM running');
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { spec: { unschedulable: false } });
  const dvPhase = async (): Promise<string | undefined> => stringAt(await client.get(resources.dataVolumes, 'default', 'keeper-data'), 'status', 'phase');
  assert.equal(await dvPhase(), 'Succeeded');
  const claim = await client.get(resources.persistentVolumeClaims, 'default', 'keeper-data');
  const pvName = stringAt(claim, 'spec', 'volumeName') ?? '';
  const sourcePv = await client.get(resources.persistentVolumes, undefined, pvName);
  const sourcePath = stringAt(sourcePv, 'spec', 'local', 'path') ?? '';
  assert.ok(sourcePath.startsWith(dirOf(host1)) && existsSync(sourcePath), `the volume is a directory of host-1: ${sourcePath}`);
  // Where host-2's agent makes its copy: the same place under its own data directory.
  const targetPath = join(dirOf(host2), sourcePath.slice(dirOf(host1).length));

  const sourceConsole = await LabConsole.open(cluster, 'keeper');
  t.after(() => { sourceConsole.close(); });
  await eventually(() => sourceConsole.output().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
  elapsed('guest ready');
  sourceConsole.type(counterLoop);
  await eventually(() => counters(sourceConsole.output()).some((n) => n >= 3), { what: 'the counter to reach 3 on the claim\'s file system', timeoutMs: 60_000, intervalMs: 200 });

  await t.test('LiveMigratable follows the claim: False while another VMI uses it (a migration is refused saying why), True again once it is gone', async () => {
    const condition = async (want: (c: ReturnType<typeof conditionOf>) => boolean, what: string): Promise<ReturnType<typeof conditionOf>> =>
      eventually(async () => {
        const c = conditionOf(await client.tryGet(resources.virtualMachineInstances, 'default', 'keeper'), 'LiveMigratable');
        return want(c) ? c : undefined;
      }, { what, timeoutMs: 30_000 });
    await condition((c) => c?.status === 'True', 'LiveMigratable True on keeper');
    // A VMI that never runs (no node matches it) but would write the same volume when it did.
    await client.create(resources.virtualMachineInstances, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'sharer', namespace: 'default' },
      spec: { nodeSelector: { 'vireo.io/no-such-node': 'yes' }, domain: { devices: { autoattachPodInterface: false, disks: [{ name: 'data', disk: { bus: 'virtio' } }] }, memory: { guest: '64Mi' } }, networks: [], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'keeper-data' } }] },
    });
    const refused = await condition((c) => c?.status === 'False', 'LiveMigratable False while sharer uses the claim');
    assert.equal(refused?.reason, 'DisksNotLiveMigratable');
    assert.match(refused?.message ?? '', /claim keeper-data\) is also used by VMI sharer: .*stop it to migrate/);
    const out = await vireo(['migrate', 'keeper'], kc);
    assert.notEqual(out.code, 0, 'the migration is refused');
    assert.match(out.stderr, /Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: volume data \(claim keeper-data\) is also used by VMI sharer/);
    await client.delete(resources.virtualMachineInstances, 'default', 'sharer');
    await condition((c) => c?.status === 'True', 'LiveMigratable True again');
  });

  const migrationsOf = async (): Promise<KObject[]> => (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items.filter((m) => stringAt(m, 'spec', 'vmiName') === 'keeper');

  await t.test('a migration cancelled half-way leaves the claim on host-1 untouched; host-2\'s copy is gone', async () => {
    const policies = { group: 'migrations.kubevirt.io', version: 'v1alpha1', plural: 'migrationpolicies', namespaced: false };
    await client.create(policies, { apiVersion: 'migrations.kubevirt.io/v1alpha1', kind: 'MigrationPolicy', metadata: { name: 'slow' }, spec: { selectors: { virtualMachineInstanceSelector: { app: 'keeper' } }, bandwidthPerMigration: '1Mi' } });
    const out = await vireo(['migrate', 'keeper'], kc);
    assert.equal(out.code, 0, out.stderr);
    const migrating = await eventually(async () => {
      const [m] = await migrationsOf();
      return ['Running', 'Failed', 'Succeeded'].includes(stringAt(m, 'status', 'phase') ?? '') ? m : undefined;
    }, { what: 'the slow migration to run', timeoutMs: 120_000, intervalMs: 200 });
    assert.equal(stringAt(migrating, 'status', 'phase'), 'Running', `the slow migration ended before it could be cancelled: ${JSON.stringify(migrating.status)}`);
    // Read when the source started: the next migration runs at full speed.
    await client.delete(policies, undefined, 'slow');
    assert.ok(existsSync(targetPath), `host-2 made its copy of the claim's volume at ${targetPath}`);
    const cancel = await vireo(['migrate-cancel', 'keeper'], kc);
    assert.equal(cancel.code, 0, cancel.stderr);
    await eventually(async () => (await migrationsOf()).length === 0 || undefined, { what: 'the cancelled migration to go', timeoutMs: 60_000 });
    await eventually(() => qemuPidsUnder(dirOf(host2)).length === 0 || undefined, { what: 'the target QEMU on host-2 to be gone', timeoutMs: 30_000 });
    // The target's abort may finish after the migration is gone (the controller waits for it only so long on a loaded machine).
    await eventually(() => !existsSync(targetPath) || undefined, { what: 'host-2\'s copy of the volume to be removed', timeoutMs: 30_000 });
    const pv = await client.get(resources.persistentVolumes, undefined, pvName);
    assert.deepEqual(pv.spec, sourcePv.spec, 'the PersistentVolume still names host-1 and its path there');
    assert.ok(existsSync(sourcePath), 'the volume on host-1 is still there');
    const vmi = await client.get(resources.virtualMachineInstances, 'default', 'keeper');
    assert.equal(stringAt(vmi, 'status', 'nodeName'), host1.name);
    const now = Math.max(...counters(sourceConsole.output()));
    await eventually(() => counters(sourceConsole.output()).some((n) => n >= now + 2) || undefined, { what: 'the counter to go on at host-1', timeoutMs: 60_000, intervalMs: 200 });
  });

  let lastBeforeStop = 0;
  await t.test('vireo migrate moves the VM and its claim host-1 → host-2: the counter goes on, the file is whole, the PV names host-2, host-1\'s copy is gone', async () => {
    const out = await vireo(['migrate', 'keeper'], kc);
    assert.equal(out.code, 0, out.stderr);
    const done = await eventually(async () => {
      const [m] = await migrationsOf();
      const phase = stringAt(m, 'status', 'phase');
      return phase === 'Succeeded' || phase === 'Failed' ? m : undefined;
    }, { what: 'the migration to end', timeoutMs: 240_000, intervalMs: 300 });
    assert.equal(stringAt(done, 'status', 'phase'), 'Succeeded', JSON.stringify(done.status));
    const vmi = await client.get(resources.virtualMachineInstances, 'default', 'keeper');
    assert.equal(stringAt(vmi, 'status', 'nodeName'), host2.name);
    assert.equal(stringAt(vmi, 'status', 'migrationMethod'), 'BlockMigration');

    const shown = await kubectl(['get', 'pv', pvName, '-o', 'jsonpath={.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]} {.spec.local.path} {.status.phase} {.spec.claimRef.name}'], kc);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout.trim(), `${host2.name} ${targetPath} Bound keeper-data`, 'kubectl shows the volume on host-2');
    // Only Vireo's controllers move a volume: for users its source and node affinity stay immutable, as in Kubernetes.
    const back = await kubectl(['patch', 'pv', pvName, '--type', 'merge', '-p', JSON.stringify({ spec: { local: { path: sourcePath } } })], kc);
    assert.notEqual(back.code, 0, 'a user cannot point the volume back at host-1');
    assert.match(back.stderr, /spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation/);
    const pvc = await client.get(resources.persistentVolumeClaims, 'default', 'keeper-data');
    assert.equal(stringAt(pvc, 'spec', 'volumeName'), pvName, 'the claim stays bound to its volume');
    assert.equal(stringAt(pvc, 'status', 'phase'), 'Bound');
    assert.equal(pvc.metadata.annotations?.['volume.kubernetes.io/selected-node'], host2.name);
    assert.equal(await dvPhase(), 'Succeeded', 'the DataVolume stays Succeeded');
    assert.ok(existsSync(targetPath), 'the volume is on host-2');
    await eventually(() => !existsSync(sourcePath) || undefined, { what: 'host-1\'s copy of the volume to be removed', timeoutMs: 30_000 });
    await eventually(() => qemuPidsUnder(dirOf(host1)).length === 0 || undefined, { what: 'the source QEMU to be gone', timeoutMs: 30_000 });

    const lastBefore = Math.max(...counters(sourceConsole.output()));
    const targetConsole = await LabConsole.open(cluster, 'keeper');
    t.after(() => { targetConsole.close(); });
    await eventually(() => counters(targetConsole.output()).some((n) => n >= lastBefore + 3), { what: 'the counter to go on on host-2', timeoutMs: 60_000, intervalMs: 200 });
    const after = counters(targetConsole.output());
    assert.ok(Math.min(...after) > 3 && after.every((n, i) => i === 0 || n > (after[i - 1] ?? 0)), `the counter continues, it does not start again: ${after.join(' ')}`);
    const from = targetConsole.output().length;
    targetConsole.type(verifyCommand);
    const verdict = await eventually(() => /bad=(\d+) lines=(\d+) last=(\d+)/.exec(targetConsole.output().slice(from)) ?? undefined, { what: 'the file check on host-2', timeoutMs: 60_000, intervalMs: 300 });
    assert.equal(verdict[1], '0', 'every line of the counter file is its count: nothing lost or torn by the move');
    assert.ok(Number(verdict[2]) >= lastBefore, `the file holds every count written on host-1 (${verdict[2]} lines, ${lastBefore} counted there)`);
    lastBeforeStop = Number(verdict[3]);
  });

  await t.test('stopped and started, the VM runs on host-2 with its data', async () => {
    assert.ok(lastBeforeStop > 0, 'the migration ran');
    const stop = await vireo(['stop', 'keeper'], kc);
    assert.equal(stop.code, 0, stop.stderr);
    await eventually(async () => (await client.tryGet(resources.virtualMachineInstances, 'default', 'keeper')) === undefined || undefined, { what: 'the VMI to be gone', timeoutMs: 60_000 });
    const start = await vireo(['start', 'keeper'], kc);
    assert.equal(start.code, 0, start.stderr);
    const again = await vmiRunning();
    assert.equal(stringAt(again, 'status', 'nodeName'), host2.name, 'the VM starts where its volume now is');
    const console = await LabConsole.open(cluster, 'keeper');
    t.after(() => { console.close(); });
    await eventually(() => console.output().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready again', timeoutMs: bootMs, intervalMs: 200 });
    console.type('mkdir -p /mnt/data && mount /dev/vdb /mnt/data && echo "tail=$(tail -n 1 /mnt/data/counter)"');
    const tail = await eventually(() => /tail=(\d+)/.exec(console.output()) ?? undefined, { what: 'the counter file read after the restart', timeoutMs: 60_000, intervalMs: 300 });
    assert.ok(Number(tail[1]) >= lastBeforeStop, `the file system on host-2 has the counter up to ${tail[1]} (at least ${lastBeforeStop})`);
    assert.equal(qemuPidsUnder(dirOf(host1)).length, 0, 'nothing runs on host-1');
    assert.equal(existsSync(sourcePath), false, 'host-1 has no copy of the volume');
  });
});
