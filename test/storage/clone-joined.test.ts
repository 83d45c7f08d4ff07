/**
 * Clones into hosts that joined with a token, and what their node
 * credentials may do, end to end: a real `vireo server` process (its own
 * node and agent) and two real `vireo agent` processes, node-b and node-c,
 * that joined with a token and so hold only their node credentials, not
 * the cluster token. A DataVolume on the server's node is cloned into
 * node-b (node-b fetches the export from the API server's port with its
 * credential), and node-b's copy into node-c (node-c presents its
 * credential to node-b's endpoint, which asks the API server with a
 * TokenReview who it is, then checks the copy's target claim is on
 * node-c). The TokenReview API answers as Kubernetes' does; another
 * node's credential, or a token nobody knows, is refused at an export;
 * and a node credential writes only the storage objects of its own node
 * (403 saying why otherwise). No guest boots.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from '../../src/api/errors.js';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { localVolumeOf } from '../../src/storage/local/index.js';
import { startImageServer } from '../../src/testing/image-server.js';
import type { ImageServer } from '../../src/testing/image-server.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { freePort, startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = !hasBinary('qemu-img') || !hasBinary('qemu-io') || !hasBinary('qemu-system-x86_64') ? 'qemu-img, qemu-io and qemu-system-x86_64 are needed (the agents check QEMU at start)' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

const root = mkdtempSync(join(tmpdir(), 'vcj-'));
const image = join(root, 'source.qcow2');
let server: ServerProcess | undefined;
const agents: Record<string, AgentProcess> = {};
let client: HttpClient;
let images: ImageServer | undefined;
let serverNode = '';
const credentials: Record<string, string> = {};
const asNode: Record<string, HttpClient> = {};

before(async () => {
  if (skip !== false) return;
  // A 16 MiB image with 3 MiB of known data in two places, the rest holes.
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', image, '16M']);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 1M', '-c', 'write -P 0xcd 5M 2M', image]);
  images = await startImageServer();
  images.serve('/source.qcow2', { file: image });
  server = await startServerProcess({ dataDir: join(root, 's'), port: await freePort(), timeoutMs: 60_000 });
  client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  const created = await vireo(['token', 'create'], { kubeconfig: server.kubeconfig });
  assert.equal(created.code, 0, created.stderr);
  const token = created.stdout.split('\n')[0] ?? '';
  for (const node of ['node-b', 'node-c']) {
    const dataDir = join(root, node);
    agents[node] = await startAgentProcess({ join: { server: server.url, token }, dataDir, nodeName: node, port: await freePort(), timeoutMs: 90_000 });
    credentials[node] = (JSON.parse(readFileSync(join(dataDir, 'node-credential.json'), 'utf8')) as { credential: string }).credential;
    asNode[node] = new HttpClient({ server: server.url, token: credentials[node] ?? '', caCert: server.caCert });
  }
  serverNode = (await client.list(resources.nodes)).items.map((n) => n.metadata.name ?? '').find((n) => n !== 'node-b' && n !== 'node-c') ?? '';
  assert.notEqual(serverNode, '');
});

after(async () => {
  if (skip !== false) return;
  const list = await client.list(resources.dataVolumes, { namespace: 'default' }).catch(() => ({ items: [] as KObject[] }));
  for (const dv of list.items) await client.delete(resources.dataVolumes, 'default', dv.metadata.name ?? '').catch(() => undefined);
  await eventually(async () => (await client.list(resources.persistentVolumes)).items.length === 0, { timeoutMs: 30_000, what: 'the volumes to go' }).catch(() => undefined);
  for (const agent of Object.values(agents)) await agent.stop();
  server?.child.kill('SIGTERM');
  await server?.exited;
  for (const c of Object.values(asNode)) c.close();
  client.close();
  await images?.stop();
  for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function dataVolume(name: string, node: string, source: Record<string, unknown>): KObject {
  return {
    apiVersion: 'cdi.kubevirt.io/v1beta1',
    kind: 'DataVolume',
    // The claim goes to `node` as if a consumer had been scheduled there.
    metadata: { name, namespace: 'default', annotations: { 'volume.kubernetes.io/selected-node': node } },
    spec: { source, storage: { resources: { requests: { storage: '32Mi' } } } },
  };
}

async function succeeded(name: string): Promise<KObject> {
  const dv = await eventually(async () => {
    const current = await client.tryGet(resources.dataVolumes, 'default', name);
    const phase = current === undefined ? '' : stringAt(current, 'status', 'phase');
    return phase === 'Succeeded' || phase === 'Failed' ? current : undefined;
  }, { what: `DataVolume ${name} to finish`, timeoutMs: 120_000, intervalMs: 200 });
  assert.equal(stringAt(dv, 'status', 'phase'), 'Succeeded', JSON.stringify(dv.status));
  return dv;
}

async function volumeOf(name: string): Promise<{ path: string; node: string; pvc: KObject; pv: KObject }> {
  const pvc = await client.get(resources.persistentVolumeClaims, 'default', name);
  const pv = await client.get(resources.persistentVolumes, undefined, stringAt(pvc, 'spec', 'volumeName') ?? '');
  const volume = localVolumeOf(pvc, pv);
  return { path: volume.path, node: volume.node, pvc, pv };
}

function sameData(a: string, b: string): { same: boolean; said: string } {
  const run = spawnSync('qemu-img', ['compare', '-U', a, b], { encoding: 'utf8' });
  return { same: run.status === 0, said: `${run.stdout}${run.stderr}` };
}

/** A GET to an agent endpoint trusting exactly `cert`, with a bearer token; the status and body. */
function get(url: string, cert: string, token: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` }, ca: cert, checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
    });
    req.on('error', reject);
    req.end();
  });
}

async function forbidden(what: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(what, (err: unknown) => err instanceof ApiError && err.httpCode === 403 && pattern.test(err.message));
}

test('clones into joined nodes: from the server\'s node to node-b, and from node-b to node-c through a TokenReview', { skip, timeout: 400_000 }, async () => {
  await client.create(resources.dataVolumes, dataVolume('golden', serverNode, { http: { url: `${images?.url ?? ''}/source.qcow2` } }));
  await succeeded('golden');
  assert.equal((await volumeOf('golden')).node, serverNode);

  await client.create(resources.dataVolumes, dataVolume('copy-b', 'node-b', { pvc: { namespace: 'default', name: 'golden' } }));
  await succeeded('copy-b');
  const copyB = await volumeOf('copy-b');
  assert.equal(copyB.node, 'node-b');
  assert.equal(copyB.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], 'copy', 'a full copy across nodes, not a local clone');
  const b = sameData(image, copyB.path);
  assert.ok(b.same, `node-b's copy holds the source's data: ${b.said}`);

  await client.create(resources.dataVolumes, dataVolume('copy-c', 'node-c', { pvc: { namespace: 'default', name: 'copy-b' } }));
  await succeeded('copy-c');
  const copyC = await volumeOf('copy-c');
  assert.equal(copyC.node, 'node-c');
  assert.equal(copyC.pvc.metadata.annotations?.['cdi.kubevirt.io/cloneType'], 'copy');
  const c = sameData(image, copyC.path);
  assert.ok(c.same, `node-c's copy holds the source's data: ${c.said}`);
  for (const [node, agent] of Object.entries(agents)) assert.doesNotMatch(agent.output(), /Forbidden|may not (create|update|patch|delete)/, `${node}'s agent was refused nothing`);
});

