/**
 * The pod network end to end with real guests (TCG): two masquerade and
 * two bridge guests on one node fetch each other's HTTP pages on the pod
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
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import type { ConsoleCapture } from '../e2e/vm-support.js';
import { leftoverQemus, phaseOf, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { hostNetworkState } from './support.js';
import { bootedGuest, closeGuestEnv, openGuestEnv, podGuest, runOnConsole } from './guests.js';

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openGuestEnv('vireo-podnet-test');
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeGuestEnv(env);
});

const guest = (name: string, binding: 'masquerade' | 'bridge', mac?: string): KObject => podGuest(name, binding, mac === undefined ? {} : { mac });
const booted = (name: string): ReturnType<typeof bootedGuest> => bootedGuest(env, name);
const run = runOnConsole;

test('two masquerade guests and two bridge guests reach each other on their pod addresses; status.interfaces reports them; deletion leaves nothing', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const names = networkNames(env.agentDir);
  const guests = ['masq-a', 'masq-b', 'br-a', 'br-b'] as const;
  await env.client.create(vmis, guest('masq-a', 'masquerade'));
  await env.client.create(vmis, guest('masq-b', 'masquerade'));
  await env.client.create(vmis, guest('br-a', 'bridge', '02:aa:bb:cc:dd:ee'));
  await env.client.create(vmis, guest('br-b', 'bridge'));
  const up = new Map<string, { vmi: KObject; console: ConsoleCapture; ip: string }>();
  for (const name of guests) {
    const { vmi, console } = await booted(name);
    up.set(name, { vmi, console, ip: stringAt(recordsAt(vmi, 'status', 'interfaces')[0], 'ipAddress') ?? '' });
  }
  const get = (name: string): { vmi: KObject; console: ConsoleCapture; ip: string } => {
    const found = up.get(name);
    if (found === undefined) throw new Error(`${name} did not boot`);
    return found;
  };

  // status.interfaces: one entry, the pod address (distinct per guest), the MAC given or derived.
  assert.equal(new Set(guests.map((n) => get(n).ip)).size, 4);
  for (const name of guests) {
    const statuses = recordsAt(get(name).vmi, 'status', 'interfaces');
    assert.equal(statuses.length, 1);
    assert.match(get(name).ip, /^10\.2[0-3]\d\.\d+\.\d+$/);
    assert.equal(stringAt(statuses[0], 'name'), 'default');
    assert.equal(stringAt(statuses[0], 'interfaceName'), 'eth0');
  }
  assert.equal(stringAt(recordsAt(get('br-a').vmi, 'status', 'interfaces')[0], 'mac'), '02:aa:bb:cc:dd:ee');
  // Derived from the VMI's uid: a locally administered unicast MAC.
  const mac = stringAt(recordsAt(get('masq-a').vmi, 'status', 'interfaces')[0], 'mac') ?? '';
  assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  assert.equal(parseInt(mac.slice(0, 2), 16) & 3, 2);

  // What DHCP gave each guest, as its own boot log says (guest/rootfs/usr/share/udhcpc/default.script), and what eth0 holds.
  for (const name of ['masq-a', 'masq-b']) {
    await eventually(() => get(name).console.text().includes('network: eth0 10.0.2.2/24 via 10.0.2.1'), { what: `${name} to get 10.0.2.2`, timeoutMs: 30_000 });
    assert.match(await run(get(name).console, 'ip -4 -o addr show dev eth0', 'ADDR'), /inet 10\.0\.2\.2\/24/);
  }
  for (const name of ['br-a', 'br-b']) {
    const { ip, console } = get(name);
    await eventually(() => console.text().includes(`network: eth0 ${ip}/24 via ${ip.replace(/\.\d+$/, '.1')}`), { what: `${name} to get its pod address`, timeoutMs: 30_000 });
    assert.match(await run(console, 'ip -4 -o addr show dev eth0', 'ADDR'), new RegExp(`inet ${ip.replaceAll('.', '\\.')}/24`));
    // Bridge is IPv4 only (KubeVirt's too): no IPv6 address for the guest, and status reports the one it holds.
    assert.doesNotMatch(await run(console, 'ip -6 -o addr show dev eth0 scope global', 'ADDR6'), /inet6/);
    assert.deepEqual(recordsAt(get(name).vmi, 'status', 'interfaces')[0]?.ipAddresses, [ip]);
  }
  // Masquerade reports the sandbox's pod addresses of both families (the node's range is dual stack).
  for (const name of ['masq-a', 'masq-b']) assert.equal((recordsAt(get(name).vmi, 'status', 'interfaces')[0]?.ipAddresses as unknown[]).length, 2);

  // Each fetches the others' pages: masquerade pair, bridge pair, and across bindings (NAT out, DNAT in).
  for (const [from, to] of [['masq-a', 'masq-b'], ['masq-b', 'masq-a'], ['br-a', 'br-b'], ['br-b', 'br-a'], ['masq-a', 'br-a'], ['br-b', 'masq-b']] as const) {
    const out = await run(get(from).console, `wget -qO- http://${get(to).ip}/`, 'FETCH');
    assert.match(out, /Vireo test guest/, `${from} fetches ${to}'s page`);
    assert.match(out, /FETCH-0/);
  }
  for (const name of guests) get(name).console.close();

  for (const name of guests) await env.client.delete(vmis, 'default', name);
  await eventually(async () => {
    for (const name of guests) if ((await env.client.tryGet(vmis, 'default', name)) !== undefined) return false;
    return true;
  }, { what: 'the VMIs gone', timeoutMs: 60_000 });
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

test('a host name that could smuggle dnsmasq options is refused at admission (the agent checks again before dnsmasq)', { skip: skipWithoutQemu }, async () => {
  const vmi = guest('bad-host', 'masquerade');
  (vmi.spec as Record<string, unknown>).hostname = 'web,dhcp-range=1';
  await assert.rejects(env.client.create(vmis, vmi), /spec\.hostname does not conform to the kubernetes DNS_LABEL rules/);
});
