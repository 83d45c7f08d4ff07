/**
 * The service proxy's table on real kernel networking: sandboxes (network
 * namespaces) on a bridge in a "node" namespace, as the pod network makes
 * them (hairpin ports, default routes via the bridge, forwarding on), the
 * compiled table applied there with nft, and real TCP connections to
 * cluster IPs (IPv4 and IPv6) and node ports, from sandboxes and from the
 * node itself. The node namespace's only way out is a veth into an empty
 * namespace, so traffic no rule catches goes nowhere.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { KObject } from '../../src/api/object.js';
import { compileServices, proxiedPorts, ServiceTableApplier } from '../../src/net/services/index.js';
import { ip, NetnsLab } from '../../src/testing/netns-lab.js';
import type { Sandbox } from '../../src/testing/netns-lab.js';

let lab: NetnsLab;
let web: Sandbox;
let client: Sandbox;
let deaf: Sandbox;
let applier: ServiceTableApplier;
let gateway: string;
/** The empty namespace at the end of the node's default route. */
let outside: string;
const table = 'vireo_svc_test';
/** How long a connection that must succeed may take: neighbour discovery on a loaded host can be slow. Ones that must fail keep 1.5 s. */
const reachMs = 8000;

function service(name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { type: 'ClusterIP', ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080 }], ...spec } };
}

function slice(serviceName: string, addressType: 'IPv4' | 'IPv6', addresses: string[]): KObject {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: `${serviceName}-${addressType}`, namespace: 'default', labels: { 'kubernetes.io/service-name': serviceName } },
    addressType,
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    endpoints: addresses.map((address) => ({ addresses: [address], conditions: { ready: true, serving: true, terminating: false } })),
  };
}

/** The cluster: web (dual stack, NodePort 30080), empty (no endpoints), lb (web and deaf, which refuses), sticky (the same, ClientIP affinity). */
function cluster(options: { withWeb: boolean }): { services: KObject[]; slices: KObject[] } {
  const services = [
    service('empty', { clusterIP: '10.96.0.11', clusterIPs: ['10.96.0.11'] }),
    service('lb', { clusterIP: '10.96.0.12', clusterIPs: ['10.96.0.12'] }),
    service('sticky', { clusterIP: '10.96.0.13', clusterIPs: ['10.96.0.13'], sessionAffinity: 'ClientIP' }),
  ];
  const slices = [slice('lb', 'IPv4', [web.ipv4, deaf.ipv4]), slice('sticky', 'IPv4', [web.ipv4, deaf.ipv4])];
  if (options.withWeb) {
    services.push(service('web', { type: 'NodePort', clusterIP: '10.96.0.10', clusterIPs: ['10.96.0.10', 'fd00:96::10'], ipFamilies: ['IPv4', 'IPv6'], ports: [{ name: 'http', port: 80, protocol: 'TCP', targetPort: 8080, nodePort: 30080 }] }));
    slices.push(slice('web', 'IPv4', [web.ipv4]), slice('web', 'IPv6', [web.ipv6]));
  }
  return { services, slices };
}

async function program(options: { withWeb: boolean }): Promise<boolean> {
  const { services, slices } = cluster(options);
  return applier.apply(compileServices(proxiedPorts(services, slices), { tableName: table }));
}

/** Connects from the node namespace itself (a process of the node, like `curl` on a Kubernetes node). */
function connectFromNode(host: string, port: number, timeoutMs = 1500): Promise<string> {
  const script = `const k = require('node:net').connect({ host: ${JSON.stringify(host)}, port: ${port} });
    const done = (r) => { console.log(r); process.exit(0); };
    setTimeout(() => done('timeout'), ${timeoutMs});
    k.on('connect', () => k.write('ping')); k.once('data', () => done('connected')); k.on('error', (e) => done(e.code || e.message));`;
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', lab.node, process.execPath, '-e', script], { encoding: 'utf8', timeout: 15_000 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout.trim());
      else reject(new Error(`connecting from the node namespace failed: ${stderr.trim() || err.message}`));
    });
  });
}

