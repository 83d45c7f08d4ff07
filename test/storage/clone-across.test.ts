/**
 * DataVolume clones across nodes and across namespaces, end to end: a real
 * `vireo server` process (its own node and agent) and a real `vireo agent`
 * process for node-b, each with its own data directory. A DataVolume
 * imported on node-b is cloned into a claim on the server's node: the
 * server's agent copies it from node-b's agent endpoint (pinned
 * certificate, cluster token), the DataVolume goes CloneScheduled →
 * CloneInProgress with moving progress → Succeeded, and the copy's data is
 * the source's (`qemu-img compare`), the source unchanged. node-b's agent
 * stopped mid-copy makes the copy retry, never Succeed with part of the
 * data, and resume once the agent is back. A clone from another namespace
 * on one node is instant (copy-on-write) and carries CDI's
 * `k8s.io/CloneRequest` annotation instead of a `dataSource`; a claim of
 * the server's own node is copied to node-b through the API server's port.
 * A claim a running guest on node-b keeps writing is copied while the
 * guest runs on: the copy holds what the guest wrote before it.
 *
 * node-b's exports are rate-limited (VIREO_EXPORT_RATE_LIMIT) so a copy
 * of a few MiB lasts long enough to watch and to interrupt.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { booleanAt, numberAt, recordAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore, importTestGuest } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { localVolumeOf } from '../../src/storage/local/index.js';
import { startImageServer } from '../../src/testing/image-server.js';
import type { ImageServer } from '../../src/testing/image-server.js';
import { freePort, startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { pvcVm } from './support.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = !hasBinary('qemu-img') || !hasBinary('qemu-io') || !hasBinary('qemu-system-x86_64') ? 'qemu-img, qemu-io and qemu-system-x86_64 are needed (the agents check QEMU at start)' : false;

/** node-b sends an export at this many bytes a second. */
const rate = 512 * 1024;
const copyMs = 120_000;

const root = mkdtempSync(join(tmpdir(), 'vc-'));
const agentDir = join(root, 'b');
const image = join(root, 'source.qcow2');
let server: ServerProcess | undefined;
let agent: AgentProcess | undefined;
let agentPort = 0;
let client: HttpClient;
let images: ImageServer | undefined;
/** The node of `vireo server`'s own agent. */
let serverNode = '';

async function startNodeB(): Promise<AgentProcess> {
  agent = await startAgentProcess({ kubeconfig: server?.kubeconfig ?? '', dataDir: agentDir, nodeName: 'node-b', port: agentPort, timeoutMs: 60_000, env: { VIREO_EXPORT_RATE_LIMIT: String(rate) } });
  return agent;
}

before(async () => {
  if (skip !== false) return;
  // A 16 MiB image with 4 MiB of known data in three places, the rest holes.
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M']);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0xcd 5M 2M', '-c', 'write -P 0x5a 12M 1M', image]);
  images = await startImageServer();
  images.serve('/source.qcow2', { file: image });
  server = await startServerProcess({ dataDir: join(root, 's'), port: await freePort(), timeoutMs: 60_000 });
  client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  agentPort = await freePort();
  await startNodeB();
  const nodes = await client.list(resources.nodes);
  serverNode = nodes.items.map((n) => n.metadata.name ?? '').find((n) => n !== 'node-b') ?? '';
  assert.notEqual(serverNode, '');
});

