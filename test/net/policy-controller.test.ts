/**
 * The policy controller end to end, without QEMU: a real API server,
 * policies written with real kubectl (and refused with kube's 422s when
 * malformed), VMIs whose `status.interfaces` carry the addresses of
 * sandbox namespaces, and real TCP between those sandboxes through the
 * table the controller programs in the lab's node namespace.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { PolicyController } from '../../src/net/policy/index.js';
import type { LocalEndpoint } from '../../src/net/policy/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { NetnsLab } from '../../src/testing/netns-lab.js';
import type { Sandbox } from '../../src/testing/netns-lab.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

let server: TestServer;
let client: HttpClient;
let lab: NetnsLab;
let web: Sandbox;
let shopper: Sandbox;
let controller: PolicyController;
const table = 'vireo_policy_ctl';

function vmi(name: string, labels: Record<string, string>, sandbox: Sandbox): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'shop', labels },
    spec: {
      domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [{ name: 'default', masquerade: {}, ports: [{ name: 'http', port: 8080 }] }] }, memory: { guest: '64Mi' } },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }],
    },
    status: { interfaces: [{ name: 'default', ipAddress: sandbox.ipv4, ipAddresses: [sandbox.ipv4, sandbox.ipv6] }] },
  };
}

async function apply(manifest: string): Promise<{ code: number; stderr: string }> {
  return kubectl(['apply', '-f', '-'], { kubeconfig: server.kubeconfig, stdin: manifest });
}

before(async () => {
  server = await startTestServer();
  client = new HttpClient({ server: server.url, token: server.componentToken, caCert: server.pki.caCert, userAgent: 'vireo-policy-test' });
  lab = await NetnsLab.create('ct');
  web = await lab.addSandbox();
  shopper = await lab.addSandbox();
  await web.listen(8080);
  await web.listen(8081);
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'shop' } } });
  await client.create(resources.virtualMachineInstances, vmi('web', { app: 'web' }, web));
  await client.create(resources.virtualMachineInstances, vmi('shopper', { app: 'shopper' }, shopper));
  const locals: LocalEndpoint[] = [
    { namespace: 'shop', name: 'web', hostInterface: web.hostInterface },
    { namespace: 'shop', name: 'shopper', hostInterface: shopper.hostInterface },
  ];
  controller = new PolicyController(client, { tableName: table, target: { netns: lab.node }, logger: silentLogger, endpoints: { localEndpoints: () => locals, onChange: () => undefined } });
  await controller.start();
});

after(async () => {
  await lab?.destroy();
  await server?.stop();
});

test('kubectl gets kube-apiserver\'s 422s for malformed NetworkPolicies and Calico selectors', async () => {
  const badPorts = await apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Sideways]
  ingress:
  - ports: [{protocol: ICMP, port: 80}, {port: 9000, endPort: 8000}, {port: http, endPort: 90}]
    from: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}, podSelector: {}}, {ipBlock: {cidr: 10.0.0.0/33}}]
`);
  assert.notEqual(badPorts.code, 0);
  for (const expected of [
    'spec.ingress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
    'spec.ingress[0].ports[1].endPort: Invalid value: 8000: must be greater than or equal to `port`',
    'spec.ingress[0].ports[2].endPort: Invalid value: 90: may not be specified when `port` is non-numeric',
    'spec.ingress[0].from[0].ipBlock.except[0]: Invalid value: "192.168.0.0/16": must be a strict subset of `cidr`',
    'spec.ingress[0].from[0]: may not specify both ipBlock and another peer',
    'spec.ingress[0].from[1].ipBlock.cidr: Invalid value: "10.0.0.0/33"',
    'spec.policyTypes[1]: Unsupported value: "Sideways"',
  ]) {
    assert.ok(badPorts.stderr.includes(expected), `${expected}\nin: ${badPorts.stderr}`);
  }
  const badSelector = await apply(`apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata: {name: bad}
spec:
  selector: "app == 'web' &&"
  ingress: [{action: Allow, destination: {ports: ["8000:7000"]}}, {action: Maybe}]
`);
  assert.notEqual(badSelector.code, 0);
  assert.match(badSelector.stderr, /spec\.selector: invalid selector "app == 'web' &&" at character 16: expected a label key/);
  assert.match(badSelector.stderr, /spec\.ingress\[0\]\.destination\.ports: Invalid value: ports are only allowed with protocol TCP, UDP or SCTP/);
  assert.match(badSelector.stderr, /spec\.ingress\[1\]\.action: Unsupported value: "Maybe"/);
});

test('policies of the wrong shape are refused with a 4xx, never a 5xx', async () => {
  const bodies: [string, Record<string, unknown>][] = [
    ['/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies', { podSelector: 'app=web' }],
    ['/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies', { podSelector: {}, ingress: 'all' }],
    ['/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies', { podSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] }, ingress: [{ ports: [{ port: -1 }, { port: 'a_b' }], from: [{}] }] }],
    ['/apis/networking.k8s.io/v1/namespaces/shop/networkpolicies', { podSelector: {}, egress: [{ to: [{ ipBlock: { cidr: 'fd00::/8', except: ['10.0.0.0/8', 'nonsense'] } }] }] }],
    ['/apis/crd.projectcalico.org/v1/globalnetworkpolicies', { selector: 5 }],
    ['/apis/crd.projectcalico.org/v1/globalnetworkpolicies', { ingress: [{ action: 'Allow', protocol: 'GRE', source: { nets: ['10.0.0.0/40'], notSelector: 'a in {' } }] }],
    ['/apis/crd.projectcalico.org/v1/globalnetworkpolicies', { types: ['Inward'], doNotTrack: true, egress: [{ action: 'Deny', ipVersion: 5 }] }],
  ];
  for (const [i, [path, spec]] of bodies.entries()) {
    const kind = path.includes('calico') ? 'GlobalNetworkPolicy' : 'NetworkPolicy';
    const apiVersion = path.includes('calico') ? 'crd.projectcalico.org/v1' : 'networking.k8s.io/v1';
    const response = await server.fetch('POST', path, { body: JSON.stringify({ apiVersion, kind, metadata: { name: `bad-${i}` }, spec }), headers: { 'content-type': 'application/json' } });
    assert.ok(response.status >= 400 && response.status < 500, `${i}: ${response.status} ${response.body}`);
  }
});

test('Calico rules Vireo does not enforce, and bad ICMP matches and network sets, are refused with a 422 that says why', async () => {
  const refused = await apply(`apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: bad, namespace: shop}
spec:
  tier: security
  serviceAccountSelector: "role == 'x'"
  ingress:
  - {action: Allow, icmp: {type: 8}}
  - {action: Allow, protocol: ICMP, icmp: {type: 300, code: 1}, notICMP: {code: 0}}
  - {action: Allow, source: {serviceAccounts: {names: [web]}}, destination: {services: {name: web}}}
---
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkSet
metadata: {name: bad}
spec: {nets: [10.0.0.0/8, 10.1.0.0/33]}
`);
  assert.notEqual(refused.code, 0);
  for (const expected of [
    'spec.tier: Unsupported value: "security": Vireo has one tier, "default"',
    'spec.serviceAccountSelector: Unsupported value: VMIs have no service account identity here',
    'spec.ingress[0].icmp: Invalid value: ICMP types are only allowed with protocol ICMP or ICMPv6',
    'spec.ingress[1].icmp.type: Invalid value: 300: an ICMP type is between 0 and 254',
    'spec.ingress[1].notICMP.type: Required value: a code needs its type',
    'spec.ingress[2].source.serviceAccounts: Unsupported value: Vireo does not match service accounts',
    'spec.ingress[2].destination.services: Unsupported value: Vireo does not match Services',
    'spec.nets[1]: Invalid value: "10.1.0.0/33": must be an IP address or CIDR',
  ]) {
    assert.ok(refused.stderr.includes(expected), `${expected}\nin: ${refused.stderr}`);
  }
});

test('a Calico NetworkPolicy is served and enforced in its namespace, and `kubectl get networkpolicy` still means the Kubernetes kind', async () => {
  assert.equal(await shopper.connect(web.ipv4, 8080), 'connected');
  const calico = await apply(`apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: no-shoppers, namespace: shop}
spec:
  order: 50
  selector: app == 'web'
  ingress:
  - {action: Deny, source: {selector: app == 'shopper'}}
  - {action: Allow}
`);
  assert.equal(calico.code, 0, calico.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'timeout', { timeoutMs: 15_000, what: 'the Calico NetworkPolicy denies the shopper' });

  // Discovery lists networking.k8s.io before crd.projectcalico.org, as kube-apiserver does: the bare name is Kubernetes'.
  const kubernetes = await kubectl(['get', 'networkpolicy', '-n', 'shop'], { kubeconfig: server.kubeconfig });
  assert.equal(kubernetes.code, 0, kubernetes.stderr);
  assert.equal(kubernetes.stdout, '');
  assert.match(kubernetes.stderr, /No resources found in shop namespace/);
  const listed = await kubectl(['get', 'networkpolicies.crd.projectcalico.org', '-n', 'shop'], { kubeconfig: server.kubeconfig });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /no-shoppers\s+50\s+app == 'web'/);

  const deleted = await kubectl(['delete', 'networkpolicies.crd.projectcalico.org', 'no-shoppers', '-n', 'shop'], { kubeconfig: server.kubeconfig });
  assert.equal(deleted.code, 0, deleted.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'connected', { timeoutMs: 15_000, what: 'the shopper allowed again' });
});

test('a GlobalNetworkSet\'s nets are matched by a rule selector on its labels, and follow the set\'s changes; a NetworkSet by a policy of its namespace', async () => {
  const denied = await apply(`apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata: {name: deny-listed}
spec:
  order: 5
  selector: app == 'web'
  ingress:
  - {action: Deny, protocol: TCP, source: {selector: list == 'deny'}, destination: {ports: [8080]}}
  - {action: Allow}
---
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkSet
metadata: {name: listed, labels: {list: deny}}
spec: {nets: ['${shopper.ipv4}/32', '192.0.2.0/24']}
`);
  assert.equal(denied.code, 0, denied.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'timeout', { timeoutMs: 15_000, what: 'the listed shopper denied' });
  assert.equal(await shopper.connect(web.ipv4, 8081), 'connected', 'other ports pass the Allow');

  const changed = await apply(`apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkSet
metadata: {name: listed, labels: {list: deny}}
spec: {nets: ['192.0.2.0/24']}
`);
  assert.equal(changed.code, 0, changed.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'connected', { timeoutMs: 15_000, what: 'the shopper allowed once out of the set' });
  await kubectl(['delete', 'gnp', 'deny-listed'], { kubeconfig: server.kubeconfig });
  await kubectl(['delete', 'globalnetworkset', 'listed'], { kubeconfig: server.kubeconfig });

  // A NetworkSet of the namespace, matched by a Calico NetworkPolicy of the same namespace.
  const namespaced = await apply(`apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: deny-listed-here, namespace: shop}
spec:
  order: 5
  selector: app == 'web'
  ingress:
  - {action: Deny, protocol: TCP, source: {selector: list == 'deny'}, destination: {ports: [8080]}}
  - {action: Allow}
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkSet
metadata: {name: listed-here, namespace: shop, labels: {list: deny}}
spec: {nets: ['${shopper.ipv4}']}
`);
  assert.equal(namespaced.code, 0, namespaced.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'timeout', { timeoutMs: 15_000, what: 'the shopper in the namespace\'s set denied' });
  await kubectl(['delete', 'networksets.crd.projectcalico.org', 'listed-here', '-n', 'shop'], { kubeconfig: server.kubeconfig });
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'connected', { timeoutMs: 15_000, what: 'the shopper allowed once the set is gone' });
  await kubectl(['delete', 'networkpolicies.crd.projectcalico.org', 'deny-listed-here', '-n', 'shop'], { kubeconfig: server.kubeconfig });
});

test('policies written with kubectl are enforced on the node within moments, and removed with the controller', async () => {
  assert.equal(await shopper.connect(web.ipv4, 8080), 'connected');
  const policy = await apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-http, namespace: shop}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress: [{from: [{podSelector: {matchLabels: {app: shopper}}}], ports: [{port: http}]}]
`);
  assert.equal(policy.code, 0, policy.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8081, 800)) === 'timeout', { timeoutMs: 15_000, what: 'port 8081 denied' });
  assert.equal(await shopper.connect(web.ipv4, 8080), 'connected', 'the named port http of the VMI is allowed');

  const gnp = await apply(`apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata: {name: deny-shop-http}
spec:
  order: 100
  selector: "projectcalico.org/namespace == 'shop' && app == 'web'"
  ingress: [{action: Deny, protocol: TCP, destination: {ports: [http]}}]
`);
  assert.equal(gnp.code, 0, gnp.stderr);
  await eventually(async () => (await shopper.connect(web.ipv4, 8080, 800)) === 'timeout', { timeoutMs: 15_000, what: 'the GlobalNetworkPolicy denies 8080' });

  const listed = await kubectl(['get', 'gnp'], { kubeconfig: server.kubeconfig });
  assert.match(listed.stdout, /deny-shop-http\s+100/);

  await kubectl(['delete', 'gnp', 'deny-shop-http'], { kubeconfig: server.kubeconfig });
  await kubectl(['delete', 'networkpolicy', '-n', 'shop', 'web-http'], { kubeconfig: server.kubeconfig });
  await eventually(async () => (await shopper.connect(web.ipv4, 8081, 800)) === 'connected', { timeoutMs: 15_000, what: 'all open again' });

  await controller.stop();
  assert.doesNotMatch(await lab.tables(), new RegExp(table));
});
