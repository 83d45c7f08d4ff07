/**
 * Several `vireo server`s on one etcd cluster, with real processes: three
 * etcd members on loopback and two servers (the second with the first's
 * CA and token, `--pki-dir`). Both serve reads and writes; one holds the
 * leader Lease. The leader is killed (SIGKILL) while clients create objects
 * through both servers: no acknowledged create is lost, the other server
 * holds the Lease within the lease duration and its controllers run (a VM
 * gets its VMI, a new Node its pod range); an agent joined with both server
 * URLs keeps its Node Ready and its guest (the same QEMU) reported, and the
 * vireo CLI fails over to the living server. Then one etcd member is killed
 * under load (no acknowledged write lost, writes go on), and all members
 * are frozen: writes get a 503 naming etcd, and succeed again once etcd
 * thaws.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { ApiError } from '../../src/api/errors.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { renderKubeconfig } from '../../src/cli/kubeconfig.js';
import { defaultLeaderLease, leaderRecordOf } from '../../src/server/leader-election.js';
import { EtcdCluster } from '../../src/store/etcd-process.js';
import { freePort, startAgentProcess, startServerProcess } from '../../src/testing/process.js';
import type { AgentProcess, ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { vireo } from '../subresources/support.js';
import { blankImage, condition, importBlankImage, phase, qemuPidsUnder } from '../agent/support.js';
import { hasBinary } from '../../src/testing/binaries.js';

const skip = !hasBinary('etcd') ? 'etcd is not installed (scripts/setup installs etcd-server)' : !hasBinary('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed' : false;

/** One running server of the test: its process and what identifies it in the Lease. */
interface Member {
  process: ServerProcess;
  identity: string;
  client: HttpClient;
}