after(async () => {
  // The VM's deletion lets node-b's agent stop QEMU and remove its cgroup; the kill is for what a failure left.
  await client.delete(resources.virtualMachines, 'default', 'writer').catch(() => undefined);
  await eventually(async () => (await client.tryGet(resources.virtualMachineInstances, 'default', 'writer')) === undefined, { timeoutMs: 60_000, what: 'the VMI to go' }).catch(() => undefined);
  for (const ns of ['default', 'team-a', 'team-b']) {
    const list = await client.list(resources.dataVolumes, { namespace: ns }).catch(() => ({ items: [] as KObject[] }));
    for (const dv of list.items) await client.delete(resources.dataVolumes, ns, dv.metadata.name ?? '').catch(() => undefined);
  }
  await agent?.stop();
  server?.child.kill('SIGTERM');
  await server?.exited;
  client.close();
  await images?.stop();
  for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function dataVolume(namespace: string, name: string, node: string, source: Record<string, unknown>): KObject {
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    // The claim goes to `node` as if a consumer had been scheduled there.
    metadata: { name, namespace, annotations: { 'volume.kubernetes.io/selected-node': node } },
    spec: { source, storage: { resources: { requests: { storage: '32Mi' } } } },
  };
}

async function dvWhere(namespace: string, name: string, what: string, ok: (dv: KObject) => boolean, timeoutMs = copyMs): Promise<KObject> {
  return eventually(async () => {
    const dv = await client.tryGet(resources.dataVolumes, namespace, name);
    return dv !== undefined && ok(dv) ? dv : undefined;
  }, { what: `DataVolume ${namespace}/${name}: ${what}`, timeoutMs, intervalMs: 100 });
}

const phaseOf = (dv: KObject): string => stringAt(dv, 'status', 'phase') ?? '';
const progressOf = (dv: KObject): number => Number.parseFloat(stringAt(dv, 'status', 'progress') ?? '');

/** The volume file of a DataVolume's bound claim, on whichever node's data directory holds it. */
async function volumeOf(namespace: string, name: string): Promise<{ path: string; node: string; pvc: KObject }> {
  const pvc = await client.get(resources.persistentVolumeClaims, namespace, name);
  const pv = await client.get(resources.persistentVolumes, undefined, stringAt(pvc, 'spec', 'volumeName') ?? '');
  const volume = localVolumeOf(pvc, pv);
  return { path: volume.path, node: volume.node, pvc };
}

/** `qemu-img compare`: exit 0 when the guest-visible contents are the same (a larger image's tail must be zero). */
function sameData(a: string, b: string): { same: boolean; said: string } {
  const run = spawnSync('qemu-img', ['compare', '-U', a, b], { encoding: 'utf8' });
  return { same: run.status === 0, said: `${run.stdout}${run.stderr}` };
}

/** A GET to an agent endpoint trusting exactly `cert`; the status and body. */
function get(url: string, cert: string, authorization: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization }, ca: cert, checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Watches a DataVolume until `until` holds, keeping every (phase, progress) seen. */
async function watchCopy(namespace: string, name: string, until: (dv: KObject) => boolean): Promise<{ seen: { phase: string; progress: number }[]; last: KObject }> {
  const seen: { phase: string; progress: number }[] = [];
  const last = await dvWhere(namespace, name, 'the copy to move on', (dv) => {
    seen.push({ phase: phaseOf(dv), progress: progressOf(dv) });
    return until(dv);
  });
  return { seen, last };
}

test('a DataVolume on node-b is cloned into a claim on the server\'s node: a full copy from node-b\'s agent, with clone phases and progress', { skip, timeout: 300_000 }, async () => {
  await client.create(resources.dataVolumes, dataVolume('default', 'golden', 'node-b', { http: { url: `${images?.url ?? ''}/source.qcow2` } }));
  await dvWhere('default', 'golden', 'imported on node-b', (dv) => phaseOf(dv) === 'Succeeded');
  const source = await volumeOf('default', 'golden');
  assert.equal(source.node, 'node-b');
  assert.ok(source.path.startsWith(agentDir), source.path);

  await client.create(resources.dataVolumes, dataVolume('default', 'copy', serverNode, { pvc: { namespace: 'default', name: 'golden' } }));
  const { seen, last } = await watchCopy('default', 'copy', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(last), 'Succeeded', JSON.stringify(last.status));
  assert.ok(seen.some((s) => s.phase === 'CloneInProgress'), `phases seen: ${[...new Set(seen.map((s) => s.phase))].join(', ')}`);
  const moving = [...new Set(seen.filter((s) => s.phase === 'CloneInProgress' && s.progress > 0 && s.progress < 100).map((s) => s.progress))];
  assert.ok(moving.length >= 2, `progress moved while copying: ${moving.join(', ')}`);
  assert.equal(stringAt(last, 'status', 'progress'), '100.0%');

  const copy = await volumeOf('default', 'copy');
  assert.equal(copy.node, serverNode);
  assert.equal(copy.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], 'copy');
  assert.equal(copy.pvc.metadata.annotations?.['k8s.io/CloneRequest'], 'default/golden');
  const copied = sameData(image, copy.path);
  assert.ok(copied.same, `the copy on ${serverNode} holds the source's data: ${copied.said}`);
  const kept = sameData(image, source.path);
  assert.ok(kept.same, `the source on node-b is unchanged: ${kept.said}`);
  // Only allocated clusters travel: the 16 MiB image's holes stay holes.
  const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', copy.path], { encoding: 'utf8' })) as Record<string, unknown>;
  const allocated = Number(info['actual-size']);
  assert.ok(allocated < 12 * 2 ** 20, `the copy takes ${allocated} bytes on disk, not the 16 MiB of the image`);
  // Only the cluster token opens an export; the agent's certificate is the one its Node publishes.
  const node = await client.get(resources.nodes, undefined, 'node-b');
  const cert = node.metadata.annotations?.['vireo.io/agent-certificate'] ?? '';
  const exportUrl = `${agent?.url ?? ''}/v1/namespaces/default/persistentvolumeclaims/golden/export?target=${copy.pvc.metadata.uid ?? ''}`;
  assert.equal((await get(exportUrl, cert, 'Bearer not-the-cluster-token')).status, 401);
  assert.equal((await get(exportUrl.replace(/\?target=.*/, ''), cert, `Bearer ${server?.token ?? ''}`)).status, 400, 'no target: a clear refusal');
  // The source agent's export is released once the copy is in.
  await eventually(() => readdirSync(join(agentDir, 'agent', 'exports')).length === 0, { what: 'node-b to drop its export', timeoutMs: 10_000 });
});

