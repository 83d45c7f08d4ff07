/**
 * A Multus network as the VMI's default network (`multus.default: true`),
 * end to end with a real guest (TCG): the NAD's plugins (Debian's `bridge`
 * + `host-local`, on a test bridge in the host namespace) make eth0 of the
 * sandbox, with no pod-network veth and no lease of the node's range; the
 * guest takes the IPAM address and default route by DHCP on its first NIC
 * and is reached from a namespace the test plugs into the bridge; a second
 * NAD is net1 beside it; `status.interfaces` and the network-status
 * annotation (the NAD marked `default: true`, no pod network entry) report
 * them; deletion DELs both. Bad specs are refused as KubeVirt refuses them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, leftoverQemus, openVmEnv, phaseOf, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { runOnConsole } from './guests.js';
import { hostNetworkState } from './support.js';
import { MultusLab, leftInSandboxes } from './multus-lab.js';

const bootMs = 240_000;
const subnets = [0, 1].map((i) => `10.${208 + i * 4 + randomInt(4)}.${randomInt(256)}`);
/** The default network's gateway: the test's peer namespace holds it. */
const gateway = `${subnets[0] ?? ''}.250`;
let env: VmEnv;
let lab: MultusLab;

before(async () => {
  if (skipWithoutQemu !== false) return;
  lab = new MultusLab('md', 'mdefault');
  env = await openVmEnv('vireo-multus-default-test');
  await importTestGuest(env.images);
  const nad = (name: string, index: 0 | 1, ipam: Record<string, unknown>): Record<string, unknown> => lab.nad(name, index, ipam);
  const applied = await kubectl(['apply', '-f', '-'], {
    kubeconfig: env.server.kubeconfig,
    stdin: JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        nad('primary', 0, { ranges: [[{ subnet: `${subnets[0] ?? ''}.0/24`, gateway }]], routes: [{ dst: '0.0.0.0/0' }] }),
        nad('lan-b', 1, { ranges: [[{ subnet: `${subnets[1] ?? ''}.0/24` }]] }),
      ],
    }),
  });
  assert.equal(applied.code, 0, applied.stderr);
});

after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
  lab.close(env.agentDir);
});

function guest(name: string, interfaces: Record<string, unknown>[], networks: Record<string, unknown>[]): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: 0,
      domain: { devices: { autoattachGraphicsDevice: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces }, memory: { guest: '128Mi' } },
      networks,
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }],
    },
  };
}

test('two default networks, a default beside the pod network, and masquerade on the default network are refused as KubeVirt refuses them', { skip: skipWithoutQemu }, async () => {
  const refused = async (body: KObject): Promise<string> => {
    const res = await env.server.fetch('POST', '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances', { body: JSON.stringify(body) });
    assert.equal(res.status, 422, res.body);
    return res.body;
  };
  const two = await refused(guest('two-defaults', [{ name: 'a', bridge: {} }, { name: 'b', bridge: {} }], [{ name: 'a', multus: { networkName: 'primary', default: true } }, { name: 'b', multus: { networkName: 'lan-b', default: true } }]));
  assert.match(two, /Multus CNI should only have one default network/);
  const withPod = await refused(guest('pod-and-default', [{ name: 'default', masquerade: {} }, { name: 'a', bridge: {} }], [{ name: 'default', pod: {} }, { name: 'a', multus: { networkName: 'primary', default: true } }]));
  assert.match(withPod, /Pod network cannot be defined when Multus default network is defined/);
  const masquerade = await refused(guest('masq-default', [{ name: 'a', masquerade: {} }], [{ name: 'a', multus: { networkName: 'primary', default: true } }]));
  assert.match(masquerade, /Masquerade interface only implemented with pod network/);
});

test('a default network whose NAD is missing fails the VMI with the message and leaves no sandbox', { skip: skipWithoutQemu, timeout: 120_000 }, async () => {
  await env.client.create(vmis, guest('no-default-nad', [{ name: 'a', bridge: {} }], [{ name: 'a', multus: { networkName: 'missing', default: true } }]));
  const failed = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'no-default-nad');
    return phaseOf(found) === 'Failed' ? found : undefined;
  }, { what: 'the VMI to fail', timeoutMs: 60_000, intervalMs: 100 });
  const ready = recordsAt(failed, 'status', 'conditions').find((c) => c.type === 'Ready');
  assert.match(String(ready?.message), /network-attachment-definition default\/missing not found/);
  assert.deepEqual(hostNetworkState([networkNames(env.agentDir).netnsPrefix]).netns, []);
  assert.deepEqual(leftInSandboxes(env.agentDir), []);
  await env.client.delete(vmis, 'default', 'no-default-nad');
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'no-default-nad')) === undefined, { what: 'the failed VMI gone', timeoutMs: 30_000 });
});

