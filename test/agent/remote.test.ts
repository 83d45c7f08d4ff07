/**
 * `vireo agent` as the node agent of another host: a real `vireo server`
 * process (with its own embedded agent) and a real `vireo agent` process for
 * node-b, each on its own loopback port and data directory. The guest runs
 * under node-b's agent, and the API server reaches it over the agent's
 * HTTPS endpoint for the console, the log and pause/unpause; the agent
 * stops and starts again without touching the guest.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { agentCertificateAnnotation } from '../../src/agent/index.js';
import { ImageStore, TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { freePort, startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { vireo } from '../subresources/support.js';
import { condition, phase, qemuPidsUnder } from './support.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = !hasBinary('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

/** The guest of the test: the test guest, pinned to node-b, TCG forced by the KubeVirt CR below. */
const manifests = `
apiVersion: v1
kind: Namespace
metadata: {name: kubevirt}
---
apiVersion: kubevirt.io/v1
kind: KubeVirt
metadata: {name: kubevirt, namespace: kubevirt}
spec:
  configuration:
    developerConfiguration: {useEmulation: true}
---
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: remote, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: node-b}
  terminationGracePeriodSeconds: 0
  domain:
    memory: {guest: 128Mi}
    devices:
      autoattachGraphicsDevice: false
      disks: [{name: root, disk: {bus: virtio}}]
  volumes: [{name: root, containerDisk: {image: ${TEST_GUEST_IMAGE}}}]
`;

