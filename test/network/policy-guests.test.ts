/**
 * NetworkPolicy enforced by the node agent on real guests (TCG): two
 * masquerade guests on the pod network; the client fetches the web
 * guest's page on its pod address, typed on its serial console; a policy
 * selecting the web guest with no ingress rule stops it (and the drop is
 * counted in the agent's table), an allow from the client's label on port
 * 80 lets it through again, and deleting the policies restores it. The
 * policies are written with real kubectl. Stopping the agent with its
 * guests removes the policy tables.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { closeVmEnv, leftoverQemus, openVmEnv, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { bootedGuest, podGuest, runOnConsole } from './guests.js';
import { hostNetworkState } from './support.js';

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-policy-guests-test');
  await importTestGuest(env.images);
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
  const names = networkNames(env.agentDir);
  assert.deepEqual(hostNetworkState([names.bridge, names.table, names.policyTable, names.netnsPrefix]), { netns: [], links: [], tables: [] }, 'the stopped agent left its pod network or policy tables behind');
});

/** The agent's policy table as nft lists it ('' while it does not exist). */
function policyTable(): string {
  try {
    return execFileSync('nft', ['list', 'table', 'inet', networkNames(env.agentDir).policyTable], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

async function kubectlOk(args: string[], stdin?: string): Promise<void> {
  const result = await kubectl(args, { kubeconfig: env.server.kubeconfig, ...(stdin === undefined ? {} : { stdin }) });
  assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
}

const denyWeb = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`;

const allowClient = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: client}}}]
    ports: [{protocol: TCP, port: 80}]
`;

test('a NetworkPolicy on a real guest: denied without an ingress rule, allowed from the client label on port 80, open again once deleted', { skip: skipWithoutQemu, timeout: 600_000 }, async () => {
  await env.client.create(vmis, podGuest('client', 'masquerade', { labels: { app: 'client' } }));
  await env.client.create(vmis, podGuest('web', 'masquerade', { labels: { app: 'web' } }));
  const client = await bootedGuest(env, 'client');
  const web = await bootedGuest(env, 'web');
  const webIp = stringAt(recordsAt(web.vmi, 'status', 'interfaces')[0], 'ipAddress') ?? '';
  assert.match(webIp, /^10\.\d+\.\d+\.\d+$/);
  web.console.close();
  // The agent started enforcing once the pod network came up; no policy selects either guest yet.
  await eventually(() => policyTable().includes('chain ingress'), { what: 'the agent to program its policy table', timeoutMs: 30_000 });
  assert.doesNotMatch(policyTable(), /no policy allows it/);

  const fetchCommand = `timeout 5 wget -qO- http://${webIp}/`;
  const open = await runOnConsole(client.console, fetchCommand, 'OPEN');
  assert.match(open, /Vireo test guest/);
  assert.match(open, /OPEN-0/);

  // Isolated for ingress, no rule allows: the client's connection is dropped at the node bridge.
  await kubectlOk(['apply', '-f', '-'], denyWeb);
  await eventually(() => policyTable().includes('default/web ingress: no policy allows it'), { what: 'the deny to be programmed', timeoutMs: 30_000 });
  const denied = await runOnConsole(client.console, fetchCommand, 'DENIED');
  assert.doesNotMatch(denied.replace(fetchCommand, ''), /Vireo test guest/);
  assert.doesNotMatch(denied, /DENIED-0/, 'wget failed');
  const dropped = /counter packets (\d+) bytes \d+ drop comment "default\/web ingress: no policy allows it"/.exec(policyTable());
  assert.ok(Number(dropped?.[1] ?? 0) > 0, `the table counted the dropped packets:\n${policyTable()}`);

  // Allows add up: the client's label on TCP 80 gets through while deny-web still selects the guest.
  await kubectlOk(['apply', '-f', '-'], allowClient);
  await eventually(() => policyTable().includes('comment "default/allow-client ingress[0]"'), { what: 'the allow to be programmed', timeoutMs: 30_000 });
  const allowed = await runOnConsole(client.console, fetchCommand, 'ALLOWED');
  assert.match(allowed, /Vireo test guest/);
  assert.match(allowed, /ALLOWED-0/);

  // Deleted: nothing isolates the guest any more.
  await kubectlOk(['delete', 'networkpolicy', 'deny-web', 'allow-client', '-n', 'default']);
  await eventually(() => !policyTable().includes('no policy allows it'), { what: 'the policies to be removed from the table', timeoutMs: 30_000 });
  const reopened = await runOnConsole(client.console, fetchCommand, 'REOPENED');
  assert.match(reopened, /Vireo test guest/);
  assert.match(reopened, /REOPENED-0/);
  client.console.close();

  for (const name of ['client', 'web']) await env.client.delete(vmis, 'default', name);
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'client')) === undefined && (await env.client.tryGet(vmis, 'default', 'web')) === undefined, { what: 'the VMIs gone', timeoutMs: 60_000 });
  assert.deepEqual(leftoverQemus(env), []);
});