test('a guest on a Multus default network takes its address and route by DHCP on eth0, is reached there, is reported, and leaves nothing', { skip: skipWithoutQemu, timeout: 600_000 }, async () => {
  const names = networkNames(env.agentDir);
  await env.client.create(vmis, guest('on-default', [{ name: 'primary', bridge: {} }, { name: 'lan', bridge: {} }], [{ name: 'primary', multus: { networkName: 'primary', default: true } }, { name: 'lan', multus: { networkName: 'lan-b' } }]));
  const vmi = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'on-default');
    if (phaseOf(found) === 'Failed') throw new Error(`VMI failed: ${JSON.stringify(found?.status)}`);
    return phaseOf(found) === 'Running' && recordsAt(found, 'status', 'interfaces').length === 2 ? found : undefined;
  }, { what: 'the VMI running with two interfaces', timeoutMs: bootMs, intervalMs: 200 });

  // status.interfaces: the default network's NIC as eth0, the other NAD as net1; no pod NIC.
  const statuses = recordsAt(vmi, 'status', 'interfaces');
  assert.deepEqual(statuses.map((s) => [stringAt(s, 'name'), stringAt(s, 'interfaceName')]), [['primary', 'eth0'], ['lan', 'net1']]);
  const ip = stringAt(statuses[0], 'ipAddress') ?? '';
  const ipB = stringAt(statuses[1], 'ipAddress') ?? '';
  assert.ok(ip.startsWith(`${subnets[0] ?? ''}.`), ip);
  assert.ok(ipB.startsWith(`${subnets[1] ?? ''}.`), ipB);
  const mac = stringAt(statuses[0], 'mac') ?? '';

  // network-status: the NAD is the default; there is no cluster-network entry.
  const annotation = await eventually(async () => (await env.client.tryGet(vmis, 'default', 'on-default'))?.metadata.annotations?.['k8s.v1.cni.cncf.io/network-status'], { what: 'the network-status annotation', timeoutMs: 30_000 });
  const entries = JSON.parse(annotation) as { name: string; interface?: string; ips?: string[]; default?: boolean }[];
  assert.deepEqual(entries.map((e) => [e.name, e.interface, e.ips, e.default]), [
    ['default/primary', 'eth0', [ip], true],
    ['default/lan-b', 'net1', [ipB], undefined],
  ]);

  // The sandbox: eth0 is the bridge plugin's veth (its peer on the test bridge), not the node bridge's; no pod lease.
  const netns = `${names.netnsPrefix}${vmi.metadata.uid ?? ''}`;
  assert.match(execFileSync('ip', ['-n', netns, '-o', 'link', 'show', 'eth0'], { encoding: 'utf8' }), /master k6t-eth0/);
  assert.equal(lab.bridgePorts(lab.bridges[0]).split('\n').length, 1);
  assert.equal(existsSync(join(env.agentDir, 'network', 'sandboxes', vmi.metadata.uid ?? '', 'lease.json')), false, 'no lease of the node range');
  assert.equal(lab.leaseFiles().length, 2);

  // The peer namespace holds the default network's gateway.
  lab.plugPeer(gateway);

  const console = await ConsoleCapture.open(env, 'on-default');
  try {
    await eventually(() => console.text().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
    await eventually(() => console.text().includes(`network: eth0 ${ip}/24 via ${gateway}`) && console.text().includes(`network: eth1 ${ipB}/24`), { what: 'the guest to take both addresses by DHCP', timeoutMs: 60_000, intervalMs: 200 });
    const addr = await runOnConsole(console, 'ip -4 -o addr show', 'ADDR');
    assert.match(addr, new RegExp(`eth0\\s+inet ${ip.replaceAll('.', '\\.')}/24`));
    assert.match(addr, new RegExp(`eth1\\s+inet ${ipB.replaceAll('.', '\\.')}/24`));
    assert.match(await runOnConsole(console, 'ip -o link show eth0', 'LINK'), new RegExp(`link/ether ${mac}`));
    const routes = await runOnConsole(console, 'ip route', 'ROUTE');
    assert.match(routes, new RegExp(`default via ${gateway.replaceAll('.', '\\.')} dev eth0`));
    assert.doesNotMatch(routes, /default via \S+ dev eth1/);
    assert.match(await runOnConsole(console, `ping -c 1 -W 5 ${gateway}`, 'PING'), /PING-0/);
  } finally {
    console.close();
  }
  const ping = execFileSync('ip', ['netns', 'exec', lab.peerNetns, 'ping', '-c', '2', '-w', '20', ip], { encoding: 'utf8' });
  assert.match(ping, /2 received|2 packets received/);
  lab.unplugPeer();

  await env.client.delete(vmis, 'default', 'on-default');
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'on-default')) === undefined, { what: 'the VMI gone', timeoutMs: 60_000 });
  lab.assertReleased(env.agentDir);
  assert.deepEqual(hostNetworkState([names.netnsPrefix]).netns, []);
  assert.deepEqual(leftInSandboxes(env.agentDir), []);
  assert.deepEqual(leftoverQemus(env), []);
});
