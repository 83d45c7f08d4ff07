/**
 * The fencing test on three lab hosts (a server in host-0, agents in host-1
 * and host-2), with a short `--node-monitor-grace-period`: a real guest
 * writes a counter to a hostDisk every host sees; its host is cut off; the
 * cut-off agent kills the guest (self-fencing) before the VM runs again
 * elsewhere, no two QEMUs ever have the disk open at once, and the new
 * guest continues the counter; once reconnected the agent reports the
 * fenced guest, starts nothing, and its Node is Ready again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_GUEST_IMAGE, importTestGuest } from '../../src/agent/images/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { resources } from '../../src/client/index.js';
import { qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { graceSeconds, nodeOf, nodeStatus, phaseOf, placeOn, qemusWithOpen, skip, startFailureCluster, vm, vmiOf } from './node-failure-support.js';

test('the fencing test: a cut-off host kills its guest before the VM runs elsewhere; no two QEMUs ever have its disk open', { skip, timeout: 580_000 }, async (t) => {
  const { cluster, stores } = await startFailureCluster();
  t.after(() => cluster.close());
  const { lab, client, root } = cluster;
  const [, host1] = lab.hosts;
  assert.ok(host1 !== undefined);
  for (const store of stores) await importTestGuest(store);
  const shared = join(root, 'shared');
  mkdirSync(shared, { recursive: true });
  const disk = join(shared, 'counter.img');
  // The counter lives in the disk's first 16 bytes: "tick N"; a new guest continues from what it finds.
  const userData = [
    '#!/bin/sh',
    'v=$(dd if=/dev/vdb bs=16 count=1 2>/dev/null | tr -d "\\000")',
    'i=0',
    'case "$v" in tick\\ *) i=$(echo ${v#tick } | tr -dc 0-9) ;; esac',
    'echo "resume from $i"',
    'while true; do i=$((i+1)); printf "tick %-10d" $i | dd of=/dev/vdb bs=16 count=1 conv=notrunc,fsync 2>/dev/null; echo "tick $i"; sleep 1; done',
    '',
  ].join('\n');
  const manifest = vm('writer', TEST_GUEST_IMAGE, {
    memory: '128Mi',
    disks: [{ name: 'data', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }],
    volumes: [{ name: 'data', hostDisk: { path: disk, type: 'DiskOrCreate', capacity: '16Mi' } }, { name: 'cloudinit', cloudInitNoCloud: { userData } }],
  });
  const first = await placeOn(cluster, 'writer', host1.name, manifest);
  const logs = async (): Promise<string> => (await vireo(['logs', 'writer'], { kubeconfig: cluster.kc.kubeconfig, timeoutMs: 30_000 })).stdout;
  const ticks = (text: string): number => Math.max(0, ...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
  await eventually(async () => ticks(await logs()) >= 3 || undefined, { what: 'the guest on host-1 to count', timeoutMs: 300_000, intervalMs: 1000 });
  const [firstPid] = qemusWithOpen(disk);
  assert.ok(firstPid !== undefined, 'the guest on host-1 has its disk open');

  // Sample who has the disk open every 100 ms, from before the cut until the VM runs elsewhere.
  const seen: { at: number; pids: number[] }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      seen.push({ at: Date.now(), pids: qemusWithOpen(disk) });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const beforeCut = ticks(await logs());
  const cutAt = Date.now();
  await lab.cut(host1);
  try {
    const moved = await eventually(async () => {
      const vmi = await vmiOf(cluster, 'writer');
      return phaseOf(vmi) === 'Running' && vmi?.metadata.uid !== first.metadata.uid ? vmi : undefined;
    }, { what: 'VM writer running on another node', timeoutMs: 240_000, intervalMs: 250 });
    assert.notEqual(nodeOf(moved), host1.name);
    const resumed = await eventually(async () => {
      const text = await logs();
      const m = /resume from (\d+)/.exec(text);
      return m !== null && ticks(text) > Number(m[1]) ? { from: Number(m[1]), text } : undefined;
    }, { what: 'the new guest to read the counter back and continue', timeoutMs: 300_000, intervalMs: 1000 });
    sampling = false;
    await sampler;
    t.diagnostic(`counter at ${beforeCut} when host-1 was cut; the new guest on ${nodeOf(moved) ?? '?'} resumed from ${resumed.from}`);
    assert.ok(resumed.from >= beforeCut, `the counter went on from ${resumed.from}, not back before ${beforeCut}`);

    const twice = seen.filter((s) => s.pids.length > 1);
    assert.deepEqual(twice, [], 'never two QEMUs with the disk open at once');
    const lastFirst = seen.filter((s) => s.pids.includes(firstPid)).at(-1)?.at ?? cutAt;
    const firstOther = seen.find((s) => s.pids.some((p) => p !== firstPid))?.at;
    t.diagnostic(`host-1's QEMU had the disk until ${lastFirst - cutAt} ms after the cut; the next QEMU opened it at ${firstOther === undefined ? '?' : firstOther - cutAt} ms`);
    assert.ok(lastFirst - cutAt < graceSeconds * 1000, `the cut-off agent fenced its guest within the grace period (${lastFirst - cutAt} ms)`);
    const record = JSON.parse(readFileSync(join(root, host1.name, 'agent', 'fenced.json'), 'utf8')) as { guests: { name: string; uid: string }[] };
    assert.ok(record.guests.some((g) => g.uid === first.metadata.uid), JSON.stringify(record));
  } finally {
    sampling = false;
    await sampler;
    await lab.reconnect(host1);
  }

  // Back: the Node Ready, the fenced guest reported and not started again.
  await eventually(async () => (await nodeStatus(cluster, host1.name)) === 'Ready' || undefined, { what: 'host-1 Ready again', timeoutMs: 90_000, intervalMs: 500 });
  await eventually(async () => {
    const events = await kubectl(['get', 'events', '--field-selector', `involvedObject.name=${host1.name}`, '-o', 'jsonpath={.items[*].reason}'], cluster.kc);
    return /NodeFenced/.test(events.stdout) || undefined;
  }, { what: 'the NodeFenced Event on host-1', timeoutMs: 60_000, intervalMs: 500 });
  assert.deepEqual(qemuPidsUnder(join(root, host1.name)), [], 'host-1 started nothing again');
  await eventually(() => !existsSync(join(root, host1.name, 'agent', 'vmis', first.metadata.uid ?? '')) || undefined, { what: "host-1's agent to clean up the fenced guest's directory", timeoutMs: 120_000, intervalMs: 500 });
  assert.equal(qemusWithOpen(disk).length, 1, 'only the moved guest has the disk open');
  await client.delete(resources.virtualMachines, 'default', 'writer');
  await eventually(async () => (await vmiOf(cluster, 'writer')) === undefined, { what: 'writer gone', timeoutMs: 60_000 });
});