/** Creates ConfigMaps `<prefix>-N` through `client` until `until()` says stop; records every acknowledged one. */
async function createLoop(client: HttpClient, prefix: string, acked: string[], until: () => boolean): Promise<void> {
  for (let i = 0; !until(); i++) {
    const name = `${prefix}-${i}`;
    try {
      await client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { i: String(i) } });
      acked.push(name);
    } catch {
      // Not acknowledged: not counted. A short pause keeps a dead server from being hammered.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** The Lease holder, read through `client`. */
async function leaseHolder(client: HttpClient): Promise<{ holder: string; acquireTime: string; transitions: number } | undefined> {
  const lease = await client.tryGet(resources.leases, defaultLeaderLease.namespace, defaultLeaderLease.name);
  if (lease === undefined) return undefined;
  const record = leaderRecordOf(lease);
  return { holder: record.holderIdentity, acquireTime: record.acquireTime, transitions: record.leaseTransitions };
}

function identityOf(server: ServerProcess): Promise<string> {
  return eventually(() => /leader election: candidate (\S+) for Lease/.exec(server.output())?.[1], { what: 'the server to print its candidate identity', timeoutMs: 10_000 });
}

/** Names of the ConfigMaps whose names start with `prefix-`, read through `client`. */
async function presentNames(client: HttpClient): Promise<Set<string>> {
  const list = await client.list(resources.configMaps, { namespace: 'default' });
  return new Set(list.items.map((item) => item.metadata.name ?? ''));
}

function lost(acked: readonly string[], present: Set<string>): string[] {
  return acked.filter((name) => !present.has(name));
}

function nodeReady(node: KObject | undefined): boolean {
  return recordsAt(node, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'True');
}

test('two vireo servers on a three-member etcd: one leads, the leader dies, nothing acknowledged is lost and the other takes over', { skip, timeout: 600_000 }, async (t) => {
  // Short paths: QEMU's unix sockets live under the agent's data directory.
  const root = mkdtempSync(join(tmpdir(), 'vha-'));
  const started: { etcd?: EtcdCluster; servers: ServerProcess[]; agent?: AgentProcess; clients: HttpClient[] } = { servers: [], clients: [] };
  const agentDir = join(root, 'c');
  t.after(async () => {
    started.etcd?.resume();
    const living = started.clients.at(-1);
    await living?.delete(resources.virtualMachineInstances, 'default', 'guest-c').catch(() => undefined);
    await eventually(async () => (await living?.tryGet(resources.virtualMachineInstances, 'default', 'guest-c')) === undefined, { timeoutMs: 60_000, what: 'the VMI to go' }).catch(() => undefined);
    await started.agent?.stop();
    for (const server of started.servers) {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
      await server.exited;
    }
    for (const client of started.clients) client.close();
    for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
    await started.etcd?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const etcd = await EtcdCluster.start();
  started.etcd = etcd;
  const dirA = join(root, 'a');
  const startMember = async (name: string, options: { pkiDir?: string } = {}): Promise<Member> => {
    const server = await startServerProcess({ dataDir: join(root, name), port: await freePort(), store: etcd.storeUrl, nodeName: `ha-${name}`, timeoutMs: 90_000, ...options });
    started.servers.push(server);
    const client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
    started.clients.push(client);
    return { process: server, identity: await identityOf(server), client };
  };
  const a = await startMember('a');
  const b = await startMember('b', { pkiDir: dirA });
  assert.notEqual(a.identity, b.identity);
  assert.equal(b.process.token, a.process.token, 'one cluster token');

  await t.test('both servers serve reads and writes, and exactly one holds the leader Lease', async () => {
    await a.client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'via-a', namespace: 'default' }, data: { k: 'a' } });
    assert.equal(stringAt(await b.client.get(resources.configMaps, 'default', 'via-a'), 'data', 'k'), 'a');
    await b.client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'via-b', namespace: 'default' }, data: { k: 'b' } });
    assert.equal(stringAt(await a.client.get(resources.configMaps, 'default', 'via-b'), 'data', 'k'), 'b');
    // A CRD made through one server is served by the other too.
    await a.client.create({ group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', namespaced: false }, {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.ha.vireo.test' },
      spec: { group: 'ha.vireo.test', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }] },
    });
    const widgets = { group: 'ha.vireo.test', version: 'v1', plural: 'widgets', namespaced: true };
    await eventually(async () => {
      try {
        return await b.client.create(widgets, { apiVersion: 'ha.vireo.test/v1', kind: 'Widget', metadata: { name: 'w', namespace: 'default' } });
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
        throw err;
      }
    }, { what: 'the other server to serve the new CRD', timeoutMs: 10_000 });
    const held = await eventually(async () => {
      const lease = await leaseHolder(a.client);
      return lease !== undefined && [a.identity, b.identity].includes(lease.holder) ? lease : undefined;
    }, { what: 'one of the servers to hold the Lease', timeoutMs: 20_000 });
    // The holder keeps it while it lives: renewals, no transitions.
    const renewedBefore = stringAt(await a.client.get(resources.leases, defaultLeaderLease.namespace, defaultLeaderLease.name), 'spec', 'renewTime');
    await eventually(async () => stringAt(await b.client.get(resources.leases, defaultLeaderLease.namespace, defaultLeaderLease.name), 'spec', 'renewTime') !== renewedBefore, { what: 'the leader to renew its Lease', timeoutMs: 10_000 });
    const after = await leaseHolder(b.client);
    assert.equal(after?.holder, held.holder, 'the same server still leads');
    assert.equal(after?.transitions, held.transitions);
    assert.equal(leaderRecordOf(await a.client.get(resources.leases, defaultLeaderLease.namespace, defaultLeaderLease.name)).leaseDurationSeconds, 15);
  });

  const leaderFirst = (await leaseHolder(a.client))?.holder === a.identity;
  const leader = leaderFirst ? a : b;
  const survivor = leaderFirst ? b : a;
  // The kubeconfig of both servers, the leader first: the vireo CLI must get past it once it is dead.
  const bothKubeconfig = join(root, 'both.kubeconfig');
  writeFileSync(bothKubeconfig, renderKubeconfig({ server: leader.process.url, moreServers: [survivor.process.url], caCert: a.process.caCert, token: a.process.token }));

  let qemuPid = 0;
  await t.test('an agent joins through a list of both servers and runs a guest', async () => {
    const created = await vireo(['token', 'create'], { kubeconfig: bothKubeconfig });
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.split('\n')[0] ?? '';
    assert.match(created.stdout, new RegExp(`--server ${leader.process.url},${survivor.process.url} `), 'the join line names every server');
    await importBlankImage(new ImageStore(join(agentDir, 'images')));
    started.agent = await startAgentProcess({ join: { server: `${leader.process.url},${survivor.process.url}`, token }, dataDir: agentDir, nodeName: 'node-c', port: await freePort(), timeoutMs: 90_000 });
    // TCG without probing KVM first (the probe hangs on this machine's KVM), as KubeVirt's developer setting says.
    await leader.client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } });
    await leader.client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } });
    await leader.client.create(resources.virtualMachineInstances, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'guest-c', namespace: 'default' },
      spec: {
        nodeSelector: { 'kubernetes.io/hostname': 'node-c' },
        terminationGracePeriodSeconds: 0,
        domain: { devices: { autoattachGraphicsDevice: false, autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, memory: { guest: '64Mi' }, resources: {} },
        volumes: [{ name: 'root', containerDisk: { image: blankImage } }],
      },
    });
    let last: KObject | undefined;
    await eventually(async () => {
      last = await leader.client.tryGet(resources.virtualMachineInstances, 'default', 'guest-c');
      return last !== undefined && phase(last) === 'Running';
    }, { what: 'the guest on node-c to run (after the agent\'s KVM probe, slow on a loaded machine)', timeoutMs: 240_000, intervalMs: 250 }).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; the VMI: ${JSON.stringify(last?.status)}; node-c's agent said:\n${started.agent?.output() ?? ''}`);
    });
    const pids = qemuPidsUnder(agentDir);
    assert.equal(pids.length, 1, 'one QEMU under node-c');
    qemuPid = pids[0] ?? 0;
  });

  await t.test('SIGKILL of the leader under load: every acknowledged create is there, the other server leads within the lease duration and its controllers run', async () => {
    const acked: string[] = [];
    let stopAt = Number.POSITIVE_INFINITY;
    const until = (): boolean => Date.now() >= stopAt;
    const both = new HttpClient({ server: [leader.process.url, survivor.process.url], token: a.process.token, caCert: a.process.caCert });
    started.clients.push(both);
    const loops = [createLoop(leader.client, 'kill-leader-l', acked, until), createLoop(survivor.client, 'kill-leader-s', acked, until), createLoop(both, 'kill-leader-both', acked, until)];
    await eventually(() => acked.length >= 60, { what: 'creates to be acknowledged before the kill', timeoutMs: 60_000 });
    const before = await leaseHolder(survivor.client);
    leader.process.child.kill('SIGKILL');
    const killedAt = Date.now();
    assert.equal(await leader.process.exited, 'SIGKILL');
    const ackedAtKill = acked.length;

    // Controllers after the kill: a VM gets its VMI (kept off every node), a new Node gets a pod range.
    await survivor.client.create(resources.virtualMachines, {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'after-kill', namespace: 'default' },
      spec: { runStrategy: 'Always', template: { spec: { nodeSelector: { 'vireo.test/nowhere': 'true' }, domain: { devices: {}, memory: { guest: '64Mi' } } } } },
    });
    await survivor.client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'ha-fresh', labels: { 'kubernetes.io/hostname': 'ha-fresh' } } });

    const taken = await eventually(async () => {
      const lease = await leaseHolder(survivor.client);
      return lease?.holder === survivor.identity ? lease : undefined;
    }, { what: 'the surviving server to hold the Lease', timeoutMs: 30_000, intervalMs: 100 });
    const takeoverMs = Date.parse(taken.acquireTime) - killedAt;
    t.diagnostic(`leader failover: the survivor acquired the Lease ${takeoverMs} ms after the kill`);
    // The dead leader's last renewal came before its death, so its lease runs out at most 15 s after it;
    // the margin is for the survivor's timer on a loaded machine.
    assert.ok(takeoverMs <= 15_500, `the Lease changed hands ${takeoverMs} ms after the kill (lease duration 15 s)`);
    assert.equal(taken.transitions, (before?.transitions ?? 0) + 1, 'leaseTransitions counts the change');
    await eventually(async () => (await survivor.client.tryGet(resources.virtualMachineInstances, 'default', 'after-kill')) !== undefined, { what: 'the VM controller on the new leader to make the VMI', timeoutMs: 20_000 });
    await eventually(async () => stringAt(await survivor.client.get(resources.nodes, undefined, 'ha-fresh'), 'spec', 'podCIDR'), { what: 'node IPAM on the new leader to give the Node a pod range', timeoutMs: 20_000 });

    // Writes go on through the survivor and the client of both; then every acknowledged create must be there.
    const ackedAtTakeover = acked.length;
    await eventually(() => acked.length >= ackedAtTakeover + 30, { what: 'creates to go on after the takeover', timeoutMs: 30_000 });
    stopAt = Date.now();
    await Promise.all(loops);
    assert.ok(acked.some((name, i) => i >= ackedAtKill && name.startsWith('kill-leader-both-')), 'the client of both servers wrote after the kill');
    assert.deepEqual(lost(acked, await presentNames(survivor.client)), [], `of ${acked.length} acknowledged creates`);
  });

  await t.test('the agent with both URLs keeps its Node Ready and its guest reported; the vireo CLI fails over', async () => {
    const readLease = async (): Promise<number> => Date.parse(stringAt(await survivor.client.get(resources.leases, 'kube-node-lease', 'node-c'), 'spec', 'renewTime') ?? '');
    const renewed = await readLease();
    await eventually(async () => (await readLease()) > renewed, { what: 'node-c to renew its Lease through the surviving server', timeoutMs: 30_000 });
    assert.ok(nodeReady(await survivor.client.get(resources.nodes, undefined, 'node-c')), 'node-c is Ready');
    assert.deepEqual(qemuPidsUnder(agentDir), [qemuPid], 'the same QEMU runs the guest');
    // The first server of the kubeconfig is dead: the CLI goes on to the next; the agent reports the pause through it.
    const paused = await vireo(['pause', 'vmi', 'guest-c'], { kubeconfig: bothKubeconfig, timeoutMs: 60_000 });
    assert.equal(paused.code, 0, paused.stderr);
    await eventually(async () => {
      const vmi = await survivor.client.get(resources.virtualMachineInstances, 'default', 'guest-c');
      return condition(vmi, 'Paused')?.status === 'True';
    }, { what: 'node-c to report the guest Paused', timeoutMs: 30_000 });
    const unpaused = await vireo(['unpause', 'vmi', 'guest-c'], { kubeconfig: bothKubeconfig, timeoutMs: 60_000 });
    assert.equal(unpaused.code, 0, unpaused.stderr);
    assert.deepEqual(qemuPidsUnder(agentDir), [qemuPid], 'still the same QEMU');
  });

  await t.test('one of three etcd members killed under load: no acknowledged write lost, writes go on', async () => {
    const acked: string[] = [];
    let stopAt = Number.POSITIVE_INFINITY;
    const loop = createLoop(survivor.client, 'kill-member', acked, () => Date.now() >= stopAt);
    await eventually(() => acked.length >= 30, { what: 'creates before the member dies', timeoutMs: 30_000 });
    const [member] = etcd.members;
    assert.ok(member !== undefined);
    await member.kill();
    const atKill = acked.length;
    await eventually(() => acked.length >= atKill + 30, { what: 'writes to go on with two members', timeoutMs: 60_000 });
    stopAt = Date.now();
    await loop;
    assert.deepEqual(lost(acked, await presentNames(survivor.client)), [], `of ${acked.length} acknowledged creates`);
    // Back with its data: it catches up, and the next test freezes all three.
    await member.restart();
  });

  await t.test('etcd frozen: writes get a 503 naming etcd, and work again by themselves once it thaws', async () => {
    etcd.pause();
    let refusal: unknown;
    try {
      await survivor.client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'while-frozen', namespace: 'default' } });
    } catch (err) {
      refusal = err;
    }
    assert.ok(refusal instanceof ApiError, `the write was refused: ${String(refusal)}`);
    assert.equal(refusal.reason, 'ServiceUnavailable');
    assert.match(refusal.message, /etcd at .* did not answer/);
    etcd.resume();
    await eventually(async () => {
      try {
        await survivor.client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-thaw', namespace: 'default' } });
        return true;
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'AlreadyExists') return true;
        return false;
      }
    }, { what: 'writes to work once etcd thaws', timeoutMs: 30_000, intervalMs: 500 });
  });
});
