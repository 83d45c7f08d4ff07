/**
 * The pod network end to end with real guests (TCG): a masquerade guest
 * and a bridge guest on one node fetch each other's HTTP page on the pod
 * addresses, typed on their serial consoles; each guest holds the address
 * its binding gives it; status.interfaces reports the pod addresses and
 * MAC; deleting the VMIs leaves no namespace, link or lease behind.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, leftoverQemus, openVmEnv, phaseOf, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { hostNetworkState } from './support.js';

const bootMs = 240_000;
let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-podnet-test');
  await importTestGuest(env.images);
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
  const names = networkNames(env.agentDir);
  assert.deepEqual(hostNetworkState([names.bridge, names.table, names.netnsPrefix]), { netns: [], links: [], tables: [] }, 'the stopped agent left its pod network behind');
});

function guest(name: string, binding: 'masquerade' | 'bridge', mac?: string): KObject {
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
          interfaces: [{ name: 'default', [binding]: {}, ...(mac === undefined ? {} : { macAddress: mac }) }],
        },
        memory: { guest: '128Mi' },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }],
    },
  };
}

async function booted(name: string): Promise<{ vmi: KObject; console: ConsoleCapture }> {
  const vmi = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', name);
    if (phaseOf(found) === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(found?.status)}`);
    return phaseOf(found) === 'Running' && recordsAt(found, 'status', 'interfaces').length > 0 ? found : undefined;
  }, { what: `VMI ${name} running with interfaces`, timeoutMs: bootMs, intervalMs: 100 });
  const console = await ConsoleCapture.open(env, name);
  await eventually(() => console.text().includes(TEST_GUEST_READY_MARKER), { what: `the guest of ${name} to be ready`, timeoutMs: bootMs, intervalMs: 200 });
  return { vmi, console };
}

/** Types `command` on the console and waits for `marker` after it; the console text from the command on. */
async function run(console: ConsoleCapture, command: string, marker: string): Promise<string> {
  const from = console.text().length;
  console.type(`${command}; echo ${marker}-$?`);
  return eventually(() => {
    const text = console.text().slice(from);
    return new RegExp(`${marker}-\\d`).test(text.replace(`echo ${marker}-$?`, '')) ? text : undefined;
  }, { what: `"${command}" to finish in the guest`, timeoutMs: 60_000, intervalMs: 200 });
}

test('a masquerade guest and a bridge guest reach each other on their pod addresses; status.interfaces reports them; deletion leaves nothing', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const names = networkNames(env.agentDir);
  await env.client.create(vmis, guest('masq', 'masquerade'));
  await env.client.create(vmis, guest('bridged', 'bridge', '02:aa:bb:cc:dd:ee'));
  const masq = await booted('masq');
  const bridged = await booted('bridged');

  const masqStatus = recordsAt(masq.vmi, 'status', 'interfaces')[0];
  const bridgedStatus = recordsAt(bridged.vmi, 'status', 'interfaces')[0];
  const masqIp = stringAt(masqStatus, 'ipAddress') ?? '';
  const bridgedIp = stringAt(bridgedStatus, 'ipAddress') ?? '';
  assert.match(masqIp, /^10\.2[0-3]\d\.\d+\.\d+$/);
  assert.match(bridgedIp, /^10\.2[0-3]\d\.\d+\.\d+$/);
  assert.notEqual(masqIp, bridgedIp);
  assert.equal(stringAt(masqStatus, 'name'), 'default');
  assert.equal(stringAt(masqStatus, 'interfaceName'), 'eth0');
  assert.equal(stringAt(bridgedStatus, 'mac'), '02:aa:bb:cc:dd:ee');
  // Derived from the VMI's uid: a locally administered unicast MAC.
  const mac = stringAt(masqStatus, 'mac') ?? '';
  assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(mac.slice(0, 2), 16) & 3, 2);
  assert.equal(recordsAt(masq.vmi, 'status', 'interfaces').length, 1);

  // What DHCP gave each guest, as its own boot log says (guest/rootfs/usr/share/udhcpc/default.script).
  await eventually(() => masq.console.text().includes('network: eth0 10.0.2.2/24 via 10.0.2.1'), { what: 'the masquerade guest to get 10.0.2.2', timeoutMs: 30_000 });
  const gateway = bridgedIp.replace(/\.\d+$/, '.1');
  await eventually(() => bridged.console.text().includes(`network: eth0 ${bridgedIp}/24 via ${gateway}`), { what: 'the bridge guest to get its pod address', timeoutMs: 30_000 });
  assert.match(await run(masq.console, 'ip -4 -o addr show dev eth0', 'ADDR'), /inet 10\.0\.2\.2\/24/);
  assert.match(await run(bridged.console, 'ip -4 -o addr show dev eth0', 'ADDR'), new RegExp(`inet ${bridgedIp.replaceAll('.', '\\.')}/24`));

  // Each fetches the other's page: masquerade → bridge (routed out through NAT), bridge → masquerade (DNAT to 10.0.2.2).
  const fromMasq = await run(masq.console, `wget -qO- http://${bridgedIp}/`, 'FETCH');
  assert.match(fromMasq, /Vireo test guest/);
  assert.match(fromMasq, /FETCH-0/);
  const fromBridged = await run(bridged.console, `wget -qO- http://${masqIp}/`, 'FETCH');
  assert.match(fromBridged, /Vireo test guest/);
  assert.match(fromBridged, /FETCH-0/);
  masq.console.close();
  bridged.console.close();

  await env.client.delete(vmis, 'default', 'masq');
  await env.client.delete(vmis, 'default', 'bridged');
  await eventually(async () => (await env.client.tryGet(vmis, 'default', 'masq')) === undefined && (await env.client.tryGet(vmis, 'default', 'bridged')) === undefined, { what: 'both VMIs gone', timeoutMs: 60_000 });
  // The node bridge and table stay for the next guest; no sandbox namespace or veth does.
  const left = hostNetworkState([names.netnsPrefix, names.bridge]);
  assert.deepEqual({ netns: left.netns, links: left.links }, { netns: [], links: [names.bridge] });
  const sandboxes = join(env.agentDir, 'network', 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], [], 'the leases are released');
  assert.deepEqual(leftoverQemus(env), []);
});

test('a start that fails after its sandbox was made (QEMU refuses the PCI slot) leaves no sandbox, veth or lease', { skip: skipWithoutQemu, timeout: 300_000 }, async () => {
  const names = networkNames(env.agentDir);
  const vmi = guest('taken-slot', 'masquerade');
  // Slot 0x1f is q35's LPC bridge: QEMU exits at start, after the agent made the sandbox.
  const interfaces = recordsAt(vmi, 'spec', 'domain', 'devices', 'interfaces');
  if (interfaces[0] !== undefined) interfaces[0].pciAddress = '0000:00:1f.0';
  await env.client.create(vmis, vmi);
  const failed = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'taken-slot');
    return phaseOf(found) === 'Failed' ? found : undefined;
  }, { what: 'the VMI to fail', timeoutMs: 120_000, intervalMs: 100 });
  const ready = recordsAt(failed, 'status', 'conditions').find((c) => c.type === 'Ready');
  assert.match(String(ready?.message), /PCI|slot|1f/i);
  const left = hostNetworkState([names.netnsPrefix, names.bridge]);
  assert.deepEqual(left.netns, []);
  assert.deepEqual(left.links.filter((l) => l !== names.bridge), []);
  const sandboxes = join(env.agentDir, 'network', 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], []);
  await env.client.delete(vmis, 'default', 'taken-slot');
});
