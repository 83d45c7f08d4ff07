/**
 * NetworkPolicy and Calico policy enforcement on real kernel networking:
 * sandboxes (network namespaces) on a bridge in a "node" namespace, the
 * compiled table applied there with nft, and real TCP connections across.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { PolicyApplier } from '../../src/net/policy/applier.js';
import type { PolicyInput } from '../../src/net/policy/compile.js';
import type { PolicyEndpoint, PolicyNamespace } from '../../src/net/policy/model.js';
import { runNft } from '../../src/net/policy/nft.js';
import { NetnsLab } from '../../src/testing/netns-lab.js';
import type { Sandbox } from '../../src/testing/netns-lab.js';

let lab: NetnsLab;
let web: Sandbox;
let client: Sandbox;
let other: Sandbox;
let applier: PolicyApplier;
const table = 'vireo_policy_test';

const namespaces: PolicyNamespace[] = [
  { name: 'shop', labels: { team: 'shop' } },
  { name: 'ops', labels: { team: 'ops' } },
];

function endpoint(sandbox: Sandbox, namespace: string, name: string, labels: Record<string, string>): PolicyEndpoint {
  return { namespace, name, labels, ips: [sandbox.ipv4, sandbox.ipv6], hostInterface: sandbox.hostInterface, local: true, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] };
}

function endpoints(): PolicyEndpoint[] {
  return [endpoint(web, 'shop', 'web', { app: 'web' }), endpoint(client, 'shop', 'client', { app: 'client' }), endpoint(other, 'ops', 'other', { app: 'client' })];
}

function networkPolicy(name: string, spec: Record<string, unknown>, namespace = 'shop'): KObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec };
}

function globalPolicy(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'crd.projectcalico.org/v1', kind: 'GlobalNetworkPolicy', metadata: { name }, spec };
}

async function program(networkPolicies: KObject[], calicoPolicies: KObject[] = []): Promise<void> {
  const input: PolicyInput = { networkPolicies, calicoPolicies, networkSets: [], namespaces, endpoints: endpoints() };
  const compiled = await applier.apply(input);
  assert.deepEqual(compiled.warnings, []);
}

/** What `from` sees connecting to web on each port. */
async function reach(from: Sandbox, port: number, address = web.ipv4): Promise<string> {
  return from.connect(address, port);
}

before(async () => {
  lab = await NetnsLab.create('dp');
  web = await lab.addSandbox();
  client = await lab.addSandbox();
  other = await lab.addSandbox();
  for (const port of [8080, 8081, 8090, 9000]) await web.listen(port);
  await client.listen(7000);
  // Off for the whole node namespace: the applier must switch br_netfilter on for the sandboxes' bridge itself.
  await lab.sysctl('net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0');
  applier = new PolicyApplier({ tableName: table, target: { netns: lab.node } });
});

after(async () => {
  await lab?.destroy();
  assert.deepEqual(await lab.leftovers(), []);
});

test('without policies everything connects (IPv4 and IPv6)', async () => {
  await program([]);
  assert.equal(await reach(client, 8080), 'connected');
  assert.equal(await reach(other, 9000), 'connected');
  assert.equal(await reach(client, 8080, web.ipv6), 'connected');
});

test('an ingress policy isolates; an allow admits only that peer and those ports (endPort range, named port)', async () => {
  await program([networkPolicy('deny-web', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] })]);
  assert.equal(await reach(client, 8080), 'timeout');
  assert.equal(await reach(client, 8080, web.ipv6), 'timeout');
  // The web VMI's own egress is not isolated: its connections go out.
  assert.equal(await web.connect(client.ipv4, 7000), 'connected');

  await program([
    networkPolicy('deny-web', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] }),
    networkPolicy('client-to-web', {
      podSelector: { matchLabels: { app: 'web' } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'client' } } }], ports: [{ port: 'http' }, { protocol: 'TCP', port: 8085, endPort: 8095 }] }],
    }),
  ]);
  assert.equal(await reach(client, 8080), 'connected', 'named port http = 8080');
  assert.equal(await reach(client, 8080, web.ipv6), 'connected', 'the same over IPv6');
  assert.equal(await reach(client, 8090), 'connected', 'inside 8085-8095');
  assert.equal(await reach(client, 8081), 'timeout', 'a port outside the policy');
  assert.equal(await reach(client, 9000), 'timeout');
  assert.equal(await reach(other, 8080), 'timeout', 'a client label in another namespace is not a peer of a bare podSelector');
});

test('namespaceSelector peers, and ipBlock with except', async () => {
  await program([
    networkPolicy('from-ops', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }] }),
    networkPolicy('from-block', {
      podSelector: { matchLabels: { app: 'web' } },
      ingress: [{ from: [{ ipBlock: { cidr: `${client.ipv4.split('.').slice(0, 2).join('.')}.0.0/16`, except: [`${client.ipv4}/32`] } }], ports: [{ port: 9000 }] }],
    }),
  ]);
  assert.equal(await reach(other, 8081), 'connected', 'ops namespace is allowed on every port');
  assert.equal(await reach(client, 8081), 'timeout', 'shop is not');
  assert.equal(await reach(client, 9000), 'timeout', 'client is excepted from the ipBlock');
  assert.equal(await reach(other, 9000), 'connected');
});