/** A raw request to the agent endpoint, trusting its own certificate. */
function agentRequest(agent: AgentProcess, cert: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${agent.url}${path}`, { method: 'PUT', headers, ca: cert, checkServerIdentity: () => undefined }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }); });
    });
    req.on('error', reject);
    req.end();
  });
}

test('vireo agent runs node-b: its guest is reached through the server for console, logs and pause, and outlives an agent restart', { skip, timeout: 240_000 }, async (t) => {
  // Short paths: QEMU's unix sockets live under the data directories.
  const root = mkdtempSync(join(tmpdir(), 'vr-'));
  const agentDir = join(root, 'b');
  const started: { server?: ServerProcess; agent?: AgentProcess; client?: HttpClient } = {};
  t.after(async () => {
    const { server, agent, client } = started;
    // The VMI's deletion lets node-b's agent stop QEMU and remove its cgroup; the kill is for what a failure left.
    await client?.delete(resources.virtualMachineInstances, 'default', 'remote').catch(() => undefined);
    await eventually(async () => (await client?.tryGet(resources.virtualMachineInstances, 'default', 'remote')) === undefined, { timeoutMs: 30_000, what: 'the VMI to go' }).catch(() => undefined);
    await agent?.stop();
    server?.child.kill('SIGTERM');
    await server?.exited;
    client?.close();
    for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  const server = await startServerProcess({ dataDir: join(root, 's'), port: await freePort(), timeoutMs: 60_000 });
  started.server = server;
  const client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  started.client = client;
  await importTestGuest(new ImageStore(join(agentDir, 'images')));
  const agentPort = await freePort();
  const start = async (): Promise<AgentProcess> => {
    started.agent = await startAgentProcess({ kubeconfig: server.kubeconfig, dataDir: agentDir, nodeName: 'node-b', port: agentPort, timeoutMs: 60_000 });
    return started.agent;
  };
  let agent = await start();
  const kc = { kubeconfig: server.kubeconfig };

  // Two nodes, both Ready: the server's own and node-b, which publishes its endpoint as a kubelet does.
  const nodes = await kubectl(['get', 'nodes', '--no-headers'], kc);
  assert.equal(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout, /^node-b\s+Ready\s/m);
  assert.equal(nodes.stdout.trim().split('\n').length, 2, nodes.stdout);
  const nodeB = await client.get(resources.nodes, undefined, 'node-b');
  assert.equal(recordsAt(nodeB, 'status', 'addresses').find((a) => a.type === 'InternalIP')?.address, '127.0.0.1');
  assert.equal((nodeB.status as { daemonEndpoints?: { kubeletEndpoint?: { Port?: number } } }).daemonEndpoints?.kubeletEndpoint?.Port, agentPort);
  const cert = readFileSync(join(agentDir, 'agent.crt'), 'utf8');
  assert.equal(nodeB.metadata.annotations?.[agentCertificateAnnotation], cert);
  assert.equal(nodeB.metadata.labels?.['node-role.kubernetes.io/control-plane'], undefined, 'node-b is not the control plane');

  const applied = await kubectl(['apply', '-f', '-'], { ...kc, stdin: manifests });
  assert.equal(applied.code, 0, applied.stderr);
  const running = await eventually(async () => {
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', 'remote');
    return vmi !== undefined && phase(vmi) === 'Running' ? vmi : undefined;
  }, { timeoutMs: 90_000, intervalMs: 200, what: 'the VMI to run' });
  assert.equal(stringAt(running, 'status', 'nodeName'), 'node-b');
  const pids = qemuPidsUnder(agentDir);
  assert.equal(pids.length, 1, 'one QEMU, under node-b\'s data directory');
  const pid = pids[0] ?? -1;
  const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  assert.match(cmdline[cmdline.indexOf('-accel') + 1] ?? '', /^tcg/);
  assert.deepEqual(qemuPidsUnder(join(root, 's')), [], 'nothing runs under the server\'s own agent');

  const cli = (args: string[], stdin?: string): ReturnType<typeof vireo> => vireo(args, { ...kc, timeoutMs: 60_000, ...(stdin === undefined ? {} : { stdin }) });
  await eventually(async () => (await cli(['logs', 'remote'])).stdout.includes(TEST_GUEST_READY_MARKER), { what: 'the guest to say ready in vireo logs', timeoutMs: 120_000, intervalMs: 500 });
  const answer = await cli(['console', 'remote', '--linger', '2'], 'echo "sum=$((40+2))"\n');
  assert.equal(answer.code, 0, answer.stderr);
  assert.match(answer.stdout, /^sum=42\r?$/m, 'the guest shell on node-b ran the command typed into the console');

  const paused = async (): Promise<boolean> => {
    const vmi = await client.tryGet(resources.virtualMachineInstances, 'default', 'remote');
    return vmi !== undefined && condition(vmi, 'Paused')?.status === 'True';
  };
  assert.equal((await cli(['pause', 'vmi', 'remote'])).code, 0);
  await eventually(paused, { what: 'node-b\'s agent to report the VMI Paused', timeoutMs: 30_000 });
  const again = await cli(['pause', 'vmi', 'remote']);
  assert.equal(again.code, 5, 'the refusal is a user error, as from a local agent');
  assert.match(again.stderr, /VMI is already paused/);
  assert.equal((await cli(['unpause', 'vmi', 'remote'])).code, 0);
  await eventually(async () => !(await paused()), { what: 'the VMI to run again', timeoutMs: 30_000 });

  // Only the cluster token opens the agent endpoint.
  const path = '/v1/namespaces/default/virtualmachineinstances/remote/pause';
  const wrong = await agentRequest(agent, cert, path, { authorization: 'Bearer not-the-cluster-token' });
  assert.equal(wrong.status, 401);
  assert.equal((JSON.parse(wrong.body) as { reason?: string }).reason, 'Unauthorized');
  assert.equal((await agentRequest(agent, cert, path, {})).status, 401);
  assert.equal(await paused(), false, 'the refused requests did nothing');

  // The agent stops; its guest does not. A new agent picks up the same QEMU and drives it.
  assert.equal(await agent.stop(), 0);
  assert.deepEqual(qemuPidsUnder(agentDir), [pid]);
  agent = await start();
  assert.deepEqual(qemuPidsUnder(agentDir), [pid], 'the same QEMU after the restart');
  assert.equal((await cli(['pause', 'vmi', 'remote'])).code, 0);
  await eventually(paused, { what: 'the restarted agent to pause the guest', timeoutMs: 30_000 });
  assert.equal((await cli(['unpause', 'vmi', 'remote'])).code, 0);
  assert.match((await cli(['logs', 'remote'])).stdout, /sum=42/, 'the kept log survived the restart');
});
