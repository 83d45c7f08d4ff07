/**
 * `vireo drain`, `cordon` and `uncordon` end to end: a real `vireo server`
 * process (its own node and agent) and a real `vireo agent` process for
 * node-b that joined with a token, real QEMUs of the blank image (SeaBIOS,
 * no OS; at most three at a time), the real kubectl. The drain cordons
 * node-b and refuses, before stopping anything, VMIs whose strategy is
 * LiveMigrate (here from the KubeVirt CR) but which cannot migrate (a
 * hostDisk), and a VMI no controller owns (without --force); with --force it
 * stops the others: VMs with runStrategy Always and RerunOnFailure come
 * back Running on the server's node (the RerunOnFailure one,
 * LiveMigrateIfPossible, cannot migrate: a hostDisk), a bare VMI is gone.
 * Live migration by a drain is test/cluster/migration-drain.test.ts. An External VMI
 * is marked with status.evacuationNodeName and left for its external
 * controller (the drain times out naming it, and finishes once it is
 * gone). Draining a drained node succeeds at once; an unknown node is a
 * clear error; uncordon makes it schedulable again. A VM whose disk is a
 * local volume of node-b stops, and its new VMI stays Pending with the
 * scheduler's reason and what to do.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { ImageStore } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { freePort, startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { vireo } from '../subresources/support.js';
import { importBlankImage, phase, qemuPidsUnder, vmiManifest } from './support.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = !hasBinary('qemu-system-x86_64') || !hasBinary('qemu-img') ? 'qemu-system-x86_64 and qemu-img are needed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

const root = mkdtempSync(join(tmpdir(), 'vd-'));
const agentDir = join(root, 'b');
let server: ServerProcess | undefined;
let agent: AgentProcess | undefined;
let client: HttpClient;
let serverNode = '';
const kc = (): { kubeconfig: string } => ({ kubeconfig: server?.kubeconfig ?? '' });
const cli = (args: string[], timeoutMs = 60_000): ReturnType<typeof vireo> => vireo(args, { ...kc(), timeoutMs });

/** A VM of the blank image with `runStrategy`; `spec` is added to its template's spec. */
function vm(name: string, runStrategy: string, spec: Record<string, unknown> = {}, extra: { volumes?: unknown[]; disks?: unknown[] } = {}): KObject {
  const template = vmiManifest(name, { spec, ...extra });
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: { runStrategy, template: { metadata: { labels: { app: name } }, spec: template.spec } },
  };
}

async function vmiOf(name: string): Promise<KObject | undefined> {
  return client.tryGet(resources.virtualMachineInstances, 'default', name);
}

async function runningOn(name: string, node: string, what: string): Promise<KObject> {
  // Three TCG guests starting on a machine shared with other test runs can take minutes.
  return eventually(async () => {
    const vmi = await vmiOf(name);
    return vmi !== undefined && phase(vmi) === 'Running' && stringAt(vmi, 'status', 'nodeName') === node ? vmi : undefined;
  }, { timeoutMs: 240_000, intervalMs: 200, what });
}

before(async () => {
  if (skip !== false) return;
  const serverDir = join(root, 's');
  await importBlankImage(new ImageStore(join(serverDir, 'images')));
  await importBlankImage(new ImageStore(join(agentDir, 'images')));
  server = await startServerProcess({ dataDir: serverDir, port: await freePort(), timeoutMs: 60_000 });
  client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  const created = await cli(['token', 'create']);
  assert.equal(created.code, 0, created.stderr);
  agent = await startAgentProcess({ join: { server: server.url, token: created.stdout.split('\n')[0] ?? '' }, dataDir: agentDir, nodeName: 'node-b', port: await freePort(), timeoutMs: 90_000 });
  serverNode = (await client.list(resources.nodes)).items.map((n) => n.metadata.name ?? '').find((n) => n !== 'node-b') ?? '';
  assert.notEqual(serverNode, '');
});