test('egress isolation', async () => {
  await program([networkPolicy('client-egress', { podSelector: { matchLabels: { app: 'client' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 8080 }] }] })]);
  assert.equal(await reach(client, 8080), 'connected');
  assert.equal(await reach(client, 8081), 'timeout');
  assert.equal(await client.connect(other.ipv4, 9999), 'timeout', 'to other: not allowed (no listener would have refused)');
  assert.equal(await reach(other, 8081), 'connected', 'other (ops) has no egress policy');
});

test('an established connection survives a policy change that denies new ones', async () => {
  await program([]);
  const handle = await client.open(web.ipv4, 8080);
  assert.equal(await client.echo(handle), 'echoed');
  await program([networkPolicy('deny-web', { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] })]);
  assert.equal(await reach(client, 8080), 'timeout', 'new connections are denied');
  assert.equal(await client.echo(handle), 'echoed', 'the established one still works');
});

test('Calico: a lower-order Deny beats a namespaced allow; Pass hands over to Kubernetes policies; Log counts and continues', async () => {
  const allowAll = networkPolicy('allow-all', { podSelector: {}, ingress: [{}] });
  await program([allowAll]);
  assert.equal(await reach(client, 8080), 'connected');

  const deny = globalPolicy('deny-8080', { order: 10, selector: "app == 'web'", types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [8080] } }] });
  await program([allowAll], [deny]);
  assert.equal(await reach(client, 8080), 'timeout', 'the GNP denies 8080 although the NetworkPolicy allows all');
  assert.equal(await reach(client, 8081), 'connected', 'the rest falls through to the NetworkPolicy');

  const onlyWeb8080 = networkPolicy('only-8080', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ ports: [{ port: 8080 }] }] });
  const log = globalPolicy('log-all', { order: 5, selector: 'has(app)', ingress: [{ action: 'Log' }] });
  const pass = globalPolicy('pass-shop', {
    order: 20,
    namespaceSelector: "team == 'shop'",
    ingress: [{ action: 'Pass', source: { selector: "app == 'client' && projectcalico.org/namespace == 'shop'" } }, { action: 'Allow' }],
  });
  await program([onlyWeb8080], [log, pass]);
  assert.equal(await reach(client, 8081), 'timeout', 'Pass: the NetworkPolicy decides (only 8080)');
  assert.equal(await reach(client, 8080), 'connected');
  assert.equal(await reach(other, 8081), 'connected', 'not passed: the GNP allows');
  const ruleset = await runNft({ netns: lab.node }, ['list', 'table', 'inet', table]);
  const logged = /log prefix "calico-packet: log-all " level info comment "log-all ingress\[0\]"/.exec(ruleset);
  assert.ok(logged, ruleset);
  const counters = [...ruleset.matchAll(/counter packets (\d+) bytes \d+ log prefix/g)].map((m) => Number(m[1]));
  assert.ok(counters.some((n) => n > 0), `the Log rule counted packets: ${counters.join(',')}`);
});

test('Calico negations on real traffic: notNets, notSelector and notPorts', async () => {
  const negations = globalPolicy('negations', {
    order: 1,
    selector: "app == 'web'",
    ingress: [
      { action: 'Deny', protocol: 'TCP', source: { notNets: [`${client.ipv4}/32`, `${client.ipv6}/128`] }, destination: { ports: [8090] } },
      { action: 'Deny', protocol: 'TCP', source: { selector: "app == 'client'", notSelector: "projectcalico.org/namespace == 'ops'" }, destination: { ports: [9000] } },
      { action: 'Allow', protocol: 'TCP', destination: { notPorts: [8081] } },
    ],
  });
  await program([], [negations]);
  assert.equal(await reach(other, 8090), 'timeout', 'other is not in the notNets: denied');
  assert.equal(await reach(client, 8090), 'connected', 'client is in the notNets: on to the Allow');
  assert.equal(await reach(client, 9000), 'timeout', 'client matches the selector and not the notSelector: denied');
  assert.equal(await reach(other, 9000), 'connected', 'other (ops) is excluded by the notSelector');
  assert.equal(await reach(client, 8080), 'connected');
  assert.equal(await reach(client, 8081), 'timeout', '8081 is in the notPorts: no rule allows it, dropped at the end');
  await program([]);
});

test('a sandbox cannot pass for another address: the bridge table drops sources that are not its own', async () => {
  const [a, b] = web.ipv4.split('.');
  const forged = `${a}.${b}.3.7`;
  await program([networkPolicy('from-block', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ ipBlock: { cidr: `${a}.${b}.3.0/24` } }] }] })]);
  await client.addAddress(`${forged}/16`);
  assert.equal(await client.connect(web.ipv4, 9000, 1500, forged), 'timeout', 'the forged source is dropped at the bridge');
  assert.equal(await client.connect(client.ipv4, 7000, 1500, forged), 'connected', 'inside the sandbox it is just an address');
  // Without the bridge table the same forgery would get through: the check above is what stops it.
  await runNft({ netns: lab.node }, ['delete', 'table', 'bridge', table]);
  assert.equal(await client.connect(web.ipv4, 9000, 1500, forged), 'connected');
});

test('stop removes the table', async () => {
  await program([networkPolicy('deny-web', { podSelector: {}, policyTypes: ['Ingress'] })]);
  assert.match(await lab.tables(), new RegExp(table));
  await applier.remove();
  assert.doesNotMatch(await lab.tables(), new RegExp(table));
  assert.equal(await reach(client, 8080), 'connected');
  await applier.remove();
});