test('node-b\'s agent stopped mid-copy: the clone retries, never Succeeds with part of the data, and resumes once the agent is back', { skip, timeout: 300_000 }, async () => {
  await dvWhere('default', 'golden', 'the source of the first test', (dv) => phaseOf(dv) === 'Succeeded');
  await client.create(resources.dataVolumes, dataVolume('default', 'copy-again', serverNode, { pvc: { namespace: 'default', name: 'golden' } }));
  const running = await dvWhere('default', 'copy-again', 'copying', (dv) => phaseOf(dv) === 'CloneInProgress' && progressOf(dv) > 5);
  const before = progressOf(running);
  await agent?.stop();
  // An export whose copy was given up (no claim has its uid): the restarted agent sweeps it.
  const orphan = join(agentDir, 'agent', 'exports', '0badc0de-0000-4000-8000-000000000000.qcow2');
  writeFileSync(orphan, 'left by a copy given up');
  const broken = await dvWhere('default', 'copy-again', 'the broken copy counted as a restart', (dv) => (numberAt(dv, 'status', 'restartCount') ?? 0) >= 1, 60_000);
  assert.notEqual(phaseOf(broken), 'Succeeded');
  await startNodeB();
  const { seen, last } = await watchCopy('default', 'copy-again', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(last), 'Succeeded', JSON.stringify(last.status));
  const after = seen.filter((s) => s.phase === 'CloneInProgress' && Number.isFinite(s.progress)).map((s) => s.progress);
  assert.ok(after.every((p) => p >= before), `the copy resumed where it broke (${before}%), not from the start: ${after.join(', ')}`);
  const copy = await volumeOf('default', 'copy-again');
  const copied = sameData(image, copy.path);
  assert.ok(copied.same, `the resumed copy holds the source's data: ${copied.said}`);
  await eventually(() => !existsSync(orphan), { what: 'node-b to sweep the export of a copy given up', timeoutMs: 30_000 });
});

test('a DataVolume clones a claim of another namespace on the same node: instant, with CDI\'s CloneRequest annotation', { skip, timeout: 300_000 }, async () => {
  for (const name of ['team-a', 'team-b']) await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await client.create(resources.dataVolumes, dataVolume('team-a', 'base', serverNode, { http: { url: `${images?.url ?? ''}/source.qcow2` } }));
  await dvWhere('team-a', 'base', 'imported', (dv) => phaseOf(dv) === 'Succeeded');
  await client.create(resources.dataVolumes, dataVolume('team-b', 'mine', serverNode, { pvc: { namespace: 'team-a', name: 'base' } }));
  const done = await dvWhere('team-b', 'mine', 'cloned', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(done), 'Succeeded', JSON.stringify(done.status));
  const copy = await volumeOf('team-b', 'mine');
  assert.equal(copy.pvc.metadata.annotations?.['k8s.io/CloneRequest'], 'team-a/base');
  assert.equal(recordAt(copy.pvc, 'spec', 'dataSource'), undefined, 'no dataSource: Kubernetes\' names only claims of the claim\'s namespace');
  assert.equal(copy.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], undefined, 'a same-node clone is not a copy');
  // Copy-on-write: the clone's top is an empty overlay over the source's frozen layer.
  const chain = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--backing-chain', '--output=json', copy.path], { encoding: 'utf8' })) as unknown[];
  assert.ok(chain.length >= 2, 'the clone has a backing chain');
  const copied = sameData(image, copy.path);
  assert.ok(copied.same, `the clone holds the source's data: ${copied.said}`);
});