after(async () => {
  if (skip !== false) return;
  for (const name of ['keep', 'rerun', 'pinned']) await client.delete(resources.virtualMachines, 'default', name).catch(() => undefined);
  for (const name of ['solo', 'ext']) await client.delete(resources.virtualMachineInstances, 'default', name).catch(() => undefined);
  await eventually(async () => (await client.list(resources.virtualMachineInstances)).items.length === 0, { timeoutMs: 60_000, what: 'every VMI to go' }).catch(() => undefined);
  await client.delete(resources.dataVolumes, 'default', 'local-data').catch(() => undefined);
  await agent?.stop();
  server?.child.kill('SIGTERM');
  await server?.exited;
  client.close();
  // What a failure left: no QEMU of this test may outlive it.
  for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const none: KObject = { apiVersion: '', kind: '', metadata: {} };

/** A hostDisk (a file of the node): the VMI can never be live-migrated, whatever else learns to move. */
function hostDisk(name: string): { volumes: unknown[]; disks: unknown[] } {
  return { disks: [{ name: 'host', disk: { bus: 'virtio' } }], volumes: [{ name: 'host', hostDisk: { path: join(root, 'host-disks', `${name}.img`), type: 'DiskOrCreate', capacity: '16Mi' } }] };
}

test('vireo drain moves VMIs off a node by their eviction strategy', { skip, timeout: 900_000 }, async (t) => {
  await t.test('an unknown node is a clear error', async () => {
    const out = await cli(['drain', 'no-such-node']);
    assert.equal(out.code, 3, out.stderr);
    assert.match(out.stderr, /node no-such-node not found: kubectl get nodes lists the nodes/);
  });

  await t.test('three guests on node-b: an Always VM, a RerunOnFailure VM (LiveMigrateIfPossible), a bare VMI', async () => {
    // The server's node cordoned for a moment, so that everything lands on node-b.
    assert.equal((await cli(['cordon', serverNode])).code, 0);
    await client.create(resources.virtualMachines, vm('keep', 'Always'));
    await client.create(resources.virtualMachines, vm('rerun', 'RerunOnFailure', { evictionStrategy: 'LiveMigrateIfPossible' }, hostDisk('rerun')));
    await client.create(resources.virtualMachineInstances, vmiManifest('solo', hostDisk('solo')));
    for (const name of ['keep', 'rerun', 'solo']) await runningOn(name, 'node-b', `${name} to run on node-b`);
    const uncordoned = await cli(['uncordon', serverNode]);
    assert.match(uncordoned.stdout, new RegExp(`node/${serverNode} uncordoned`));
  });

  await t.test('LiveMigrate (from the KubeVirt CR) of a VMI that cannot migrate is refused before anything stops; the node stays cordoned', async () => {
    assert.equal((await kubectl(['create', 'namespace', 'kubevirt'], kc())).code, 0);
    await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { evictionStrategy: 'LiveMigrate' } } });
    const before = await vmiOf('keep');
    const out = await cli(['drain', 'node-b']);
    assert.equal(out.code, 2, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /^node\/node-b cordoned$/m);
    assert.match(out.stderr, /cannot drain node node-b \(it stays cordoned; nothing was stopped\)/);
    assert.match(out.stderr, /virtualmachineinstance default\/solo has eviction strategy LiveMigrate \(from the KubeVirt CR's spec\.configuration\.evictionStrategy\) but is not live-migratable \(DisksNotLiveMigratable: cannot migrate VMI with non-shared HostDisk: volume host .*\), so it cannot be evicted: make it migratable, or set its evictionStrategy to None or LiveMigrateIfPossible .* or stop it \(vireo stop VM\)/);
    assert.doesNotMatch(out.stderr, /default\/rerun/, 'its own LiveMigrateIfPossible wins over the cluster\'s LiveMigrate');
    assert.doesNotMatch(out.stdout, /evicting/);
    const node = await kubectl(['get', 'node', 'node-b', '--no-headers'], kc());
    assert.match(node.stdout, /^node-b\s+Ready,SchedulingDisabled\s/);
    const after = await vmiOf('keep');
    assert.equal(after?.metadata.uid, before?.metadata.uid, 'nothing was stopped');
    assert.equal(phase(after ?? none), 'Running');
  });

  await t.test('a bare VMI without --force is refused; --dry-run=client says what would happen and changes nothing', async () => {
    await client.patch(resources.kubeVirts, 'kubevirt', 'kubevirt', 'merge', { spec: { configuration: { evictionStrategy: 'None' } } });
    const refused = await cli(['drain', 'node-b']);
    assert.equal(refused.code, 2, `${refused.stdout}${refused.stderr}`);
    assert.match(refused.stdout, /^node\/node-b already cordoned$/m);
    assert.match(refused.stderr, /virtualmachineinstance default\/solo has no controller .* drain with --force/);
    assert.doesNotMatch(refused.stderr, /default\/keep/);
    const out = await cli(['drain', 'node-b', '--force', '--dry-run']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/keep \(dry run\)$/m);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/rerun \(LiveMigrateIfPossible: it cannot be live-migrated, so it stops and restarts elsewhere\) \(dry run\)$/m);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/solo \(dry run\)$/m);
    assert.match(out.stdout, /^node\/node-b drained \(dry run\)$/m);
    for (const name of ['keep', 'rerun', 'solo']) assert.equal(stringAt(await vmiOf(name) ?? none, 'status', 'nodeName'), 'node-b');
    const server = await cli(['drain', 'node-b', '--dry-run=server']);
    assert.equal(server.code, 2);
    assert.match(server.stderr, /--dry-run=server is not supported: .*use --dry-run=client/);
  });

  await t.test('--force: the Always and RerunOnFailure VMs come back on the server\'s node, the bare VMI is gone', async () => {
    const uids = { keep: (await vmiOf('keep'))?.metadata.uid, rerun: (await vmiOf('rerun'))?.metadata.uid };
    const out = await cli(['drain', 'node-b', '--force', '--grace-period', '0', '--timeout', '120s'], 180_000);
    assert.equal(out.code, 0, `${out.stdout}${out.stderr}`);
    for (const name of ['keep', 'rerun', 'solo']) {
      assert.match(out.stdout, new RegExp(`^evicting virtualmachineinstance default/${name}( \\(.*\\))?$`, 'm'));
      assert.match(out.stdout, new RegExp(`^virtualmachineinstance/${name} evicted$`, 'm'));
    }
    assert.match(out.stdout, /node\/node-b drained\n$/);
    assert.equal(await vmiOf('solo'), undefined, 'a bare VMI is just gone');
    for (const name of ['keep', 'rerun'] as const) {
      const moved = await runningOn(name, serverNode, `${name} to run again on the server's node`);
      assert.notEqual(moved.metadata.uid, uids[name], `a new VMI of ${name}`);
    }
  });

  await t.test('External: marked with status.evacuationNodeName and left; the drain waits for its external controller', async () => {
    // It tolerates the cordon (as a DaemonSet's pods do), so it lands on node-b.
    await client.create(resources.virtualMachineInstances, vmiManifest('ext', {
      spec: {
        evictionStrategy: 'External',
        nodeSelector: { 'kubernetes.io/hostname': 'node-b' },
        tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }],
      },
    }));
    await runningOn('ext', 'node-b', 'ext to run on node-b');
    const out = await cli(['drain', 'node-b', '--timeout', '5s']);
    assert.equal(out.code, 4, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /^virtualmachineinstance default\/ext has eviction strategy External: marked status\.evacuationNodeName=node-b for its external controller to move it$/m);
    assert.match(out.stderr, /drain of node node-b did not complete within 5000 ms: still on the node: default\/ext \(External: waiting for its external controller\)\. The node stays cordoned/);
    const ext = await vmiOf('ext');
    assert.equal(stringAt(ext ?? none, 'status', 'evacuationNodeName'), 'node-b');
    assert.equal(phase(ext ?? none), 'Running', 'the drain does not stop it');
    // A drain that waits, and the external controller taking the VMI off node-b meanwhile. The mark is cleared
    // first, so that the drain setting it again says it has seen the VMI.
    await client.patch(resources.virtualMachineInstances, 'default', 'ext', 'merge', { status: { evacuationNodeName: null } });
    const waiting = cli(['drain', 'node-b', '--timeout', '90s'], 120_000);
    await eventually(async () => stringAt(await vmiOf('ext') ?? none, 'status', 'evacuationNodeName') === 'node-b', { timeoutMs: 30_000, what: 'the drain to mark ext again' });
    await client.delete(resources.virtualMachineInstances, 'default', 'ext');
    const done = await waiting;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /^virtualmachineinstance\/ext evicted$/m);
    assert.match(done.stdout, /node\/node-b drained\n$/);
  });

  await t.test('draining a drained node succeeds at once; uncordon makes it schedulable again', async () => {
    const again = await cli(['drain', 'node-b']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'node/node-b already cordoned\nnode/node-b drained\n');
    assert.deepEqual(qemuPidsUnder(agentDir), [], 'no guest left on node-b');
    const out = await cli(['uncordon', 'node-b']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, 'node/node-b uncordoned\n');
    assert.match((await kubectl(['get', 'node', 'node-b', '--no-headers'], kc())).stdout, /^node-b\s+Ready\s/);
    assert.equal((await cli(['uncordon', 'node-b'])).stdout, 'node/node-b already uncordoned\n');
  });

  await t.test('a VM whose disk is a local volume of the drained node stops, and its new VMI stays Pending saying why', async () => {
    // The Always and RerunOnFailure VMs are done with: two guests fewer on the machine.
    for (const name of ['keep', 'rerun']) await client.delete(resources.virtualMachines, 'default', name);
    await client.create(resources.dataVolumes, {
      apiVersion: 'cdi.kubevirt.io/v1beta1',
      kind: 'DataVolume',
      metadata: { name: 'local-data', namespace: 'default', annotations: { 'volume.kubernetes.io/selected-node': 'node-b' } },
      spec: { source: { blank: {} }, storage: { resources: { requests: { storage: '16Mi' } } } },
    });
    await client.create(resources.virtualMachines, vm('pinned', 'Always', {}, { disks: [{ name: 'data', disk: { bus: 'virtio' } }], volumes: [{ name: 'data', dataVolume: { name: 'local-data' } }] }));
    await runningOn('pinned', 'node-b', 'pinned to run on node-b, where its volume is');
    const out = await cli(['drain', 'node-b', '--grace-period', '0', '--timeout', '120s'], 180_000);
    assert.equal(out.code, 0, `${out.stdout}${out.stderr}`);
    assert.match(out.stderr, /^warning: virtualmachineinstance default\/pinned uses claim default\/local-data, whose volume lives on node node-b only: a new VMI of it stays Pending \("volume node affinity conflict"\) until node-b is uncordoned$/m);
    assert.match(out.stdout, /^virtualmachineinstance\/pinned evicted$/m);
    const pending = await eventually(async () => {
      const vmi = await vmiOf('pinned');
      const scheduled = (vmi?.status as { conditions?: { type: string; reason?: string; message?: string }[] } | undefined)?.conditions?.find((c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable');
      return scheduled?.message;
    }, { timeoutMs: 60_000, what: 'the new VMI of pinned to be unschedulable' });
    assert.equal(pending, '0/2 nodes are available: 1 node(s) had volume node affinity conflict, 1 node(s) were unschedulable. Claim "local-data" is a local volume of node node-b, which is cordoned: uncordon node-b to run it there again (a local volume does not follow its VMI to another node).');
    assert.equal((await cli(['uncordon', 'node-b'])).code, 0);
    await runningOn('pinned', 'node-b', 'pinned to run again on node-b once it is uncordoned');
  });

  await t.test('node-b\'s agent, with its node credential, was refused nothing on the way', () => {
    assert.doesNotMatch(agent?.output() ?? '', /Forbidden|may not (create|update|patch|delete)/);
  });
});
