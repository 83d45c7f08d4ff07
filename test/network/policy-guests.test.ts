/**
 * NetworkPolicy and Calico policy enforced by the node agent on real
 * guests (TCG): two masquerade guests on the pod network, booted once for
 * the file; the client fetches the web guest's page on its pod address
 * (and pings it), typed on its serial console. Ingress: a policy
 * selecting the web guest with no ingress rule stops it (and the drop is
 * counted in the agent's table), an allow from the client's label on port
 * 80 lets it through again, and deleting the policies restores it.
 * Calico's order: a GlobalNetworkPolicy with a lower order denies what a
 * namespaced allow allows, a Pass hands the decision back to it, and so
 * does a Calico namespaced NetworkPolicy; ICMP types and a
 * GlobalNetworkSet in rules. Egress: default deny, an allow to the web
 * label on port 80, an ipBlock with except. The policies are written with
 * real kubectl. Stopping the agent with its guests removes the policy
 * tables.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import type { KObject } from '../../src/api/object.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { closeVmEnv, leftoverQemus, openVmEnv, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { allowClient, bootedGuest, denyWeb, podGuest, runOnConsole } from './guests.js';
import type { ConsoleCapture } from '../e2e/vm-support.js';
import { hostNetworkState } from './support.js';

let env: VmEnv;
/** The two guests, booted in `before` (the tests run one after another and share them). */
let guests: Promise<{ client: ConsoleCapture; webIp: string; clientIp: string }>;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-policy-guests-test');
  await importTestGuest(env.images);
  guests = bootGuests();
  // A boot failure is reported by the first test that awaits it, not as an unhandled rejection.
  guests.catch(() => undefined);
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  try {
    await guests.then(({ client }) => { client.close(); }, () => undefined);
    for (const name of ['client', 'web']) await env.client.delete(vmis, 'default', name).catch(() => undefined);
    await eventually(async () => (await env.client.tryGet(vmis, 'default', 'client')) === undefined && (await env.client.tryGet(vmis, 'default', 'web')) === undefined, { what: 'the VMIs gone', timeoutMs: 60_000 });
    assert.deepEqual(leftoverQemus(env), []);
  } finally {
    await closeVmEnv(env);
  }
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

/** The pod address a VMI reports for its first interface. */
function podIp(vmi: KObject): string {
  const ip = stringAt(recordsAt(vmi, 'status', 'interfaces')[0], 'ipAddress') ?? '';
  assert.match(ip, /^10\.\d+\.\d+\.\d+$/);
  return ip;
}

async function bootGuests(): Promise<{ client: ConsoleCapture; webIp: string; clientIp: string }> {
  await env.client.create(vmis, podGuest('client', 'masquerade', { labels: { app: 'client' } }));
  await env.client.create(vmis, podGuest('web', 'masquerade', { labels: { app: 'web' } }));
  const client = await bootedGuest(env, 'client');
  const web = await bootedGuest(env, 'web');
  web.console.close();
  return { client: client.console, webIp: podIp(web.vmi), clientIp: podIp(client.vmi) };
}

/** Waits until the agent's table contains (or, with `absent`, no longer contains) `text`. */
async function programmed(text: string, options: { absent?: boolean } = {}): Promise<void> {
  const want = options.absent !== true;
  await eventually(() => policyTable().includes(text) === want, { what: `the policy table ${want ? 'to have' : 'to lose'} ${JSON.stringify(text)}`, timeoutMs: 30_000 });
}

/** Fetches the web guest's page from the client guest: true when it came. */
async function fetches(client: ConsoleCapture, webIp: string, marker: string): Promise<boolean> {
  const command = `timeout 5 wget -qO- http://${webIp}/`;
  const output = await runOnConsole(client, command, marker);
  const came = /Vireo test guest/.test(output.replace(command, ''));
  assert.equal(came, new RegExp(`${marker}-0`).test(output), `the page came but wget failed, or the reverse:\n${output}`);
  return came;
}

/** Pings the web guest's pod address once from the client guest: true when it answered. */
async function pings(client: ConsoleCapture, webIp: string, marker: string): Promise<boolean> {
  const output = await runOnConsole(client, `ping -c 1 -W 3 ${webIp} >/dev/null 2>&1`, marker);
  return new RegExp(`${marker}-0`).test(output.replace(`echo ${marker}-$?`, ''));
}

async function kubectlOk(args: string[], stdin?: string): Promise<void> {
  const result = await kubectl(args, { kubeconfig: env.server.kubeconfig, ...(stdin === undefined ? {} : { stdin }) });
  assert.equal(result.code, 0, `kubectl ${args.join(' ')}: ${result.stderr}`);
}