before(async () => {
  lab = await NetnsLab.create('svc');
  outside = `${lab.prefix}-out`;
  web = await lab.addSandbox();
  client = await lab.addSandbox();
  deaf = await lab.addSandbox();
  await web.listen(8080);
  gateway = web.ipv4.replace(/\.\d+\.\d+$/, '.0.1');
  // Sandboxes take ::1, ::2…: the gateway takes one they do not.
  const gateway6 = web.ipv6.replace(/::[0-9a-f]+$/, '::ff');
  // What the pod network gives a node: forwarding, an IPv6 gateway, hairpin ports; and a way out that leads nowhere.
  await lab.sysctl('net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1');
  await ip('-n', lab.node, 'addr', 'add', `${gateway6}/64`, 'dev', 'br0', 'nodad');
  await ip('netns', 'add', outside);
  await ip('-n', lab.node, 'link', 'add', 'nowhere', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside);
  await ip('-n', lab.node, 'link', 'set', 'nowhere', 'up');
  await ip('-n', outside, 'link', 'set', 'eth0', 'up');
  await ip('-n', lab.node, 'route', 'add', 'default', 'dev', 'nowhere');
  await ip('-n', lab.node, '-6', 'route', 'add', 'default', 'dev', 'nowhere');
  for (const sandbox of [web, client, deaf]) {
    await ip('-n', lab.node, 'link', 'set', sandbox.hostInterface, 'type', 'bridge_slave', 'hairpin', 'on');
    await ip('-n', sandbox.netns, 'route', 'add', 'default', 'via', gateway);
    await ip('-n', sandbox.netns, '-6', 'route', 'add', 'default', 'via', gateway6);
  }
  applier = new ServiceTableApplier(table, { netns: lab.node });
  assert.equal(await program({ withWeb: true }), true);
});

after(async () => {
  await lab.destroy();
  await ip('netns', 'del', outside).catch(() => undefined);
  assert.deepEqual(await lab.leftovers(), []);
});

test('a cluster IP reaches its endpoint over IPv4 and IPv6, from a sandbox and from the node itself', async () => {
  assert.equal(await client.connect('10.96.0.10', 80, reachMs), 'connected');
  assert.equal(await client.connect('fd00:96::10', 80, reachMs), 'connected');
  assert.equal(await connectFromNode('10.96.0.10', 80, reachMs), 'connected');
  assert.equal(await connectFromNode('fd00:96::10', 80, reachMs), 'connected');
  // Only the Service's port is proxied.
  assert.match(await client.connect('10.96.0.10', 81), /^(timeout|EHOSTUNREACH)$/);
});

test('an endpoint reaches itself through its own Service (hairpin, masqueraded)', async () => {
  assert.equal(await web.connect('10.96.0.10', 80, reachMs), 'connected');
  assert.equal(await web.connect('fd00:96::10', 80, reachMs), 'connected');
});

test('a node port on the node bridge\'s address reaches the endpoint, from a sandbox and from the node', async () => {
  assert.equal(await client.connect(gateway, 30080, reachMs), 'connected');
  assert.equal(await web.connect(gateway, 30080, reachMs), 'connected');
  assert.equal(await connectFromNode(gateway, 30080, reachMs), 'connected');
});

test('a Service without endpoints is refused at once (ICMP port unreachable), not left to time out', async () => {
  assert.equal(await client.connect('10.96.0.11', 80), 'ECONNREFUSED');
  assert.equal(await connectFromNode('10.96.0.11', 80), 'ECONNREFUSED');
});

test('connections are spread over the endpoints at random; ClientIP affinity keeps a client on one', async () => {
  const spread = new Set<string>();
  for (let i = 0; i < 30; i++) spread.add(await client.connect('10.96.0.12', 80));
  assert.deepEqual([...spread].sort(), ['ECONNREFUSED', 'connected'], 'both endpoints were chosen (the deaf one refuses)');
  const sticky = new Set<string>();
  for (let i = 0; i < 15; i++) sticky.add(await client.connect('10.96.0.13', 80));
  assert.equal(sticky.size, 1, `one endpoint for every connection, got ${[...sticky].join(', ')}`);
});

test('an unchanged cluster is not reprogrammed; a deleted Service stops its traffic; removal leaves no table', async () => {
  const before = applier.programmed;
  assert.equal(await program({ withWeb: true }), false);
  assert.equal(applier.programmed, before);
  assert.equal(await program({ withWeb: false }), true);
  // Routed like any address: out to the empty namespace, where nobody answers (ARP gives up, or the connect times out first).
  assert.match(await client.connect('10.96.0.10', 80), /^(timeout|EHOSTUNREACH)$/);
  assert.equal(await client.connect(gateway, 30080), 'ECONNREFUSED', 'nothing listens on the node port itself');
  await applier.remove();
  const tables = await ip('netns', 'exec', lab.node, 'nft', 'list', 'tables');
  assert.doesNotMatch(tables, new RegExp(table));
});
