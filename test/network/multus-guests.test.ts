/**
 * Multus NICs end to end with a real guest (TCG): two NetworkAttachmentDefinitions
 * (Debian's `bridge` + `host-local` plugins, each on a test bridge of its
 * own in the host namespace, created with the real kubectl), a VMI on the
 * pod network and both: the guest takes each IPAM address by DHCP (as `ip
 * addr` typed on its console shows) and answers pings from a namespace the
 * test plugs into one bridge; `status.interfaces` and the network-status
 * annotation report them; deletion DELs them (leases released, cache
 * empty, no sandbox). A VMI naming a missing NAD fails with the message
 * and leaves no sandbox.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
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
/** Two random /24s of 10.200.0.0/13 for the NADs' host-local ranges. */
const subnets = [0, 1].map(() => `10.${200 + randomInt(8)}.${randomInt(256)}`);
let env: VmEnv;
let lab: MultusLab;

before(async () => {
  if (skipWithoutQemu !== false) return;
  lab = new MultusLab('mu', 'multus');
  env = await openVmEnv('vireo-multus-test');
  await importTestGuest(env.images);
  const nad = (name: string, index: 0 | 1): Record<string, unknown> => lab.nad(name, index, { ranges: [[{ subnet: `${subnets[index] ?? ''}.0/24` }]] });
  const applied = await kubectl(['apply', '-f', '-'], { kubeconfig: env.server.kubeconfig, stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [nad('lan-a', 0), nad('lan-b', 1)] }) });
  assert.equal(applied.code, 0, applied.stderr);
});

after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
  lab.close(env.agentDir);
});

function guest(name: string, networks: { name: string; nad: string; mac?: string }[]): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: 0,
      domain: {
        devices: {
          autoattachGraphicsDevice: false,
          disks: [{ name: 'root', disk: { bus: 'virtio' } }],
          interfaces: [{ name: 'default', masquerade: {} }, ...networks.map((n) => ({ name: n.name, bridge: {}, ...(n.mac === undefined ? {} : { macAddress: n.mac }) }))],
        },
        memory: { guest: '128Mi' },
      },
      networks: [{ name: 'default', pod: {} }, ...networks.map((n) => ({ name: n.name, multus: { networkName: n.nad } }))],
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }],
    },
  };
}

test('a VMI naming a missing NAD fails with the message and leaves no sandbox', { skip: skipWithoutQemu, timeout: 120_000 }, async () => {
  await env.client.create(vmis, guest('no-nad', [{ name: 'lan', nad: 'lan-a' }, { name: 'gone', nad: 'missing' }]));
  const failed = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'no-nad');
    return phaseOf(found) === 'Failed' ? found : undefined;
  }, { what: 'the VMI to fail', timeoutMs: 60_000, intervalMs: 100 });
  const ready = recordsAt(failed, 'status', 'conditions').find((c) => c.type === 'Ready');
  assert.equal(ready?.message, 'network-attachment-definition default/missing not found: create it, or fix networks[].multus.networkName');
  const names = networkNames(env.agentDir);
  assert.deepEqual(hostNetworkState([names.netnsPrefix]).netns, []);
  assert.deepEqual(leftInSandboxes(env.agentDir), []);
  assert.deepEqual(lab.leaseFiles(), [], 'no address of lan-a was taken');
  await env.client.delete(vmis, 'default', 'no-nad');
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'no-nad')) === undefined, { what: 'the failed VMI gone', timeoutMs: 30_000 });
});