test('TokenReview says who a token is, to users, components and nodes', { skip, timeout: 60_000 }, async () => {
  const review = async (as: HttpClient, token: string): Promise<{ status: number; body: Record<string, unknown> }> => {
    const answer = await as.raw('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    return { status: answer.status, body: JSON.parse(answer.body) as Record<string, unknown> };
  };
  const byNode = await review(asNode['node-b'] ?? client, credentials['node-c'] ?? '');
  assert.equal(byNode.status, 201);
  assert.deepEqual(byNode.body['status'], { authenticated: true, user: { username: 'system:node:node-c', groups: ['system:nodes', 'system:authenticated'] } });
  const admin = await review(client, server?.token ?? '');
  assert.deepEqual(admin.body['status'], { authenticated: true, user: { username: 'kubernetes-admin', groups: ['system:masters', 'system:authenticated'] } });
  const unknown = await review(client, 'vireo-node.node-b.0000');
  assert.equal((unknown.body['status'] as { authenticated?: boolean }).authenticated, false);
  assert.match(String((unknown.body['status'] as { error?: string }).error), /this is not the current credential of node node-b/);
  const empty = await client.raw('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: {} });
  assert.equal(empty.status, 422, empty.body);
  assert.match(empty.body, /spec\.token.*Required value/);
  assert.equal((await client.raw('GET', '/apis/authentication.k8s.io/v1/tokenreviews')).status, 405);
  // kubectl finds it by discovery and creates one.
  const manifest = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token: credentials['node-b'] } });
  const created = await kubectl(['create', '-f', '-', '-o', 'jsonpath={.status.user.username}'], { kubeconfig: server?.kubeconfig ?? '', stdin: manifest });
  assert.equal(created.code, 0, created.stderr);
  assert.equal(created.stdout, 'system:node:node-b');
});

