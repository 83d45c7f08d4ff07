/**
 * Live migration of a VMI on the pod network (masquerade) between lab
 * hosts, keeping its addresses (src/net/pod/vmi-routes.ts,
 * src/net/pod/pod-network.ts): the test guest runs an echo server
 * (`nc -ll -e cat`) on host-1; a client in host-1's own namespace (the node
 * whose range the address is from) opens a TCP connection to its pod IP
 * and one through a Service's cluster IP; the VMI moves host-1 → host-2;
 * both open connections still echo, new ones to the pod IP and the Service
 * work, `status.interfaces` and the EndpointSlice's address are unchanged
 * (its nodeName follows), host-2's NetworkPolicy table covers the guest,
 * host-1 routes the /32 to host-2 and host-2 onto
 * its bridge, and host-1 keeps its lease of the address. Deleting the VMI
 * removes the host routes on both hosts and releases the lease. (Three
 * hosts: host-0 runs the server, whose own node is not on a lab address a
 * migration can use.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import type { LabHost } from '../../src/testing/hosts-lab.js';
import { eventually } from '../../src/testing/wait.js';
import type { ApiAccess } from '../e2e/vm-support.js';
import { vmis } from '../e2e/vm-support.js';
import { bootedGuest, podGuest, runOnConsole } from '../network/guests.js';
import { vireo } from '../subresources/support.js';
import { labSkip } from './requirements.js';
import { startLabCluster } from './support.js';

const labLabel = 'vireo.io/migration-network-lab';
const echoPort = 7000;

/** Connects to `ip:port`, pipes stdin to the socket and the socket to stdout; prints `connected` on stderr, exits 0 when the peer closes, 1 on an error. */
const clientScript = `
const net = require('node:net');
const [ip, port] = process.argv.slice(1);
const socket = net.connect({ host: ip, port: Number(port) }, () => { process.stderr.write('connected\\n'); });
socket.setNoDelay(true);
process.stdin.pipe(socket);
socket.pipe(process.stdout);
socket.on('error', (err) => { process.stderr.write('error ' + err.message + '\\n'); process.exit(1); });
socket.on('close', () => { process.exit(0); });
`;

/** A TCP connection opened from a lab host's namespace, held open by a child process, line by line. */
class LabTcpClient {
  private received = '';
  private errors = '';
  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stdout.on('data', (data: Buffer) => { this.received += data.toString('utf8'); });
    child.stderr.on('data', (data: Buffer) => { this.errors += data.toString('utf8'); });
  }

  static async open(prefix: readonly string[], ip: string, port: number, timeoutMs = 20_000): Promise<LabTcpClient> {
    const [program = 'nsenter', ...args] = prefix;
    const client = new LabTcpClient(spawn(program, [...args, process.execPath, '-e', clientScript, ip, String(port)], { stdio: 'pipe' }));
    try {
      await eventually(() => {
        if (client.child.exitCode !== null) throw new Error(`the connection to ${ip}:${port} failed: ${client.errors}`);
        return client.errors.includes('connected') || undefined;
      }, { what: `a TCP connection to ${ip}:${port}`, timeoutMs, intervalMs: 50 });
    } catch (err) {
      client.close();
      throw err;
    }
    return client;
  }

  /** Sends `line` and waits for the echo; throws when it does not come within `timeoutMs`. */
  async echo(line: string, timeoutMs = 20_000): Promise<void> {
    this.child.stdin.write(`${line}\n`);
    await eventually(() => {
      if (this.child.exitCode !== null) throw new Error(`the connection closed (${this.errors.trim()}) before "${line}" came back`);
      return this.received.includes(`${line}\n`) || undefined;
    }, { what: `"${line}" echoed`, timeoutMs, intervalMs: 50 });
  }

  close(): void {
    this.child.kill('SIGKILL');
  }
}

/** The routes of `proto 211` in `host`'s namespace, both families, one per line. */
async function podRoutes(lab: { exec: (host: LabHost, file: string, ...args: string[]) => Promise<string> }, host: LabHost): Promise<string> {
  const v4 = await lab.exec(host, 'ip', '-4', 'route', 'show', 'proto', '211');
  const v6 = await lab.exec(host, 'ip', '-6', 'route', 'show', 'proto', '211');
  return `${v4}${v6}`;
}

