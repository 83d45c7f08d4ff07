/**
 * Node failure benchmark on three lab hosts (test/cluster/support.ts: a
 * `vireo server` in host-0, agents in host-1 and host-2, network
 * namespaces on one bridge), with `--node-monitor-grace-period` short.
 * Each round runs a VM (runStrategy Always, the blank image) on host-1 or
 * host-2, kills that host (every process of it, QEMU included, as a power
 * cut), and measures from the kill:
 *
 * 1. until the Node is NotReady (Ready Unknown), against the grace period;
 * 2. until the VM's new VMI is Running on another node, against the
 *    issue's target, grace period + 10 s.
 *
 * Then the host's agent starts again and the next round begins. Medians
 * and maxima are printed with their ratio to the target.
 * Run: npm run bench:node-failure (VIREO_BENCH_ROUNDS, default 3;
 * VIREO_BENCH_GRACE_SECONDS, default 12).
 */
import { join } from 'node:path';
import { recordsAt, stringAt } from '../src/api/kinds/read.js';
import { resources } from '../src/client/index.js';
import { ImageStore } from '../src/agent/images/index.js';
import { eventually } from '../src/testing/wait.js';
import { blankImage, importBlankImage } from '../test/agent/support.js';
import { startLabCluster } from '../test/cluster/support.js';
import type { LabCluster } from '../test/cluster/support.js';
import { vm } from '../test/cluster/node-failure-support.js';

const rounds = Number(process.env.VIREO_BENCH_ROUNDS ?? '3');
const graceSeconds = Number(process.env.VIREO_BENCH_GRACE_SECONDS ?? '12');

async function setUnschedulable(cluster: LabCluster, node: string, unschedulable: boolean): Promise<void> {
  await cluster.client.patch(resources.nodes, undefined, node, 'merge', { spec: { unschedulable } });
}

/** One round: the VM on `victim`, the host killed; ms to NotReady and to the VM running elsewhere. */
async function round(cluster: LabCluster, index: number, victim: number): Promise<{ notReadyMs: number; movedMs: number }> {
  const host = cluster.lab.hosts[victim];
  if (host === undefined) throw new Error(`no host ${victim}`);
  const name = `bench-${index}`;
  const others = [cluster.serverNode, ...cluster.lab.hosts.slice(1).map((h) => h.name)].filter((n) => n !== host.name);
  for (const node of others) await setUnschedulable(cluster, node, true);
  await cluster.client.create(resources.virtualMachines, vm(name, blankImage));
  const first = await eventually(async () => {
    const vmi = await cluster.client.tryGet(resources.virtualMachineInstances, 'default', name);
    return stringAt(vmi ?? { metadata: {} }, 'status', 'phase') === 'Running' ? vmi : undefined;
  }, { what: `${name} running on ${host.name}`, timeoutMs: 240_000, intervalMs: 100 });
  for (const node of others) await setUnschedulable(cluster, node, false);

  const killedAt = performance.now();
  await cluster.lab.kill(host);
  let notReadyMs = 0;
  const moved = eventually(async () => {
    if (notReadyMs === 0) {
      const node = await cluster.client.get(resources.nodes, undefined, host.name);
      if (recordsAt(node, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'Unknown')) notReadyMs = performance.now() - killedAt;
    }
    const vmi = await cluster.client.tryGet(resources.virtualMachineInstances, 'default', name);
    return vmi !== undefined && vmi.metadata.uid !== first.metadata.uid && stringAt(vmi, 'status', 'phase') === 'Running' ? vmi : undefined;
  }, { what: `${name} running again after ${host.name} died`, timeoutMs: (graceSeconds + 120) * 1000, intervalMs: 100 });
  await moved;
  const movedMs = performance.now() - killedAt;

  await cluster.client.delete(resources.virtualMachines, 'default', name);
  await cluster.startAgent(host);
  await eventually(async () => {
    const node = await cluster.client.get(resources.nodes, undefined, host.name);
    const ready = recordsAt(node, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'True');
    const gone = (await cluster.client.tryGet(resources.virtualMachineInstances, 'default', name)) === undefined;
    return (ready && gone) || undefined;
  }, { what: `${host.name} Ready again and ${name} gone`, timeoutMs: 120_000, intervalMs: 200 });
  return { notReadyMs, movedMs };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function main(): Promise<void> {
  const cluster = await startLabCluster({ hosts: 3, serverArgs: ['--node-monitor-grace-period', `${graceSeconds}s`] });
  try {
    for (const dir of [join(cluster.root, 'server'), ...cluster.lab.hosts.slice(1).map((h) => join(cluster.root, h.name))]) await importBlankImage(new ImageStore(join(dir, 'images')));
    const results: { notReadyMs: number; movedMs: number }[] = [];
    for (let i = 0; i < rounds; i++) {
      const result = await round(cluster, i, 1 + (i % 2));
      process.stdout.write(`round ${i + 1}: NotReady after ${(result.notReadyMs / 1000).toFixed(1)} s, VM running elsewhere after ${(result.movedMs / 1000).toFixed(1)} s\n`);
      results.push(result);
    }
    const grace = graceSeconds * 1000;
    const target = grace + 10_000;
    const row = (what: string, values: number[], baseline: number, label: string): string => {
      const med = median(values);
      const max = Math.max(...values);
      return `| ${what} | ${(med / 1000).toFixed(1)} s | ${(max / 1000).toFixed(1)} s | ${label} ${(baseline / 1000).toFixed(0)} s | ${(med / baseline).toFixed(2)} | ${(max / baseline).toFixed(2)} |`;
    };
    process.stdout.write(`\nNode failure, ${rounds} rounds, --node-monitor-grace-period ${graceSeconds}s (fencing timeout ${graceSeconds - Math.min(10, Math.floor(graceSeconds / 3))} s)\n`);
    process.stdout.write('| figure | median | max | baseline | median ratio | max ratio |\n|---|---|---|---|---|---|\n');
    process.stdout.write(`${row('kill → Node NotReady', results.map((r) => r.notReadyMs), grace, 'grace period')}\n`);
    process.stdout.write(`${row('kill → VM Running on another node', results.map((r) => r.movedMs), target, 'target: grace +10 s =')}\n`);
  } finally {
    await cluster.close();
  }
}

await main();
