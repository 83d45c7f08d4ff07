/**
 * Node failure on three lab hosts (a server in host-0, agents in host-1
 * and host-2), with a short `--node-monitor-grace-period`:
 * - a killed host's Node turns NotReady (unreachable taints, an Event), its
 *   VMIs go Failed (NodeUnresponsive), a VM with runStrategy Always runs
 *   again on another node, and the agent, once back, starts nothing;
 * - the fencing test: a real guest writes a counter to a hostDisk every
 *   host sees; its host is cut off; the cut-off agent kills the guest
 *   (self-fencing) before the VM runs again elsewhere, no two QEMUs ever
 *   have the disk open at once, and the new guest continues the counter;
 *   once reconnected the agent reports the fenced guest and its Node is
 *   Ready again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { leaseRenewIntervalMs } from '../../src/api/kinds/node-lifecycle.js';
import { ImageStore, TEST_GUEST_IMAGE, importTestGuest } from '../../src/agent/images/index.js';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { blankImage, importBlankImage, qemuPidsUnder } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { startLabCluster } from './support.js';
import type { LabCluster } from './support.js';

function has(binary: string): boolean {
  try {
    execFileSync('which', [binary]);
    return true;
  } catch {
    return false;
  }
}

const skip = !has('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (the agents check QEMU at start)' : !has('nsenter') ? 'nsenter is not installed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;

const graceSeconds = 12;

/** A VM of `image` with no pod NIC (the guests need no network here). */
function vm(name: string, image: string, options: { disks?: unknown[]; volumes?: unknown[]; memory?: string } = {}): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          terminationGracePeriodSeconds: 0,
          domain: {
            devices: { autoattachGraphicsDevice: false, autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }, ...(options.disks ?? [])] },
            memory: { guest: options.memory ?? '64Mi' },
            resources: {},
          },
          volumes: [{ name: 'root', containerDisk: { image } }, ...(options.volumes ?? [])],
        },
      },
    },
  };
}

async function vmiOf(cluster: LabCluster, name: string): Promise<KObject | undefined> {
  return cluster.client.tryGet(resources.virtualMachineInstances, 'default', name);
}

function nodeOf(vmi: KObject | undefined): string | undefined {
  return vmi === undefined ? undefined : stringAt(vmi, 'status', 'nodeName');
}

function phaseOf(vmi: KObject | undefined): string | undefined {
  return vmi === undefined ? undefined : stringAt(vmi, 'status', 'phase');
}

/** `kubectl get nodes` status column of `node`. */
async function nodeStatus(cluster: LabCluster, node: string): Promise<string | undefined> {
  const out = await kubectl(['get', 'nodes', '--no-headers'], cluster.kc);
  const line = out.stdout.split('\n').find((l) => l.startsWith(`${node} `));
  return line?.trim().split(/\s+/)[1];
}