test('a claim on the server\'s own node is copied to node-b through the API server\'s port, from another namespace', { skip, timeout: 300_000 }, async () => {
  await dvWhere('team-a', 'base', 'the source of the previous test', (dv) => phaseOf(dv) === 'Succeeded');
  await client.create(resources.dataVolumes, dataVolume('default', 'to-b', 'node-b', { pvc: { namespace: 'team-a', name: 'base' } }));
  const done = await dvWhere('default', 'to-b', 'copied', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(done), 'Succeeded', JSON.stringify(done.status));
  const copy = await volumeOf('default', 'to-b');
  assert.equal(copy.node, 'node-b');
  assert.ok(copy.path.startsWith(agentDir), copy.path);
  assert.equal(copy.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], 'copy');
  assert.equal(copy.pvc.metadata.annotations?.['k8s.io/CloneRequest'], 'team-a/base');
  const copied = sameData(image, copy.path);
  assert.ok(copied.same, `the copy on node-b holds the source's data: ${copied.said}`);
  await eventually(() => readdirSync(join(root, 's', 'agent', 'exports')).length === 0, { what: 'the server\'s node to drop its export', timeoutMs: 10_000 });
});

/** At boot: writes a marker at the start of /dev/vdb, then a tick at 1 MiB every second, so the disk changes during the copy. */
const writerData = [
  '#!/bin/sh',
  'printf "vireo-live:one  " > /dev/vdb; sync; echo "data: wrote one"',
  'i=0',
  'while true; do i=$((i+1)); printf "tick-%08d" $i | dd of=/dev/vdb bs=1M seek=1 conv=notrunc 2>/dev/null; sync; echo "tick $i"; sleep 1; done',
  '',
].join('\n');

function firstBytes(file: string, count: number): string {
  const raw = join(root, 'read.raw');
  execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', file, raw]);
  const fd = openSync(raw, 'r');
  try {
    const buffer = Buffer.alloc(count);
    readSync(fd, buffer, 0, count, 0);
    return buffer.toString('latin1');
  } finally {
    closeSync(fd);
    rmSync(raw, { force: true });
  }
}

test('a claim a running guest on node-b writes to is copied to the server\'s node while the guest runs on', { skip, timeout: 400_000 }, async () => {
  await importTestGuest(new ImageStore(join(agentDir, 'images')));
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } }).catch(() => undefined);
  await client.create(resources.dataVolumes, dataVolume('default', 'live', 'node-b', { blank: {} }));
  await dvWhere('default', 'live', 'blank on node-b', (dv) => phaseOf(dv) === 'Succeeded');
  const vm = pvcVm('writer', { claimName: 'live', userData: writerData, graceSeconds: 0 });
  (((vm.spec as Record<string, unknown>).template as Record<string, unknown>).spec as Record<string, unknown>).nodeSelector = { 'kubernetes.io/hostname': 'node-b' };
  await client.create(resources.virtualMachines, vm);
  const logs = async (): Promise<string> => (await vireo(['logs', 'writer'], { kubeconfig: server?.kubeconfig ?? '', timeoutMs: 30_000 })).stdout;
  await eventually(async () => /tick 3\b/.test(await logs()), { what: 'the guest on node-b to write its marker and tick', timeoutMs: 240_000, intervalMs: 1000 });
  const [pid] = qemuPidsUnder(agentDir);
  assert.notEqual(pid, undefined, 'the guest runs under node-b\'s agent');

  await client.create(resources.dataVolumes, dataVolume('default', 'live-copy', serverNode, { pvc: { namespace: 'default', name: 'live' } }));
  const done = await dvWhere('default', 'live-copy', 'copied', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(done), 'Succeeded', JSON.stringify(done.status));
  const copy = await volumeOf('default', 'live-copy');
  assert.equal(copy.node, serverNode);
  assert.equal(firstBytes(copy.path, 16), 'vireo-live:one  ', 'the copy holds what the guest wrote before it');
  // The guest ran on through the copy, on the same QEMU, and keeps writing.
  assert.deepEqual(qemuPidsUnder(agentDir), [pid]);
  const ticks = (text: string): number => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
  const atCopy = ticks(await logs());
  await eventually(async () => ticks(await logs()) > atCopy + 2, { what: 'the guest to keep writing after the copy', timeoutMs: 60_000, intervalMs: 500 });
});

