/**
 * `vireo drain`, `cordon` and `uncordon` end to end: a real `vireo server`
 * process (its own node and agent) and a real `vireo agent` process for
 * node-b that joined with a token, real QEMUs of the blank image (SeaBIOS,
 * no OS), the real kubectl. The drain cordons node-b and refuses, before
 * stopping anything, a LiveMigrate VMI (live migration does not exist yet)
 * and a VMI no controller owns (without --force); with --force it stops
 * the others: a VM with runStrategy Always comes back Running on the
 * server's node, a bare VMI is gone, and an External VMI is marked with
 * status.evacuationNodeName and left for its external controller (the
 * drain times out naming it). Draining a drained node succeeds at once;
 * an unknown node is a clear error; uncordon makes it schedulable again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

function has(binary: string): boolean {
  return spawnSync('which', [binary]).status === 0;
}

const skip = !has('qemu-system-x86_64') || !has('qemu-img') ? 'qemu-system-x86_64 and qemu-img are needed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

const root = mkdtempSync(join(tmpdir(), 'vd-'));
const agentDir = join(root, 'b');
let server: ServerProcess | undefined;
let agent: AgentProcess | undefined;
let client: HttpClient;
let serverNode = '';
const kc = (): { kubeconfig: string } => ({ kubeconfig: server?.kubeconfig ?? '' });
const cli = (args: string[], timeoutMs = 60_000): ReturnType<typeof vireo> => vireo(args, { ...kc(), timeoutMs });

/** A VM of the blank image that runs Always; `evictionStrategy` on its template when given. */
function vm(name: string, evictionStrategy?: string): KObject {
  const template = vmiManifest(name, evictionStrategy === undefined ? {} : { spec: { evictionStrategy } });
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: { runStrategy: 'Always', template: { metadata: { labels: { app: name } }, spec: template.spec } },
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
  for (const name of ['keep', 'live']) await client.delete(resources.virtualMachines, 'default', name).catch(() => undefined);
  for (const name of ['solo', 'ext']) await client.delete(resources.virtualMachineInstances, 'default', name).catch(() => undefined);
  await eventually(async () => (await client.list(resources.virtualMachineInstances)).items.length === 0, { timeoutMs: 60_000, what: 'every VMI to go' }).catch(() => undefined);
  await agent?.stop();
  server?.child.kill('SIGTERM');
  await server?.exited;
  client.close();
  // What a failure left: no QEMU of this test may outlive it.
  for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

test('vireo drain moves VMIs off a node by their eviction strategy', { skip, timeout: 900_000 }, async (t) => {
  await t.test('an unknown node is a clear error', async () => {
    const out = await cli(['drain', 'no-such-node']);
    assert.equal(out.code, 3, out.stderr);
    assert.match(out.stderr, /node no-such-node not found: kubectl get nodes lists the nodes/);
  });

  await t.test('three guests on node-b: a VM (default strategy None), a LiveMigrate VM, a bare VMI', async () => {
    // The server's node cordoned for a moment, so that everything lands on node-b.
    assert.equal((await cli(['cordon', serverNode])).code, 0);
    await client.create(resources.virtualMachines, vm('keep'));
    await client.create(resources.virtualMachines, vm('live', 'LiveMigrate'));
    await client.create(resources.virtualMachineInstances, vmiManifest('solo'));
    for (const name of ['keep', 'live', 'solo']) await runningOn(name, 'node-b', `${name} to run on node-b`);
    const uncordoned = await cli(['uncordon', serverNode]);
    assert.match(uncordoned.stdout, new RegExp(`node/${serverNode} uncordoned`));
  });

  await t.test('LiveMigrate and a bare VMI without --force: refused before anything stops, the node stays cordoned', async () => {
    const before = await vmiOf('keep');
    const out = await cli(['drain', 'node-b']);
    assert.equal(out.code, 2, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /^node\/node-b cordoned$/m);
    assert.match(out.stderr, /cannot drain node node-b \(it stays cordoned; nothing was stopped\)/);
    assert.match(out.stderr, /virtualmachineinstance default\/live has eviction strategy LiveMigrate \(from its spec\.evictionStrategy\), and live migration is not available yet: set its evictionStrategy to None or LiveMigrateIfPossible .* or stop it \(vireo stop VM\)/);
    assert.match(out.stderr, /virtualmachineinstance default\/solo has no controller .* drain with --force/);
    assert.doesNotMatch(out.stdout, /evicting/);
    const node = await kubectl(['get', 'node', 'node-b', '--no-headers'], kc());
    assert.match(node.stdout, /^node-b\s+Ready,SchedulingDisabled\s/);
    const after = await vmiOf('keep');
    assert.equal(after?.metadata.uid, before?.metadata.uid, 'nothing was stopped');
    assert.equal(phase(after ?? { apiVersion: '', kind: '', metadata: {} }), 'Running');
  });

  await t.test('--dry-run=client says what it would do and changes nothing', async () => {
    const stopped = await cli(['stop', 'live']);
    assert.equal(stopped.code, 0, stopped.stderr);
    await eventually(async () => (await vmiOf('live')) === undefined, { timeoutMs: 60_000, what: 'live to stop' });
    // An External VMI tolerates the cordon (as a DaemonSet's pods do), so it still lands on node-b.
    await client.create(resources.virtualMachineInstances, vmiManifest('ext', {
      spec: {
        evictionStrategy: 'External',
        nodeSelector: { 'kubernetes.io/hostname': 'node-b' },
        tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }],
      },
    }));
    await runningOn('ext', 'node-b', 'ext to run on node-b');
    const out = await cli(['drain', 'node-b', '--force', '--dry-run']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^node\/node-b already cordoned$/m);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/keep \(dry run\)$/m);
    assert.match(out.stdout, /^virtualmachineinstance default\/ext has eviction strategy External: marked status\.evacuationNodeName=node-b .* \(dry run\)$/m);
    assert.match(out.stdout, /^node\/node-b drained \(dry run\)$/m);
    assert.equal(stringAt(await vmiOf('ext') ?? { apiVersion: '', kind: '', metadata: {} }, 'status', 'evacuationNodeName'), undefined);
    assert.equal(phase(await vmiOf('solo') ?? { apiVersion: '', kind: '', metadata: {} }), 'Running');
    const server = await cli(['drain', 'node-b', '--dry-run=server']);
    assert.equal(server.code, 2);
    assert.match(server.stderr, /--dry-run=server is not supported: .*use --dry-run=client/);
  });

  await t.test('--force: the VM comes back on the server\'s node, the bare VMI is gone, the External one is marked and left', async () => {
    const keepUid = (await vmiOf('keep'))?.metadata.uid;
    const out = await cli(['drain', 'node-b', '--force', '--grace-period', '0', '--timeout', '60s'], 120_000);
    assert.equal(out.code, 4, `${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/keep$/m);
    assert.match(out.stdout, /^evicting virtualmachineinstance default\/solo$/m);
    assert.match(out.stdout, /^virtualmachineinstance\/keep evicted$/m);
    assert.match(out.stdout, /^virtualmachineinstance\/solo evicted$/m);
    assert.match(out.stdout, /^virtualmachineinstance default\/ext has eviction strategy External: marked status\.evacuationNodeName=node-b/m);
    assert.match(out.stderr, /drain of node node-b did not complete within 60000 ms: still on the node: default\/ext \(External: waiting for its external controller\)/);
    const ext = await vmiOf('ext');
    assert.equal(stringAt(ext ?? { apiVersion: '', kind: '', metadata: {} }, 'status', 'evacuationNodeName'), 'node-b');
    assert.equal(phase(ext ?? { apiVersion: '', kind: '', metadata: {} }), 'Running', 'External: the drain does not stop it');
    assert.equal(await vmiOf('solo'), undefined, 'a bare VMI is just gone');
    const moved = await runningOn('keep', serverNode, 'keep to run again on the server\'s node');
    assert.notEqual(moved.metadata.uid, keepUid, 'a new VMI');
  });

  await t.test('once the external controller moved its VMI, draining the drained node succeeds at once', async () => {
    // Playing the external controller: it takes the VMI off node-b.
    await client.delete(resources.virtualMachineInstances, 'default', 'ext');
    const out = await cli(['drain', 'node-b', '--timeout', '60s'], 90_000);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^node\/node-b already cordoned$/m);
    assert.match(out.stdout, /node\/node-b drained\n$/);
    const again = await cli(['drain', 'node-b']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, 'node/node-b already cordoned\nnode/node-b drained\n');
    assert.deepEqual(qemuPidsUnder(agentDir), [], 'no guest left on node-b');
  });

  await t.test('uncordon makes node-b schedulable again', async () => {
    const out = await cli(['uncordon', 'node-b']);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stdout, 'node/node-b uncordoned\n');
    assert.match((await kubectl(['get', 'node', 'node-b', '--no-headers'], kc())).stdout, /^node-b\s+Ready\s/);
    assert.equal((await cli(['uncordon', 'node-b'])).stdout, 'node/node-b already uncordoned\n');
  });

  await t.test('node-b\'s agent, with its node credential, was refused nothing on the way', () => {
    assert.doesNotMatch(agent?.output() ?? '', /Forbidden|may not (create|update|patch|delete)/);
  });
});
