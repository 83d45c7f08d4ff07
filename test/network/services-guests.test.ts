/**
 * Services and DNS end to end with real guests (TCG): `vireo expose` makes
 * a NodePort Service of a masquerade guest's HTTP server; a bridge guest
 * fetches it on the cluster IP and on the node port of the node's gateway,
 * the served guest fetches itself through its own Service (hairpin), the
 * node itself fetches the cluster IP; the guests got the node's DNS server
 * and the cluster search list by DHCP, and resolve the Service's name and
 * a VMI's hostname under its headless subdomain Service. Deleting the
 * Service removes its rules and stops its node port; the stopped agent
 * leaves no table behind. The cluster IPs come from a range of this test's
 * own: only the agent's table ever routes them, and the test never sends
 * to one that is not programmed (it would leave by the host's default route).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { get } from 'node:http';
import { randomInt } from 'node:crypto';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { parseServiceNetwork } from '../../src/apiserver/index.js';
import { resources } from '../../src/client/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { closeVmEnv, openVmEnv, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { ConsoleCapture, VmEnv } from '../e2e/vm-support.js';
import { vireo } from '../subresources/support.js';
import { bootedGuest, podGuest, runOnConsole } from './guests.js';
import { hostNetworkState } from './support.js';

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  // A /16 of 10.64.0.0/11 per test file: the agents of test files running at once never program the same cluster IP.
  env = await openVmEnv('vireo-services-test', { serviceNetwork: parseServiceNetwork(`10.${64 + randomInt(32)}.0.0/16`, '30000-32767') });
  await importTestGuest(env.images);
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
  const names = networkNames(env.agentDir);
  assert.deepEqual(hostNetworkState([names.bridge, names.serviceTable, names.netnsPrefix]), { netns: [], links: [], tables: [] }, 'the stopped agent left its service table or pod network behind');
});

function serviceTable(): string {
  return execFileSync('nft', ['list', 'table', 'inet', networkNames(env.agentDir).serviceTable], { encoding: 'utf8' });
}

function httpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host, port, path: '/', timeout: 20_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => { resolve(body); });
    }).on('error', reject).on('timeout', function (this: { destroy: (e: Error) => void }) { this.destroy(new Error('timed out')); });
  });
}

/** The guest's DHCP lease (it may come after the ready marker) gave it the node's DNS server and a pod's search list; the server's address. */
async function checkResolver(console: ConsoleCapture): Promise<string> {
  await eventually(() => console.text().includes('network: eth0 '), { what: 'the guest\'s DHCP lease', timeoutMs: 60_000 }).catch(async (err: unknown) => {
    const diag = await runOnConsole(console, 'ip -o link; ip -4 -o addr; ps | grep -v grep | grep udhcpc; udhcpc -i eth0 -n -q -t 3 -T 1 2>&1', 'DIAG');
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${diag}`);
  });
  const resolv = await runOnConsole(console, 'cat /etc/resolv.conf', 'RESOLV');
  assert.match(resolv, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/);
  const server = /nameserver (\d+\.\d+\.\d+\.1)\b/.exec(resolv)?.[1];
  assert.ok(server !== undefined, resolv);
  return server;
}

test('a Service reaches a guest by cluster IP, node port and hairpin; guests resolve Service and VMI names by the DHCP-given DNS; deleting it stops its traffic', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  await env.client.create(vmis, podGuest('web', 'masquerade', { labels: { app: 'web' } }));
  const named = podGuest('client', 'bridge', { labels: { app: 'named' } });
  Object.assign(named.spec as Record<string, unknown>, { hostname: 'www', subdomain: 'web-hosts' });
  await env.client.create(vmis, named);
  const exposed = await vireo(['expose', 'vmi', 'web', '--port', '80', '--type', 'NodePort', '--name', 'web'], { kubeconfig: env.server.kubeconfig });
  assert.equal(exposed.code, 0, exposed.stderr);
  const headless: KObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-hosts', namespace: 'default' }, spec: { clusterIP: 'None', selector: { app: 'named' }, ports: [{ port: 80 }] } };
  await env.client.create(resources.services, headless);

  const served = await bootedGuest(env, 'web');
  const webResolver = await checkResolver(served.console);
  const client = await bootedGuest(env, 'client');
  const clientResolver = await checkResolver(client.console);
  const podIp = (vmi: KObject): string => stringAt(recordsAt(vmi, 'status', 'interfaces')[0], 'ipAddress') ?? '';
  const webIp = podIp(served.vmi);
  const gateway = podIp(client.vmi).replace(/\.\d+$/, '.1');
  assert.deepEqual([webResolver, clientResolver], [gateway, gateway], 'the DNS server is the node\'s gateway');
  const svc = await env.client.get(resources.services, 'default', 'web');
  const clusterIp = stringAt(svc, 'spec', 'clusterIP') ?? '';
  const nodePort = Number(recordsAt(svc, 'spec', 'ports')[0]?.nodePort);
  assert.match(clusterIp, /^10\.(6[4-9]|[7-8]\d|9[0-5])\./);
  // The endpoint is programmed once the guest is Ready and its EndpointSlice says so.
  await eventually(() => serviceTable().includes(`dnat ip to ${webIp}:80`), { what: 'the web endpoint in the service table', timeoutMs: 60_000, intervalMs: 250 });

  // Cluster IP and node port from the other guest; the cluster IP from the served guest itself (hairpin).
  const byClusterIp = await runOnConsole(client.console, `wget -qO- http://${clusterIp}/`, 'VIACIP');
  assert.match(byClusterIp, /Vireo test guest/);
  assert.match(byClusterIp, /VIACIP-0/);
  const byNodePort = await runOnConsole(client.console, `wget -qO- http://${gateway}:${nodePort}/`, 'VIANODEPORT');
  assert.match(byNodePort, /Vireo test guest/);
  assert.match(byNodePort, /VIANODEPORT-0/);
  const hairpin = await runOnConsole(served.console, `wget -qO- http://${clusterIp}/`, 'HAIRPIN');
  assert.match(hairpin, /Vireo test guest/);
  assert.match(hairpin, /HAIRPIN-0/);
  // The node's own processes reach the cluster IP too (the nat output hook).
  assert.match(await httpGet(clusterIp, 80), /Vireo test guest/);

  // Names: the Service's, and the VMI's hostname under its headless subdomain Service.
  const serviceName = await runOnConsole(client.console, `nslookup web.default.svc.cluster.local ${clientResolver}`, 'LOOKUPSVC');
  assert.match(serviceName, new RegExp(`Address:? +${clusterIp.replaceAll('.', '\\.')}\\b`));
  const hostName = await runOnConsole(client.console, `nslookup www.web-hosts.default.svc.cluster.local ${clientResolver}`, 'LOOKUPHOST');
  assert.match(hostName, new RegExp(`Address:? +${podIp(client.vmi).replaceAll('.', '\\.')}\\b`));

  // Deleting the Service: its rules go, and its node port no longer leads anywhere.
  await env.client.delete(resources.services, 'default', 'web');
  await eventually(() => !serviceTable().includes(clusterIp), { what: 'the Service gone from the service table', timeoutMs: 30_000, intervalMs: 250 });
  const afterDelete = await runOnConsole(client.console, `wget -qO- http://${gateway}:${nodePort}/`, 'GONE');
  assert.doesNotMatch(afterDelete, /Vireo test guest/);
  assert.doesNotMatch(afterDelete, /GONE-0/);

  served.console.close();
  client.console.close();
  for (const name of ['web', 'client']) await env.client.delete(vmis, 'default', name);
  await eventually(async () => {
    for (const name of ['web', 'client']) if ((await env.client.tryGet(vmis, 'default', name)) !== undefined) return false;
    return true;
  }, { what: 'the VMIs gone', timeoutMs: 60_000 });
});
