import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { compilePolicies } from './compile.js';
import type { PolicyInput } from './compile.js';
import type { PolicyEndpoint } from './model.js';

const web: PolicyEndpoint = { namespace: 'shop', name: 'web', labels: { app: 'web' }, ips: ['10.0.0.2', 'fd00::2'], hostInterface: 'vh1', local: true, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] };
const client: PolicyEndpoint = { namespace: 'shop', name: 'client', labels: { app: 'client' }, ips: ['10.0.0.3'], hostInterface: 'vh2', local: true };
const remote: PolicyEndpoint = { namespace: 'ops', name: 'far', labels: { app: 'client' }, ips: ['10.9.0.3'], hostInterface: '', local: false };

function np(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: 'shop' }, spec };
}

function gnp(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'crd.projectcalico.org/v1', kind: 'GlobalNetworkPolicy', metadata: { name }, spec };
}

function compile(networkPolicies: KObject[], calicoPolicies: KObject[] = [], networkSets: KObject[] = []): ReturnType<typeof compilePolicies> {
  const input: PolicyInput = { networkPolicies, calicoPolicies, networkSets, namespaces: [{ name: 'shop', labels: {} }, { name: 'ops', labels: { team: 'ops' } }], endpoints: [web, client, remote] };
  return compilePolicies(input, { tableName: 't' });
}

function chain(text: string, name: string): string {
  const start = text.indexOf(`  chain ${name} {`);
  assert.ok(start >= 0, `no chain ${name} in\n${text}`);
  return text.slice(start, text.indexOf('  }', start));
}

test('the table is replaced in one transaction; no policies isolate nothing', () => {
  const { text, isolated } = compile([]);
  assert.match(text, /^table inet t \{\}\ndelete table inet t\ntable inet t \{/);
  assert.deepEqual(isolated, { ingress: 0, egress: 0 });
  assert.match(text, /map ingress_v4 \{ type ipv4_addr : verdict; \}/);
  assert.match(text, /ct state established,related accept/);
});

test('policyTypes default: Ingress, plus Egress when there are egress rules; only local endpoints get chains', () => {
  const { text, isolated } = compile([np('a', { podSelector: {}, egress: [{ to: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }] })]);
  assert.deepEqual(isolated, { ingress: 2, egress: 2 });
  assert.match(text, /10\.0\.0\.2 : jump ep_0_egress/);
  assert.match(text, /fd00:0:0:0:0:0:0:2 : jump ep_0_ingress/);
  assert.doesNotMatch(text, /10\.9\.0\.3 : jump/, 'the remote endpoint is a peer, not filtered here');
  assert.match(chain(text, 'knp_0_egress'), /ip daddr @peers_\d+_v4 counter accept/);
  assert.match(text, /elements = \{ 10\.9\.0\.3 \}/);
});

test('named ports resolve against the destination VMIs; identical peer sets are shared', () => {
  const from = [{ podSelector: { matchLabels: { app: 'client' } } }];
  const { text } = compile([np('a', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from, ports: [{ port: 'http' }] }] }), np('b', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from, ports: [{ port: 9000, endPort: 9100 }] }] })]);
  assert.match(text, /ip daddr \. th dport \{ 10\.0\.0\.2 \. 8080 \}/);
  assert.match(text, /th dport \{ 9000-9100 \}/);
  assert.equal([...text.matchAll(/set peers_\d+_v4/g)].length, 1, 'one set for the same peers');
});

test('Calico order: lower-order GNPs before the Kubernetes policies, higher after, Pass to the Kubernetes ones, Log continues', () => {
  const { text } = compile(
    [np('allow', { podSelector: { matchLabels: { app: 'web' } }, ingress: [{}] })],
    [
      gnp('late', { order: 2000, selector: "app == 'web'", ingress: [{ action: 'Deny' }] }),
      gnp('early', { order: 10, selector: "app == 'web'", ingress: [{ action: 'Log' }, { action: 'Pass', source: { nets: ['10.9.0.0/16'] } }, { action: 'Deny', protocol: 'TCP', destination: { ports: ['8000:8080'] } }] }),
    ],
  );
  const ingress = chain(text, 'ep_0_ingress');
  const order = ['log prefix "calico-packet: early "', 'goto ep_0_ingress_pass', 'th dport { 8000-8080 } counter drop', 'jump knp_0_ingress', 'comment "late ingress[0]"', 'no policy allows it'].map((needle) => ingress.indexOf(needle));
  assert.ok(order.every((at) => at >= 0), `${order.join(',')}\n${ingress}`);
  assert.deepEqual([...order].sort((a, b) => a - b), order, ingress);
  assert.match(chain(text, 'ep_0_ingress_pass'), /jump knp_0_ingress\n\s+counter drop/);
  assert.doesNotMatch(text, /ep_1_ingress/, 'client is selected by none of them');
});

test('a policy that cannot compile is skipped with a warning', () => {
  const { warnings } = compile([], [gnp('broken', { selector: 'app ==', ingress: [{ action: 'Allow' }] })]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /GlobalNetworkPolicy broken is skipped: invalid selector/);
});

function calicoNp(name: string, namespace: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'crd.projectcalico.org/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec };
}