test('a VMI on the pod network migrates between lab hosts keeping its addresses; open TCP connections and a Service go on', { skip: labSkip, timeout: 900_000 }, async (t) => {
  const cluster = await startLabCluster({ hosts: 3 });
  t.after(() => cluster.close());
  const { lab, client, kc } = cluster;
  const [, host1, host2] = lab.hosts;
  assert.ok(host1 !== undefined && host2 !== undefined);
  const agentDir = (host: LabHost): string => join(cluster.root, host.name, 'agent');
  await Promise.all([host1, host2].map((host) => importTestGuest(new ImageStore(join(cluster.root, host.name, 'images')))));
  const access: ApiAccess = { url: cluster.server.url, token: cluster.server.token, caCert: cluster.server.caCert, client };
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } }).catch(() => undefined);
  // The guest starts on host-1; host-2 takes it only once it runs.
  await client.patch(resources.nodes, undefined, host1.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } } });
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } }, spec: { unschedulable: true } });

  const vmi = podGuest('echo', 'masquerade', { labels: { app: 'echo' } });
  Object.assign(vmi.spec as Record<string, unknown>, { nodeSelector: { [labLabel]: 'yes' } });
  await client.create(vmis, vmi);
  const guest = await bootedGuest(access, 'echo');
  t.after(() => { guest.console.close(); });
  assert.equal(stringAt(guest.vmi, 'status', 'nodeName'), host1.name);
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { spec: { unschedulable: false } });
  const interfacesBefore = recordsAt(guest.vmi, 'status', 'interfaces');
  const [ip = '', ip6 = ''] = (interfacesBefore[0]?.ipAddresses as string[] | undefined) ?? [];
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  const uid = guest.vmi.metadata.uid ?? '';
  const leaseDir = join(agentDir(host1), 'network', 'sandboxes', uid);
  assert.ok(existsSync(join(leaseDir, 'lease.json')), 'host-1 leased the address');
  await runOnConsole(guest.console, `(nc -ll -p ${echoPort} -e /bin/cat &)`, 'ECHO');

  await client.create(resources.services, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { selector: { app: 'echo' }, ports: [{ port: echoPort, targetPort: echoPort, protocol: 'TCP' }] } });
  const clusterIp = stringAt(await client.get(resources.services, 'default', 'echo'), 'spec', 'clusterIP') ?? '';
  // A node has a default route; a lab host has none, and a cluster IP must be routable before the output hook DNATs it.
  await lab.exec(host1, 'ip', 'route', 'add', 'default', 'via', lab.gateway);
  const serviceTable = networkNames(agentDir(host1)).serviceTable;
  await eventually(async () => (await lab.exec(host1, 'nft', 'list', 'table', 'inet', serviceTable).catch(() => '')).includes(`dnat ip to ${ip}:${echoPort}`) || undefined, { what: 'host-1\'s service proxy to program the endpoint', timeoutMs: 60_000, intervalMs: 250 });

  // The echo server may still be starting: the first connection is retried.
  const direct = await eventually(async () => {
    const c = await LabTcpClient.open(lab.command(host1), ip, echoPort).catch(() => undefined);
    if (c === undefined) return undefined;
    try {
      await c.echo('hello-before', 5_000);
      return c;
    } catch {
      c.close();
      return undefined;
    }
  }, { what: 'the guest\'s echo server to answer on its pod IP', timeoutMs: 60_000, intervalMs: 500 });
  t.after(() => { direct.close(); });
  const viaService = await LabTcpClient.open(lab.command(host1), clusterIp, echoPort);
  t.after(() => { viaService.close(); });
  await viaService.echo('service-before');

  await t.test('vireo migrate moves it host-1 → host-2; the migration succeeds', async (st) => {
    const out = await vireo(['migrate', 'echo'], kc);
    assert.equal(out.code, 0, out.stderr);
    const done = await eventually(async () => {
      const found = (await client.list(resources.virtualMachineInstanceMigrations, { namespace: 'default' })).items.find((m) => stringAt(m, 'spec', 'vmiName') === 'echo');
      const phase = stringAt(found, 'status', 'phase');
      return phase === 'Succeeded' || phase === 'Failed' ? found : undefined;
    }, { what: 'the migration to end', timeoutMs: 240_000, intervalMs: 300 });
    assert.equal(stringAt(done, 'status', 'phase'), 'Succeeded', JSON.stringify(done?.status));
    const moved = await client.get(vmis, 'default', 'echo');
    assert.equal(stringAt(moved, 'status', 'nodeName'), host2.name);
    st.diagnostic(`downtime ${done?.metadata.annotations?.['vireo.io/migration-downtime-ms'] ?? '?'} ms (QEMU's figure)`);
  });

  await t.test('the TCP connections opened before the move still answer, to the pod IP and through the Service', async () => {
    await direct.echo('hello-after');
    await viaService.echo('service-after');
  });

  await t.test('new connections to the same pod IP and to the Service work, from host-1 and from host-2', async () => {
    for (const host of [host1, host2]) {
      const fresh = await LabTcpClient.open(lab.command(host), ip, echoPort);
      await fresh.echo(`new-${host.name}`);
      fresh.close();
    }
    const service = await LabTcpClient.open(lab.command(host1), clusterIp, echoPort);
    await service.echo('new-service');
    service.close();
  });

  await t.test('status.interfaces keeps its addresses and MAC; the EndpointSlice keeps the address and names host-2', async () => {
    const after = await eventually(async () => {
      const found = await client.get(vmis, 'default', 'echo');
      return stringAt(found, 'status', 'phase') === 'Running' && stringAt(found, 'status', 'nodeName') === host2.name ? found : undefined;
    }, { what: 'the VMI Running on host-2', timeoutMs: 30_000 });
    const interfacesAfter = recordsAt(after, 'status', 'interfaces');
    assert.deepEqual(interfacesAfter.map((i) => [i.name, i.mac, i.ipAddresses]), interfacesBefore.map((i) => [i.name, i.mac, i.ipAddresses]));
    await eventually(async () => {
      const slices = (await client.list(resources.endpointSlices, { namespace: 'default', labelSelector: 'kubernetes.io/service-name=echo' })).items;
      const endpoints = slices.flatMap((s) => recordsAt(s, 'endpoints'));
      return endpoints.length === 1 && endpoints[0]?.nodeName === host2.name && JSON.stringify(endpoints[0]?.addresses) === JSON.stringify([ip]) || undefined;
    }, { what: 'the EndpointSlice to name host-2 with the same address', timeoutMs: 30_000 });
  });

  await t.test('host-2\'s NetworkPolicy covers the arrived guest: a policy without ingress rules blocks new connections, one allowing host-1 lets them in', async () => {
    const policyTable = networkNames(agentDir(host2)).policyTable;
    const table = (): Promise<string> => lab.exec(host2, 'nft', 'list', 'table', 'inet', policyTable).catch(() => '');
    await client.create(resources.networkPolicies, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-echo', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'echo' } }, policyTypes: ['Ingress'] } });
    await eventually(async () => (await table()).includes('default/echo ingress: no policy allows it') || undefined, { what: 'host-2 to isolate the migrated guest', timeoutMs: 60_000, intervalMs: 250 });
    await assert.rejects(LabTcpClient.open(lab.command(host1), ip, echoPort, 4_000), /timed out|failed/);
    await client.create(resources.networkPolicies, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'allow-host-1', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'echo' } }, ingress: [{ from: [{ ipBlock: { cidr: `${host1.address}/32` } }] }] } });
    await eventually(async () => (await table()).includes(host1.address) || undefined, { what: `host-2's policy to allow ${host1.address}`, timeoutMs: 60_000, intervalMs: 250 });
    const allowed = await LabTcpClient.open(lab.command(host1), ip, echoPort);
    await allowed.echo('allowed');
    allowed.close();
    for (const name of ['deny-echo', 'allow-host-1']) await client.delete(resources.networkPolicies, 'default', name);
  });

  await t.test('host-1 routes the kept address to host-2 (over its own range\'s route), host-2 onto its bridge; host-1 keeps the lease', async () => {
    const bridge2 = networkNames(agentDir(host2)).bridge;
    const via2 = `via ${host2.address.replace(/\./g, '\\.')}`;
    await eventually(async () => new RegExp(`^${ip.replace(/\./g, '\\.')} ${via2} `, 'm').test(await podRoutes(lab, host1)) || undefined, { what: `host-1's route of ${ip}/32 via host-2`, timeoutMs: 10_000 });
    if (ip6 !== '') assert.match(await podRoutes(lab, host1), new RegExp(`^${ip6} via fe80:`, 'm'));
    const routes2 = await podRoutes(lab, host2);
    assert.match(routes2, new RegExp(`^${ip.replace(/\./g, '\\.')} dev ${bridge2} `, 'm'));
    if (ip6 !== '') assert.match(routes2, new RegExp(`^${ip6} dev ${bridge2} `, 'm'));
    const got = (await lab.exec(host1, 'ip', 'route', 'get', ip)).split('\n')[0] ?? '';
    assert.match(got, new RegExp(via2), 'the /32 wins over host-1\'s bridge route');
    const lease = JSON.parse(readFileSync(join(leaseDir, 'lease.json'), 'utf8')) as { addresses: string[]; departed?: boolean };
    assert.equal(lease.departed, true);
    assert.ok(lease.addresses.some((a) => a.startsWith(`${ip}/`)), JSON.stringify(lease));
  });

  await t.test('deleting the VMI removes the host routes everywhere and releases the address on host-1', async () => {
    direct.close();
    viaService.close();
    await client.delete(resources.services, 'default', 'echo');
    await client.delete(vmis, 'default', 'echo');
    await eventually(async () => (await client.tryGet(vmis, 'default', 'echo')) === undefined || undefined, { what: 'the VMI gone', timeoutMs: 120_000 });
    for (const host of [host1, host2]) {
      await eventually(async () => !(await podRoutes(lab, host)).includes(`${ip} `) || undefined, { what: `${host.name}'s host route of ${ip} gone`, timeoutMs: 15_000 });
    }
    await eventually(() => !existsSync(leaseDir) || undefined, { what: 'host-1 to release the lease', timeoutMs: 15_000 });
  });
});
