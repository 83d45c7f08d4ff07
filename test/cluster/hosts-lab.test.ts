/**
 * The lab hosts themselves (src/testing/hosts-lab.ts, test/cluster/support.ts):
 * a server in host-0 and agents in host-1 and host-2 join over the lab
 * bridge, each Node with its own address; a host cut off cannot be reached
 * and can be again once reconnected; a killed host has no process left;
 * nothing is left once the lab is gone. No guest boots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { resources } from '../../src/client/index.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { startLabCluster } from './support.js';

function has(binary: string): boolean {
  try {
    execFileSync('which', [binary]);
    return true;
  } catch {
    return false;
  }
}

const skip = !has('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (the agents check QEMU at start)' : !has('nsenter') ? 'nsenter is not installed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

test('three lab hosts join as three nodes with their own addresses; a host can be cut off and killed', { skip, timeout: 300_000 }, async (t) => {
  const cluster = await startLabCluster({ hosts: 3 });
  t.after(() => cluster.close());
  const { lab, client } = cluster;
  const [host0, host1, host2] = lab.hosts;
  assert.ok(host0 !== undefined && host1 !== undefined && host2 !== undefined);

  await t.test('kubectl get nodes -o wide lists every host, Ready, at its own address', async () => {
    const out = await eventually(
      async () => {
        const r = await kubectl(['get', 'nodes', '-o', 'wide', '--no-headers'], cluster.kc);
        return r.stdout.split('\n').filter((l) => /\sReady\s/.test(l)).length === 3 ? r.stdout : undefined;
      },
      { what: 'three Ready nodes', timeoutMs: 60_000 },
    );
    for (const [name, host] of [[cluster.serverNode, host0], [host1.name, host1], [host2.name, host2]] as const) {
      assert.match(out, new RegExp(`^${name.replace(/\./g, '\\.')}\\s+Ready\\s.*\\s${host.address.replace(/\./g, '\\.')}\\s`, 'm'), out);
    }
  });

  await t.test('a cut-off host is unreachable until it is reconnected', async () => {
    await lab.exec(host1, 'ping', '-c', '1', '-W', '2', host2.address);
    await lab.cut(host2);
    await assert.rejects(lab.exec(host1, 'ping', '-c', '1', '-W', '1', host2.address));
    await lab.reconnect(host2);
    await eventually(async () => (await lab.exec(host1, 'ping', '-c', '1', '-W', '1', host2.address).then(() => true, () => false)) || undefined, { what: 'host-2 reachable again', timeoutMs: 10_000 });
  });

  await t.test('a killed host has no process left, and its Node stays registered', async () => {
    assert.ok((await lab.pids(host2)).length > 0, 'host-2 runs its agent');
    await lab.kill(host2);
    assert.deepEqual(await lab.pids(host2), []);
    assert.ok((await client.tryGet(resources.nodes, undefined, host2.name)) !== undefined);
  });

  await t.test('the lab leaves nothing behind', async () => {
    await cluster.close();
    const netns = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
    for (const host of lab.hosts) assert.ok(!netns.includes(host.netns), netns);
    assert.throws(() => execFileSync('ip', ['link', 'show', lab.bridge], { stdio: 'pipe' }));
  });
});