test('a NetworkPolicy on a real guest: denied without an ingress rule, allowed from the client label on port 80, open again once deleted', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const { client, webIp } = await guests;
  // The agent started enforcing once the pod network came up; no policy selects either guest yet.
  await eventually(() => policyTable().includes('chain ingress'), { what: 'the agent to program its policy table', timeoutMs: 30_000 });
  assert.doesNotMatch(policyTable(), /no policy allows it/);
  assert.equal(await fetches(client, webIp, 'OPEN'), true);

  // Isolated for ingress, no rule allows: the client's connection is dropped at the node bridge.
  await kubectlOk(['apply', '-f', '-'], denyWeb);
  await programmed('default/web ingress: no policy allows it');
  assert.equal(await fetches(client, webIp, 'DENIED'), false);
  const dropped = /counter packets (\d+) bytes \d+ drop comment "default\/web ingress: no policy allows it"/.exec(policyTable());
  assert.ok(Number(dropped?.[1] ?? 0) > 0, `the table counted the dropped packets:\n${policyTable()}`);

  // Allows add up: the client's label on TCP 80 gets through while deny-web still selects the guest.
  await kubectlOk(['apply', '-f', '-'], allowClient);
  await programmed('comment "default/allow-client ingress[0]"');
  assert.equal(await fetches(client, webIp, 'ALLOWED'), true);

  // Deleted: nothing isolates the guest any more.
  await kubectlOk(['delete', 'networkpolicy', 'deny-web', 'allow-client', '-n', 'default']);
  await programmed('no policy allows it', { absent: true });
  assert.equal(await fetches(client, webIp, 'REOPENED'), true);
});

/** The GlobalNetworkPolicy web-first: order 10, before the Kubernetes policies, with one rule on TCP 80 to the web guest. */
function webFirst(action: 'Deny' | 'Pass'): string {
  return `apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata: {name: web-first}
spec:
  order: 10
  selector: app == 'web'
  ingress:
  - {action: ${action}, protocol: TCP, destination: {ports: [80]}}
`;
}

const calicoDenyInNamespace = `apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: web-closed, namespace: default}
spec:
  order: 20
  selector: app == 'web'
  ingress:
  - {action: Deny, protocol: TCP, source: {selector: app == 'client'}}
`;

test('Calico order on real guests: a GlobalNetworkPolicy with a lower order denies what a namespaced allow allows, its Pass hands back, a Calico NetworkPolicy denies in its namespace, deleting them restores the allow', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const { client, webIp } = await guests;
  await kubectlOk(['apply', '-f', '-'], allowClient);
  await programmed('comment "default/allow-client ingress[0]"');
  assert.equal(await fetches(client, webIp, 'NSALLOW'), true);

  // Order 10 comes before the Kubernetes policies (1000): its Deny wins.
  await kubectlOk(['apply', '-f', '-'], webFirst('Deny'));
  await programmed('comment "web-first ingress[0]"');
  assert.match(policyTable(), /drop comment "web-first ingress\[0\]"/);
  assert.equal(await fetches(client, webIp, 'GNPDENY'), false);

  // Pass: the remaining Calico policies are skipped and the namespaced allow decides.
  await kubectlOk(['apply', '-f', '-'], webFirst('Pass'));
  await programmed('drop comment "web-first ingress[0]"', { absent: true });
  await programmed('goto ep_');
  assert.equal(await fetches(client, webIp, 'GNPPASS'), true);

  // A Calico NetworkPolicy of the namespace, order 20, before the Kubernetes policies too; the GNP's Pass skips it.
  await kubectlOk(['delete', 'globalnetworkpolicy', 'web-first']);
  await kubectlOk(['apply', '-f', '-'], calicoDenyInNamespace);
  await programmed('comment "default/web-closed ingress[0]"');
  assert.equal(await fetches(client, webIp, 'CNPDENY'), false);
  const listed = await kubectl(['get', 'networkpolicies.crd.projectcalico.org', '-n', 'default'], { kubeconfig: env.server.kubeconfig });
  assert.match(listed.stdout, /web-closed\s+20\s+app == 'web'/);

  // Gone: the namespaced allow alone decides again.
  await kubectlOk(['delete', 'networkpolicies.crd.projectcalico.org', 'web-closed', '-n', 'default']);
  await programmed('web-closed', { absent: true });
  assert.equal(await fetches(client, webIp, 'RESTORED'), true);
  await kubectlOk(['delete', 'networkpolicy', 'allow-client', '-n', 'default']);
  await programmed('no policy allows it', { absent: true });
});

