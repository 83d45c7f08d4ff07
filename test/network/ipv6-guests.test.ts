/**
 * IPv6 on the pod network with real guests (TCG): two masquerade guests
 * get fd10:0:2::2 by DHCPv6 and a default route from the sandbox's router
 * advertisements, fetch each other's HTTP pages on their IPv6 pod
 * addresses (NAT66 out, DNAT66 in), and a port missing from
 * `interfaces[].ports` is closed on IPv6 as on IPv4; status.interfaces
 * reports both families; deleting the VMIs leaves nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { arrayAt, recordsAt } from '../../src/api/kinds/read.js';
import { networkNames } from '../../src/net/pod/names.js';
import { eventually } from '../../src/testing/wait.js';
import type { ConsoleCapture } from '../e2e/vm-support.js';
import { leftoverQemus, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { hostNetworkState } from './support.js';
import { bootedGuest, closeGuestEnv, openGuestEnv, podGuest, runOnConsole } from './guests.js';

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openGuestEnv('vireo-ipv6-test');
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeGuestEnv(env);
});

interface Booted {
  vmi: KObject;
  console: ConsoleCapture;
  v4: string;
  v6: string;
}

/** A URL of `port` on `address`, IPv6 in brackets. */
function url(address: string, port: number): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}/`;
}

test('two masquerade guests take fd10:0:2::2 by DHCPv6 and a default route by RA, and reach each other on their IPv6 pod addresses at the forwarded ports only', { skip: skipWithoutQemu, timeout: 900_000 }, async () => {
  const names = networkNames(env.agentDir);
  // v6-a forwards every port; v6-b lists port 80 alone.
  await env.client.create(vmis, podGuest('v6-a', 'masquerade'));
  await env.client.create(vmis, podGuest('v6-b', 'masquerade', { ports: [{ port: 80 }] }));
  const up = new Map<string, Booted>();
  for (const name of ['v6-a', 'v6-b']) {
    const { vmi, console } = await bootedGuest(env, name);
    const ips = arrayAt(recordsAt(vmi, 'status', 'interfaces')[0], 'ipAddresses').filter((ip): ip is string => typeof ip === 'string');
    // status.interfaces: the sandbox's pod addresses of both families, IPv4 first.
    assert.equal(ips.length, 2, `${name} reports both pod addresses: ${JSON.stringify(ips)}`);
    const [v4, v6] = ips;
    assert.match(v4 ?? '', /^10\.\d+\.\d+\.\d+$/);
    assert.match(v6 ?? '', /^fd[0-9a-f]{2}:[0-9a-f:]+$/);
    up.set(name, { vmi, console, v4: v4 ?? '', v6: v6 ?? '' });
  }
  const get = (name: string): Booted => {
    const found = up.get(name);
    if (found === undefined) throw new Error(`${name} did not boot`);
    return found;
  };
  assert.notEqual(get('v6-a').v6, get('v6-b').v6);

  for (const name of ['v6-a', 'v6-b']) {
    const { console } = get(name);
    // dhcpcd runs in the background: wait for the DHCPv6 address and the RA's default route.
    // Until duplicate address detection is over, the address is "tentative" and the guest answers nothing sent to it.
    const settled = (text: string): boolean => text.split('\n').some((line) => /inet6 fd10:0:2::2\//.test(line) && !/tentative/.test(line));
    await eventually(async () => settled(await runOnConsole(console, 'ip -6 -o addr show dev eth0', 'ADDR6')), { what: `${name} to get fd10:0:2::2 (past duplicate address detection)`, timeoutMs: 120_000, intervalMs: 2_000 });
    await eventually(async () => /default via fe80:[0-9a-f:]+ dev eth0/.test(await runOnConsole(console, 'ip -6 route show default', 'ROUTE6')), { what: `${name} to get a default route from the router advertisements`, timeoutMs: 60_000, intervalMs: 2_000 });
    // A second web server on 8080: forwarded on v6-a (no ports listed), not on v6-b.
    await runOnConsole(console, 'httpd -p 8080 -h /www', 'HTTPD');
  }

  // No `-T`: busybox-static 1.35's wget segfaults with it (IPv4 and IPv6 alike).
  const fetch = (from: string, target: string): Promise<string> => runOnConsole(get(from).console, `wget -qO- ${target}`, 'FETCH');
  const { v4: a4, v6: a6 } = get('v6-a');
  const { v4: b4, v6: b6 } = get('v6-b');
  // The listed port (v6-b's 80) and any port of v6-a: the page over IPv6, as over IPv4.
  for (const [from, target] of [['v6-a', url(b6, 80)], ['v6-a', url(b4, 80)], ['v6-b', url(a6, 80)], ['v6-b', url(a6, 8080)], ['v6-b', url(a4, 8080)]] as const) {
    const out = await fetch(from, target);
    assert.match(out, /Vireo test guest/, `${from} fetches ${target}`);
    assert.match(out, /FETCH-0/);
  }
  // v6-b's 8080 is not in its ports: closed on both families (the sandbox itself answers with a reset).
  for (const target of [url(b6, 8080), url(b4, 8080)]) {
    const out = await fetch('v6-a', target);
    assert.doesNotMatch(out, /Vireo test guest/, `v6-a must not reach ${target}`);
    assert.match(out, /FETCH-[1-9]/);
  }
  // In the guest, 8080 does serve: the refusal is the sandbox's.
  assert.match(await runOnConsole(get('v6-b').console, `wget -qO- ${url('::1', 8080)}`, 'LOCAL'), /Vireo test guest/);
  for (const name of ['v6-a', 'v6-b']) get(name).console.close();

  for (const name of ['v6-a', 'v6-b']) await env.client.delete(vmis, 'default', name);
  await eventually(async () => {
    for (const name of ['v6-a', 'v6-b']) if ((await env.client.tryGet(vmis, 'default', name)) !== undefined) return false;
    return true;
  }, { what: 'the VMIs gone', timeoutMs: 60_000 });
  const left = hostNetworkState([names.netnsPrefix, names.bridge]);
  assert.deepEqual({ netns: left.netns, links: left.links }, { netns: [], links: [names.bridge] });
  const sandboxes = join(env.agentDir, 'network', 'sandboxes');
  assert.deepEqual(existsSync(sandboxes) ? readdirSync(sandboxes) : [], [], 'the leases are released');
  assert.deepEqual(leftoverQemus(env), []);
});