/** A VMI using DataVolume `dv` as its only disk; `node` pins it with a nodeSelector. */
function consumer(name: string, dv: string, node?: string): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default' },
    spec: {
      ...(node === undefined ? {} : { nodeSelector: { 'kubernetes.io/hostname': node } }),
      terminationGracePeriodSeconds: 0,
      domain: { memory: { guest: '64Mi' }, devices: { autoattachGraphicsDevice: false, disks: [{ name: 'data', disk: { bus: 'virtio' } }] } },
      volumes: [{ name: 'data', dataVolume: { name: dv } }],
    },
  };
}

test('the scheduler sends a clone\'s consumer to the source\'s node (instant), or, pinned elsewhere, lets it go there (a full copy)', { skip, timeout: 300_000 }, async (t) => {
  await dvWhere('default', 'golden', 'the source of the first test', (dv) => phaseOf(dv) === 'Succeeded');
  t.after(async () => {
    for (const name of ['near', 'far']) await client.delete(resources.virtualMachineInstances, 'default', name).catch(() => undefined);
    await eventually(async () => (await client.list(resources.virtualMachineInstances, { namespace: 'default' })).items.every((v) => !['near', 'far'].includes(v.metadata.name ?? '')), { what: 'the consumers to go', timeoutMs: 60_000 }).catch(() => undefined);
  });
  const clone = (name: string): KObject => ({ apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'DataVolume', metadata: { name, namespace: 'default' }, spec: { source: { pvc: { namespace: 'default', name: 'golden' } }, storage: { resources: { requests: { storage: '32Mi' } } } } });
  await client.create(resources.dataVolumes, clone('near-disk'));
  await client.create(resources.dataVolumes, clone('far-disk'));
  await client.create(resources.virtualMachineInstances, consumer('near', 'near-disk'));
  await client.create(resources.virtualMachineInstances, consumer('far', 'far-disk', serverNode));
  const nodeOf = async (vmi: string): Promise<string> => eventually(async () => stringAt(await client.tryGet(resources.virtualMachineInstances, 'default', vmi), 'status', 'nodeName'), { what: `VMI ${vmi} to be scheduled`, timeoutMs: 60_000, intervalMs: 200 });
  assert.equal(await nodeOf('near'), 'node-b', 'the node holding the source is preferred');
  assert.equal(await nodeOf('far'), serverNode, 'a consumer pinned to another node is not held to the source\'s node');
  const near = await dvWhere('default', 'near-disk', 'cloned', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  const far = await dvWhere('default', 'far-disk', 'copied', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(near), 'Succeeded', JSON.stringify(near.status));
  assert.equal(phaseOf(far), 'Succeeded', JSON.stringify(far.status));
  const nearVolume = await volumeOf('default', 'near-disk');
  const farVolume = await volumeOf('default', 'far-disk');
  assert.equal(nearVolume.node, 'node-b');
  assert.equal(nearVolume.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], undefined, 'an instant clone, not a copy');
  assert.equal(farVolume.node, serverNode);
  assert.equal(farVolume.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], 'copy');
  assert.ok(sameData(image, farVolume.path).same);
});

test('a VolumeSnapshot on node-b is restored into a claim on the server\'s node: a full copy of the snapshot\'s data', { skip, timeout: 300_000 }, async () => {
  await dvWhere('default', 'golden', 'the source of the first test', (dv) => phaseOf(dv) === 'Succeeded');
  const snapshots = { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshots', namespaced: true } as const;
  await client.create(snapshots, { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: 'golden-monday', namespace: 'default' }, spec: { source: { persistentVolumeClaimName: 'golden' } } });
  await eventually(async () => booleanAt(await client.tryGet(snapshots, 'default', 'golden-monday'), 'status', 'readyToUse') === true, { what: 'the snapshot on node-b to be ready', timeoutMs: 60_000, intervalMs: 200 });
  await client.create(resources.dataVolumes, dataVolume('default', 'restored', serverNode, { snapshot: { namespace: 'default', name: 'golden-monday' } }));
  const done = await dvWhere('default', 'restored', 'restored', (dv) => phaseOf(dv) === 'Succeeded' || phaseOf(dv) === 'Failed');
  assert.equal(phaseOf(done), 'Succeeded', JSON.stringify(done.status));
  const copy = await volumeOf('default', 'restored');
  assert.equal(copy.node, serverNode);
  assert.equal(copy.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], 'copy');
  const copied = sameData(image, copy.path);
  assert.ok(copied.same, `the restore on ${serverNode} holds the snapshot's data: ${copied.said}`);
  await eventually(() => readdirSync(join(agentDir, 'agent', 'exports')).length === 0, { what: 'node-b to drop its export', timeoutMs: 10_000 });
});