/** Runs VM `name` on `host`: the other nodes are cordoned until it runs there (a nodeSelector would keep it from moving). */
async function placeOn(cluster: LabCluster, name: string, host: string, manifest: KObject): Promise<KObject> {
  const others = [cluster.serverNode, ...cluster.lab.hosts.slice(1).map((h) => h.name)].filter((n) => n !== host);
  for (const node of others) assert.equal((await kubectl(['cordon', node], cluster.kc)).code, 0);
  try {
    await cluster.client.create(resources.virtualMachines, manifest);
    return await eventually(async () => {
      const vmi = await vmiOf(cluster, name);
      if (phaseOf(vmi) === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(vmi?.status)}`);
      return phaseOf(vmi) === 'Running' && nodeOf(vmi) === host ? vmi : undefined;
    }, { what: `VM ${name} running on ${host}`, timeoutMs: 240_000, intervalMs: 250 });
  } finally {
    for (const node of others) await kubectl(['uncordon', node], cluster.kc);
  }
}

/** QEMU pids (any host) that have `file` open, from /proc/PID/fd. */
function qemusWithOpen(file: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('qemu-system')) continue;
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        if (readlinkSync(`/proc/${entry}/fd/${fd}`) === file) {
          pids.push(Number(entry));
          break;
        }
      }
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

test('a dead node turns NotReady, its VMIs fail and its VMs run again elsewhere; a cut-off node fences its guests first', { skip, timeout: 1_200_000 }, async (t) => {
  const cluster = await startLabCluster({ hosts: 3, serverArgs: ['--node-monitor-grace-period', `${graceSeconds}s`] });
  t.after(() => cluster.close());
  const { lab, client, root } = cluster;
  const [, host1, host2] = lab.hosts;
  assert.ok(host1 !== undefined && host2 !== undefined);
  const stores = [join(root, 'server', 'images'), join(root, host1.name, 'images'), join(root, host2.name, 'images')].map((dir) => new ImageStore(dir));
  for (const store of stores) await importBlankImage(store);
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } });

  await t.test('every Node carries the grace period for its agent', async () => {
    await eventually(async () => (await client.list(resources.nodes)).items.every((n) => n.metadata.annotations?.['vireo.io/node-monitor-grace-period'] === `${graceSeconds}s`) || undefined, { what: 'the grace period on every Node', timeoutMs: 30_000 });
  });

  await t.test('a killed host: NotReady within the grace period, its VMIs Failed, its VM running on another node, nothing restarted when it returns', async () => {
    const first = await placeOn(cluster, 'mover', host2.name, vm('mover', blankImage));
    // A VMI without a VM: it fails and stays failed.
    await client.create(resources.virtualMachineInstances, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'lone', namespace: 'default' }, spec: { ...((first.spec ?? {}) as Record<string, unknown>), nodeSelector: { 'kubernetes.io/hostname': host2.name } } });
    await eventually(async () => phaseOf(await vmiOf(cluster, 'lone')) === 'Running' || undefined, { what: 'VMI lone running on host-2', timeoutMs: 120_000, intervalMs: 250 });

    const killedAt = Date.now();
    await lab.kill(host2);
    await eventually(async () => (await nodeStatus(cluster, host2.name)) === 'NotReady' || undefined, { what: 'kubectl get nodes to show host-2 NotReady', timeoutMs: (graceSeconds + 20) * 1000, intervalMs: 250 });
    const notReadyMs = Date.now() - killedAt;
    t.diagnostic(`host-2 NotReady ${notReadyMs} ms after its death (grace ${graceSeconds} s)`);
    // The grace runs from the last renew the server saw, up to one renew interval before the kill.
    assert.ok(notReadyMs >= graceSeconds * 1000 - leaseRenewIntervalMs(graceSeconds * 1000) - 500, `NotReady after ${notReadyMs} ms: not before the grace period`);
    assert.ok(notReadyMs <= (graceSeconds + 10) * 1000, `NotReady after ${notReadyMs} ms: within grace + 10 s`);
    const node = await client.get(resources.nodes, undefined, host2.name);
    const ready = recordsAt(node, 'status', 'conditions').find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'Unknown');
    assert.equal(ready?.reason, 'NodeStatusUnknown');
    const taints = recordsAt(node, 'spec', 'taints').map((t) => `${String(t.key)}:${String(t.effect)}`);
    assert.ok(taints.includes('node.kubernetes.io/unreachable:NoSchedule') && taints.includes('node.kubernetes.io/unreachable:NoExecute'), taints.join(' '));

    const lone = await eventually(async () => {
      const vmi = await vmiOf(cluster, 'lone');
      return phaseOf(vmi) === 'Failed' ? vmi : undefined;
    }, { what: 'VMI lone Failed', timeoutMs: 30_000, intervalMs: 250 });
    assert.equal(stringAt(lone, 'status', 'reason'), 'NodeUnresponsive');
    const events = await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=lone', '-o', 'jsonpath={.items[*].reason}'], cluster.kc);
    assert.match(events.stdout, /NodeUnresponsive/);

    const moved = await eventually(async () => {
      const vmi = await vmiOf(cluster, 'mover');
      return phaseOf(vmi) === 'Running' && vmi?.metadata.uid !== first.metadata.uid ? vmi : undefined;
    }, { what: 'VM mover running again', timeoutMs: 120_000, intervalMs: 250 });
    t.diagnostic(`mover running on ${nodeOf(moved) ?? '?'} ${Date.now() - killedAt} ms after host-2's death`);
    assert.notEqual(nodeOf(moved), host2.name);

    // The agent returns: Ready again, taints gone, and the failed VMI is not started again.
    await cluster.startAgent(host2);
    await eventually(async () => (await nodeStatus(cluster, host2.name)) === 'Ready' || undefined, { what: 'host-2 Ready again', timeoutMs: 60_000, intervalMs: 250 });
    await eventually(async () => {
      const back = await client.get(resources.nodes, undefined, host2.name);
      return !recordsAt(back, 'spec', 'taints').some((t) => t.key === 'node.kubernetes.io/unreachable') || undefined;
    }, { what: 'the unreachable taints removed', timeoutMs: 30_000 });
    // Nothing to wait on for something that must not happen: the agent has listed its VMIs (Ready) and cleaned up its directories.
    await eventually(() => !existsSync(join(root, host2.name, 'agent', 'vmis', first.metadata.uid ?? '')) || undefined, { what: "host-2's agent to clean up the directory of mover's dead guest", timeoutMs: 60_000, intervalMs: 250 });
    assert.deepEqual(qemuPidsUnder(join(root, host2.name)), []);
    assert.equal(phaseOf(await vmiOf(cluster, 'lone')), 'Failed');
    await client.delete(resources.virtualMachineInstances, 'default', 'lone');
    await client.delete(resources.virtualMachines, 'default', 'mover');
    await eventually(async () => (await vmiOf(cluster, 'mover')) === undefined && (await vmiOf(cluster, 'lone')) === undefined, { what: 'mover and lone gone', timeoutMs: 60_000 });
  });

  await t.test('the fencing test: a cut-off host kills its guest before the VM runs elsewhere; no two QEMUs ever have its disk open', async () => {
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
});
