/**
 * The pod network across lab hosts with real guests (TCG): a client VMI
 * pinned to host-1 and a web VMI pinned to host-2 (nodeSelector
 * `kubernetes.io/hostname`). The client fetches the web guest's page by
 * its pod IP (through the routes between the hosts), by a Service's
 * cluster IP (host-1's service proxy DNATs to host-2's pod), and by
 * IPv6 (the route via host-2's link-local address); the test process
 * fetches it on host-1's node port (DNAT to host-2, masqueraded so the
 * answer comes back through host-1). A NetworkPolicy on the web VMI
 * without an ingress rule blocks the client; one allowing the client's
 * label lets it through, which it can only do if the client's source
 * address came across unmasqueraded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { ImageStore } from '../../src/agent/images/index.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import type { LabHost } from '../../src/testing/hosts-lab.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import type { ApiAccess, ConsoleCapture } from '../e2e/vm-support.js';
import { vmis } from '../e2e/vm-support.js';
import { allowClient, bootedGuest, denyWeb, podGuest, runOnConsole } from '../network/guests.js';
import { labSkip } from './requirements.js';
import { startLabCluster } from './support.js';


/** The test guest pinned to `host`. */
function pinnedGuest(name: string, host: LabHost, labels: Record<string, string>): KObject {
  const vmi = podGuest(name, 'masquerade', { labels });
  Object.assign(vmi.spec as Record<string, unknown>, { nodeSelector: { 'kubernetes.io/hostname': host.name } });
  return vmi;
}

/** Fetches `url` from the client guest (up to 5 s): true when the page came. */
async function fetches(console: ConsoleCapture, url: string, marker: string): Promise<boolean> {
  const command = `timeout 5 wget -qO- ${url}`;
  const output = await runOnConsole(console, command, marker);
  const came = /Vireo test guest/.test(output.replace(command, ''));
  assert.equal(came, new RegExp(`${marker}-0`).test(output), `the page came but wget failed, or the reverse:\n${output}`);
  return came;
}

/** GET http://host:port/ from the test process. */
function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', timeout: 20_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => { resolve(body); });
    });
    req.on('error', reject).on('timeout', () => { req.destroy(new Error('timed out')); });
    req.end();
  });
}