test('a Calico NetworkPolicy selects and matches endpoints of its own namespace only, unless a rule names a namespaceSelector', () => {
  const { text, isolated } = compile([], [
    calicoNp('local', 'shop', { order: 5, selector: "app == 'client'", ingress: [{ action: 'Allow', source: { selector: "app == 'client'" } }, { action: 'Allow', source: { selector: "app == 'client'", namespaceSelector: "team == 'ops'" } }] }),
  ]);
  // client (shop) is selected; far (ops) has the same label but another namespace.
  assert.deepEqual(isolated, { ingress: 1, egress: 0 });
  const sets = [...text.matchAll(/set (peers_\d+_v4) \{[^}]*elements = \{ ([^}]*) \}/g)].map((m) => m[2]);
  assert.deepEqual(sets.sort(), ['10.0.0.3', '10.9.0.3']);
  assert.match(chain(text, 'ep_1_ingress'), /comment "shop\/local ingress\[0\]"/);
});

test('ICMP types and codes: icmp, notICMP, ICMPv6 only in the IPv6 copy of a rule', () => {
  const { text } = compile([], [
    gnp('icmp', {
      order: 1,
      selector: "app == 'web'",
      ingress: [
        { action: 'Deny', protocol: 'ICMP', icmp: { type: 8, code: 0 }, source: { nets: ['10.0.0.0/8', 'fd00::/8'] } },
        { action: 'Allow', protocol: 'ICMP', notICMP: { type: 8 } },
        { action: 'Allow', protocol: 'ICMPv6', notICMP: { type: 128, code: 0 } },
        { action: 'Deny', notProtocol: 'UDP' },
      ],
    }),
  ]);
  const ingress = chain(text, 'ep_0_ingress');
  assert.match(ingress, /meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 ip saddr @peers_\d+_v4 counter drop/);
  assert.doesNotMatch(ingress, /meta nfproto ipv6 meta l4proto 1/, 'no IPv6 copy of an ICMP rule');
  assert.match(ingress, /meta l4proto 1 icmp type != 8 counter accept/);
  assert.match(ingress, /meta l4proto 58 icmpv6 type \. icmpv6 code != \{ 128 \. 0 \} counter accept/);
  assert.match(ingress, /meta l4proto != 17 counter drop/);
});

test('GlobalNetworkSets: a GNP rule selector matches their nets, a namespaced rule only with namespaceSelector global()', () => {
  const sets: KObject[] = [{ apiVersion: 'crd.projectcalico.org/v1', kind: 'GlobalNetworkSet', metadata: { name: 'bad', labels: { list: 'deny' } }, spec: { nets: ['192.0.2.0/24', '2001:db8::/32', 'nonsense'] } }];
  const global = compile([], [gnp('g', { order: 1, selector: "app == 'web'", ingress: [{ action: 'Deny', source: { selector: "list == 'deny'" } }] })], sets).text;
  assert.match(global, /elements = \{ 192\.0\.2\.0-192\.0\.2\.255 \}/);
  assert.match(global, /set peers_\d+_v6 \{[^}]*elements = \{ 2001:db8/);
  const namespaced = compile([], [calicoNp('n', 'shop', { order: 1, selector: "app == 'web'", ingress: [{ action: 'Deny', source: { selector: "list == 'deny'" } }, { action: 'Deny', source: { selector: "list == 'deny'", namespaceSelector: 'global()' } }] })], sets).text;
  const ingress = chain(namespaced, 'ep_0_ingress');
  assert.doesNotMatch(ingress, /ingress\[0\]/, 'no endpoint of shop is on the list, and the namespaced rule does not see global sets');
  assert.match(ingress, /ip saddr @peers_\d+_v4 counter drop comment "shop\/n ingress\[1\]"/);
});

test('NetworkSets: a namespaced policy\'s rule selector matches those of its namespace, a namespaceSelector those of its namespaces, a GNP all of them', () => {
  const set = (namespace: string, net: string): KObject => ({ apiVersion: 'crd.projectcalico.org/v1', kind: 'NetworkSet', metadata: { name: 'partners', namespace, labels: { role: 'partner' } }, spec: { nets: [net] } });
  const sets = [set('shop', '198.51.100.0/24'), set('ops', '203.0.113.0/24')];
  const elements = (text: string): string[] => [...text.matchAll(/elements = \{ ([^}]*) \}/g)].map((m) => m[1] ?? '').filter((e) => !e.includes(':')).sort();
  const inShop = compile([], [calicoNp('n', 'shop', { order: 1, selector: "app == 'web'", ingress: [{ action: 'Deny', source: { selector: "role == 'partner'" } }] })], sets).text;
  assert.deepEqual(elements(inShop), ['198.51.100.0-198.51.100.255']);
  const byNamespace = compile([], [calicoNp('n', 'shop', { order: 1, selector: "app == 'web'", ingress: [{ action: 'Deny', source: { selector: "role == 'partner'", namespaceSelector: "team == 'ops'" } }] })], sets).text;
  assert.deepEqual(elements(byNamespace), ['203.0.113.0-203.0.113.255']);
  const global = compile([], [gnp('g', { order: 1, selector: "app == 'web'", ingress: [{ action: 'Deny', source: { selector: "role == 'partner' && projectcalico.org/namespace != 'none'" } }] })], sets).text;
  assert.deepEqual(elements(global), ['198.51.100.0-198.51.100.255, 203.0.113.0-203.0.113.255']);
});
