/**
 * The lab hosts themselves (src/testing/hosts-lab.ts, test/cluster/support.ts):
 * a server in host-0 and agents in host-1 and host-2 join over the lab
 * bridge, each Node with its own address; a host cut off cannot be reached
 * and can be again once reconnected; the scheduler spreads VMIs over the
 * hosts (blank-image QEMUs, no guest OS); a killed host has no process left;
 * nothing is left once the lab is gone. No guest boots.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { resources } from '../../src/client/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { join } from 'node:path';
import { ImageStore } from '../../src/agent/images/index.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { importBlankImage, phase, vmiManifest } from '../agent/support.js';
import { labSkip } from './requirements.js';
import { startLabCluster } from './support.js';

const skip = labSkip;

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

  await t.test('the scheduler spreads VMIs over the hosts: three VMIs, one after another, run on three nodes', async () => {
    await Promise.all([join(cluster.root, 'server', 'images'), ...[host1, host2].map((h) => join(cluster.root, h.name, 'images'))].map((dir) => importBlankImage(new ImageStore(dir))));
    const names = ['spread-0', 'spread-1', 'spread-2'];
    const nodes: string[] = [];
    try {
      for (const name of names) {
        const manifest = vmiManifest(name);
        // No pod network: only placement is under test here.
        await client.create(resources.virtualMachineInstances, { ...manifest, spec: { ...(manifest.spec as Record<string, unknown>), domain: { devices: { autoattachGraphicsDevice: false, autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, memory: { guest: '64Mi' }, resources: {} } } });
        // One at a time: each placement sees the previous one's memory on its node.
        const vmi = await eventually(async () => { const v = await client.tryGet(resources.virtualMachineInstances, 'default', name); return v !== undefined && phase(v) === 'Running' ? v : undefined; }, { what: `${name} running`, timeoutMs: 120_000, intervalMs: 200 });
        nodes.push(stringAt(vmi, 'status', 'nodeName') ?? '');
      }
      assert.deepEqual([...nodes].sort(), [cluster.serverNode, host1.name, host2.name].sort(), `placed on ${nodes.join(', ')}`);
    } finally {
      for (const name of names) await client.delete(resources.virtualMachineInstances, 'default', name).catch(() => undefined);
      await eventually(async () => (await client.list(resources.virtualMachineInstances, { namespace: 'default' })).items.length === 0 || undefined, { what: 'the VMIs to be gone', timeoutMs: 60_000 });
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