test('guests on two lab hosts reach each other by pod IP, cluster IP, node port and IPv6; a NetworkPolicy across hosts denies and allows by label', { skip: labSkip, timeout: 1_200_000 }, async (t) => {
  const cluster = await startLabCluster({ hosts: 3 });
  t.after(() => cluster.close());
  const { lab, client } = cluster;
  const [, host1, host2] = lab.hosts;
  assert.ok(host1 !== undefined && host2 !== undefined);
  for (const host of [host1, host2]) await importTestGuest(new ImageStore(join(cluster.root, host.name, 'images')));
  const access: ApiAccess = { url: cluster.server.url, token: cluster.server.token, caCert: cluster.server.caCert, client };
  const kc = cluster.kc;
  const nft = (host: LabHost, table: string): Promise<string> => lab.exec(host, 'nft', 'list', 'table', 'inet', table).catch(() => '');

  await client.create(vmis, pinnedGuest('client', host1, { app: 'client' }));
  await client.create(vmis, pinnedGuest('web', host2, { app: 'web' }));
  const booted = await bootedGuest(access, 'client');
  const web = await bootedGuest(access, 'web');
  t.after(() => { booted.console.close(); web.console.close(); });
  assert.equal(stringAt(booted.vmi, 'status', 'nodeName'), host1.name);
  assert.equal(stringAt(web.vmi, 'status', 'nodeName'), host2.name);
  const addresses = (vmi: KObject): string[] => (recordsAt(vmi, 'status', 'interfaces')[0]?.ipAddresses as string[] | undefined) ?? [];
  const [webIp = '', webIp6 = ''] = addresses(web.vmi);
  const [clientIp = ''] = addresses(booted.vmi);
  assert.match(webIp, /^\d+\.\d+\.\d+\.\d+$/);
  assert.notEqual(webIp.split('.')[2], clientIp.split('.')[2], 'the two guests are in two nodes\' pod ranges');

  await t.test('the guest on host-1 fetches the page of the guest on host-2 by its pod IP', async () => {
    assert.equal(await fetches(booted.console, `http://${webIp}/`, 'PODIP'), true);
  });

  await t.test('a Service whose endpoint is on host-2 is reached from host-1 by cluster IP, and on host-1\'s node port', async () => {
    const svc: KObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ port: 8080, targetPort: 80, protocol: 'TCP' }] } };
    await client.create(resources.services, svc);
    const created = await client.get(resources.services, 'default', 'web');
    const clusterIp = stringAt(created, 'spec', 'clusterIP') ?? '';
    const nodePort = Number(recordsAt(created, 'spec', 'ports')[0]?.nodePort);
    const serviceTable = networkNames(join(cluster.root, host1.name, 'agent')).serviceTable;
    await eventually(async () => (await nft(host1, serviceTable)).includes(`dnat ip to ${webIp}:80`) || undefined, { what: 'host-1\'s service proxy to program the endpoint on host-2', timeoutMs: 60_000, intervalMs: 250 });
    assert.equal(await fetches(booted.console, `http://${clusterIp}:8080/`, 'CLUSTERIP'), true);
    // From outside the cluster (the test process on the lab bridge): host-1 DNATs to host-2 and masquerades, so host-2 answers through host-1.
    assert.match(await httpGet(host1.address, nodePort), /Vireo test guest/);
    await client.delete(resources.services, 'default', 'web');
  });

  await t.test('a NetworkPolicy on the guest of host-2 denies the guest of host-1, then allows it by label', async () => {
    const policyTable = networkNames(join(cluster.root, host2.name, 'agent')).policyTable;
    const apply = async (yaml: string): Promise<void> => {
      const result = await kubectl(['apply', '-f', '-'], { ...kc, stdin: yaml });
      assert.equal(result.code, 0, result.stderr);
    };
    await apply(denyWeb);
    await eventually(async () => (await nft(host2, policyTable)).includes('default/web ingress: no policy allows it') || undefined, { what: 'host-2 to isolate the web guest', timeoutMs: 60_000 });
    assert.equal(await fetches(booted.console, `http://${webIp}/`, 'DENIED'), false);
    await apply(allowClient);
    await eventually(async () => (await nft(host2, policyTable)).includes(clientIp) || undefined, { what: `host-2's policy to allow the client's address ${clientIp}`, timeoutMs: 60_000 });
    // The rule allows the client's pod address: had host-1 masqueraded it, host-2 would still drop it.
    assert.equal(await fetches(booted.console, `http://${webIp}/`, 'ALLOWED'), true);
    for (const name of ['deny-web', 'allow-client']) await kubectl(['delete', 'networkpolicy', name], kc);
  });

  await t.test('over IPv6, through the route via host-2\'s link-local address', async () => {
    assert.match(webIp6, /:/);
    const settled = (text: string): boolean => text.split('\n').some((line) => /inet6 fd10:0:2::2\//.test(line) && !/tentative/.test(line));
    for (const [name, guest] of [['client', booted], ['web', web]] as const) {
      await eventually(async () => settled(await runOnConsole(guest.console, 'ip -6 -o addr show dev eth0', 'ADDR6')), { what: `the ${name} guest's DHCPv6 address past duplicate address detection`, timeoutMs: 120_000, intervalMs: 2_000 });
    }
    await eventually(async () => /default via fe80:/.test(await runOnConsole(booted.console, 'ip -6 route show default', 'ROUTE6')) || undefined, { what: 'the client guest\'s IPv6 default route', timeoutMs: 60_000, intervalMs: 2_000 });
    assert.equal(await fetches(booted.console, `http://[${webIp6}]/`, 'PODIP6'), true);
  });

  for (const name of ['client', 'web']) await client.delete(vmis, 'default', name);
  await eventually(async () => {
    for (const name of ['client', 'web']) if ((await client.tryGet(vmis, 'default', name)) !== undefined) return undefined;
    return true;
  }, { what: 'the VMIs gone', timeoutMs: 120_000 });
});