function noPingToWeb(withNetworkSetRule: boolean): string {
  return `apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata: {name: web-no-ping}
spec:
  order: 10
  selector: app == 'web'
  ingress:
  - {action: Deny, protocol: ICMP, icmp: {type: 8, code: 0}}
${withNetworkSetRule ? "  - {action: Deny, protocol: TCP, source: {selector: role == 'blocked'}, destination: {ports: [80]}}\n" : ''}  - {action: Allow}
`;
}

test('Calico ICMP types and a GlobalNetworkSet on real guests: echo requests denied while HTTP passes, then the client\'s address in a labelled set is denied HTTP until the set is deleted', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const { client, webIp, clientIp } = await guests;
  assert.equal(await pings(client, webIp, 'PINGOPEN'), true, 'the web sandbox answers pings before any policy');
  await kubectlOk(['apply', '-f', '-'], noPingToWeb(false));
  await programmed('comment "web-no-ping ingress[0]"');
  assert.equal(await pings(client, webIp, 'PINGDENY'), false);
  assert.equal(await fetches(client, webIp, 'PINGHTTP'), true);

  const blockedSet = `apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkSet
metadata: {name: blocked, labels: {role: blocked}}
spec: {nets: ['${clientIp}/32']}
`;
  await kubectlOk(['apply', '-f', '-'], blockedSet);
  await kubectlOk(['apply', '-f', '-'], noPingToWeb(true));
  await programmed('comment "web-no-ping ingress[1]"');
  // The set and the policy arrive on two watches, in either order: the rule may first be programmed with an empty peer set.
  await programmed(`elements = { ${clientIp} }`);
  assert.equal(await fetches(client, webIp, 'SETDENY'), false);

  // The set is what matched: without it the rule matches no address.
  await kubectlOk(['delete', 'globalnetworkset', 'blocked']);
  await eventually(async () => (await fetches(client, webIp, `SETGONE${Date.now() % 1000}`)) ? true : undefined, { what: 'HTTP to pass once the set is deleted', timeoutMs: 60_000 });
  await kubectlOk(['delete', 'globalnetworkpolicy', 'web-no-ping']);
  await programmed('web-no-ping', { absent: true });
  assert.equal(await pings(client, webIp, 'PINGBACK'), true);
});

test('NetworkPolicy egress on a real guest: default deny stops the client\'s fetch, an allow to the web label on port 80 opens it, an ipBlock whose except holds the web address does not', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const { client, webIp } = await guests;
  const subnet = `${webIp.split('.').slice(0, 3).join('.')}.0/24`;
  await kubectlOk(['apply', '-f', '-'], `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-egress, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  policyTypes: [Egress]
`);
  await programmed('default/client egress: no policy allows it');
  assert.equal(await fetches(client, webIp, 'EGRESSDENY'), false);

  await kubectlOk(['apply', '-f', '-'], `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
  - to: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{protocol: TCP, port: 80}]
`);
  await programmed('comment "default/to-web egress[0]"');
  assert.equal(await fetches(client, webIp, 'EGRESSWEB'), true);

  const toSubnet = (name: string, except: string): string => `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ${name}, namespace: default}
spec:
  podSelector: {matchLabels: {app: client}}
  egress:
  - to: [{ipBlock: {cidr: ${subnet}, except: [${except}]}}]
    ports: [{protocol: TCP, port: 80}]
`;
  await kubectlOk(['delete', 'networkpolicy', 'to-web', '-n', 'default']);
  await kubectlOk(['apply', '-f', '-'], toSubnet('subnet-but-web', `${webIp}/32`));
  await programmed('comment "default/subnet-but-web egress[0]"');
  await programmed('to-web', { absent: true });
  assert.equal(await fetches(client, webIp, 'EXCEPTWEB'), false);

  const elsewhere = webIp.endsWith('.250') ? `${subnet.slice(0, -4)}251/32` : `${subnet.slice(0, -4)}250/32`;
  await kubectlOk(['delete', 'networkpolicy', 'subnet-but-web', '-n', 'default']);
  await kubectlOk(['apply', '-f', '-'], toSubnet('subnet-but-other', elsewhere));
  await programmed('comment "default/subnet-but-other egress[0]"');
  assert.equal(await fetches(client, webIp, 'EXCEPTOTHER'), true);

  await kubectlOk(['delete', 'networkpolicy', 'client-egress', 'subnet-but-other', '-n', 'default']);
  await programmed('no policy allows it', { absent: true });
  assert.equal(await fetches(client, webIp, 'EGRESSOPEN'), true);
});