test('an export refuses another node\'s credential and unknown tokens, saying why', { skip, timeout: 60_000 }, async () => {
  const copyB = await volumeOf('copy-b');
  const copyC = await volumeOf('copy-c');
  const nodeB = await client.get(resources.nodes, undefined, 'node-b');
  const cert = nodeB.metadata.annotations?.['vireo.io/agent-certificate'] ?? '';
  const url = (target: string): string => `${agents['node-b']?.url ?? ''}/v1/namespaces/default/persistentvolumeclaims/copy-b/export?target=${target}`;
  // node-c's credential for a copy into node-c's own claim passes; for node-b's claim it does not.
  const refused = await get(url(copyB.pvc.metadata.uid ?? ''), cert, credentials['node-c'] ?? '');
  assert.equal(refused.status, 403, refused.body);
  assert.match(refused.body, /node node-c may not read the volume export for target .*: the claim default\/copy-b is on node node-b; a node credential reads only the exports copied into claims of its own node/);
  const stranger = await get(url(copyC.pvc.metadata.uid ?? ''), cert, 'vireo-node.node-c.0123');
  assert.equal(stranger.status, 401, stranger.body);
  assert.match(stranger.body, /the API server does not know this bearer token/);
  // On the server's port, the same rule for the server's own node's exports.
  const onServer = await asNode['node-c']?.raw('GET', `/vireo/v1/nodes/${serverNode}/namespaces/default/persistentvolumeclaims/golden/export?target=${copyB.pvc.metadata.uid ?? ''}`);
  assert.equal(onServer?.status, 403, onServer?.body);
  assert.match(onServer?.body ?? '', /node node-c may not read the volume export .*on node node-b/);
});

test('a node credential writes only the storage objects of its own node', { skip, timeout: 60_000 }, async () => {
  const nodeC = asNode['node-c'];
  assert.ok(nodeC !== undefined);
  const copyB = await volumeOf('copy-b');
  const copyC = await volumeOf('copy-c');
  const pvB = copyB.pv.metadata.name ?? '';
  await forbidden(nodeC.patch(resources.persistentVolumes, undefined, pvB, 'merge', { metadata: { labels: { taken: 'yes' } } }), new RegExp(`node node-c may not patch persistentvolumes ${pvB}: the volume is pinned to node node-b; a node credential writes only the PersistentVolumes of its node`));
  await forbidden(nodeC.patch(resources.persistentVolumes, undefined, pvB, 'merge', { status: { phase: 'Released' } }, { subresource: 'status' }), /may not patch the status of persistentvolumes .*pinned to node node-b/);
  await forbidden(nodeC.delete(resources.persistentVolumes, undefined, pvB), /may not delete persistentvolumes .*pinned to node node-b/);
  await forbidden(nodeC.patch(resources.persistentVolumeClaims, 'default', 'copy-b', 'merge', { metadata: { annotations: { taken: 'yes' } } }), /may not patch persistentvolumeclaims default\/copy-b: the claim's data is on node node-b/);
  await forbidden(nodeC.delete(resources.persistentVolumeClaims, 'default', 'copy-c'), /does not delete claims/);
  const foreign = structuredClone(copyB.pv);
  foreign.metadata = { name: 'stolen' };
  delete foreign.status;
  await forbidden(nodeC.create(resources.persistentVolumes, foreign), /may not create persistentvolumes stolen: the volume is pinned to node node-b; a node credential creates only PersistentVolumes pinned to its node/);
  await forbidden(nodeC.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'default' } }), /may not create configmaps default\/\(all\): a node credential writes only its own Node and Lease, the VMIs bound to its node, the PersistentVolumes, claims and VolumeSnapshotContents of its node, and Events/);
  await forbidden(nodeC.delete(resources.dataVolumes, 'default', 'golden'), /may not delete datavolumes\.cdi\.kubevirt\.io default\/golden/);
  // Its own: allowed.
  const own = await nodeC.patch(resources.persistentVolumes, undefined, copyC.pv.metadata.name ?? '', 'merge', { metadata: { labels: { 'example.com/own': 'yes' } } });
  assert.equal(own.metadata.labels?.['example.com/own'], 'yes');
  const claim = await nodeC.patch(resources.persistentVolumeClaims, 'default', 'copy-c', 'merge', { metadata: { annotations: { 'example.com/own': 'yes' } } });
  assert.equal(claim.metadata.annotations?.['example.com/own'], 'yes');
  const event = await nodeC.create(resources.events, {
    apiVersion: 'v1', kind: 'Event', metadata: { name: 'node-c.test', namespace: 'default' },
    involvedObject: { kind: 'Node', name: 'node-c' }, reason: 'Test', message: 'a node creates Events', type: 'Normal',
  });
  assert.equal(event.metadata.name, 'node-c.test');
  await forbidden(nodeC.delete(resources.events, 'default', 'node-c.test'), /creates and updates Events, but does not delete them/);
});