test('a guest on the pod network and two NADs takes both IPAM addresses by DHCP, answers on them, is reported, and leaves nothing', { skip: skipWithoutQemu, timeout: 600_000 }, async () => {
  const names = networkNames(env.agentDir);
  const givenMac = '02:4d:55:00:00:02';
  await env.client.create(vmis, guest('two-lans', [{ name: 'lan-a', nad: 'lan-a' }, { name: 'lan-b', nad: 'default/lan-b', mac: givenMac }]));
  const vmi = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'two-lans');
    if (phaseOf(found) === 'Failed') throw new Error(`VMI failed: ${JSON.stringify(found?.status)}`);
    return phaseOf(found) === 'Running' && recordsAt(found, 'status', 'interfaces').length === 3 ? found : undefined;
  }, { what: 'the VMI running with three interfaces', timeoutMs: bootMs, intervalMs: 200 });

  // status.interfaces: the pod NIC, then net1 and net2 with the IPAM addresses and the guest MACs.
  const statuses = recordsAt(vmi, 'status', 'interfaces');
  assert.deepEqual(statuses.map((s) => [stringAt(s, 'name'), stringAt(s, 'interfaceName'), stringAt(s, 'infoSource')]), [['default', 'eth0', 'domain'], ['lan-a', 'net1', 'domain'], ['lan-b', 'net2', 'domain']]);
  const ipA = stringAt(statuses[1], 'ipAddress') ?? '';
  const ipB = stringAt(statuses[2], 'ipAddress') ?? '';
  assert.ok(ipA.startsWith(`${subnets[0] ?? ''}.`), ipA);
  assert.ok(ipB.startsWith(`${subnets[1] ?? ''}.`), ipB);
  assert.equal(stringAt(statuses[2], 'mac'), givenMac);
  const macA = stringAt(statuses[1], 'mac') ?? '';
  assert.match(macA, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);

  // network-status: the pod network first (the default), then each NAD with its interface and address.
  const annotation = await eventually(async () => (await env.client.tryGet(vmis, 'default', 'two-lans'))?.metadata.annotations?.['k8s.v1.cni.cncf.io/network-status'], { what: 'the network-status annotation', timeoutMs: 30_000 });
  const entries = JSON.parse(annotation) as { name: string; interface?: string; ips?: string[]; default?: boolean }[];
  assert.deepEqual(entries.map((e) => [e.name, e.interface, e.ips, e.default]), [
    ['vireo-pod-network', 'eth0', statuses[0]?.ipAddresses, true],
    ['default/lan-a', 'net1', [ipA], undefined],
    ['default/lan-b', 'net2', [ipB], undefined],
  ]);
  assert.equal(lab.leaseFiles().length, 2);

  // The guest: DHCP on every NIC (eth1 = net1, eth2 = net2), as its boot log and `ip addr` say.
  const console = await ConsoleCapture.open(env, 'two-lans');
  try {
    await eventually(() => console.text().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 200 });
    await eventually(() => console.text().includes(`network: eth1 ${ipA}/24`) && console.text().includes(`network: eth2 ${ipB}/24`), { what: 'the guest to take both addresses by DHCP', timeoutMs: 60_000, intervalMs: 200 });
    const addr = await runOnConsole(console, 'ip -4 -o addr show', 'ADDR');
    assert.match(addr, new RegExp(`eth1\\s+inet ${ipA.replaceAll('.', '\\.')}/24`));
    assert.match(addr, new RegExp(`eth2\\s+inet ${ipB.replaceAll('.', '\\.')}/24`));
    assert.match(addr, /eth0\s+inet 10\.0\.2\.2\/24/);
    const links = await runOnConsole(console, 'ip -o link show', 'LINK');
    assert.match(links, new RegExp(`eth1:.*link/ether ${macA}`));
    assert.match(links, new RegExp(`eth2:.*link/ether ${givenMac}`));
    // No default route through a secondary network (its IPAM named no gateway): DHCP gave no router there.
    const routes = await runOnConsole(console, 'ip route', 'ROUTE');
    assert.doesNotMatch(routes, /default via \S+ dev eth[12]/);
    assert.match(routes, /default via 10\.0\.2\.1 dev eth0/);
  } finally {
    console.close();
  }

  // A namespace of the test's own on lan-a's bridge reaches the guest's lan-a address: the datapath is real.
  lab.plugPeer(`${subnets[0] ?? ''}.250`);
  const ping = execFileSync('ip', ['netns', 'exec', lab.peerNetns, 'ping', '-c', '2', '-w', '20', ipA], { encoding: 'utf8' });
  assert.match(ping, /2 received|2 packets received/);
  lab.unplugPeer();

  await env.client.delete(vmis, 'default', 'two-lans');
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'two-lans')) === undefined, { what: 'the VMI gone', timeoutMs: 60_000 });
  // DEL ran for both: leases released, cache empty, the plugins' host veths gone; no sandbox, no QEMU.
  lab.assertReleased(env.agentDir);
  assert.deepEqual(hostNetworkState([names.netnsPrefix]).netns, []);
  assert.deepEqual(leftInSandboxes(env.agentDir), []);
  assert.deepEqual(leftoverQemus(env), []);
});
