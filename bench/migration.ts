/**
 * Live migration benchmark: Vireo against plain QEMU on the same lab hosts
 * (test/cluster/support.ts: a `vireo server` in host-0, agents in host-1
 * and host-2). A 256 MiB test guest (containerDisk and a 16 MiB emptyDisk,
 * no NIC) moves host-1 ⇄ host-2, first idle, then with a loop in the guest
 * rewriting 32 MiB of random data in a tmpfs over and over:
 *
 * (a) Vireo: a VirtualMachineInstanceMigration created through the API,
 *     timed from the create to `Succeeded` (the guest runs on the target);
 *     downtime is QEMU's (`query-migrate`), from the migration's
 *     `vireo.io/migration-downtime-ms` annotation.
 * (b) plain QEMU (bench/migration-plain.ts): the same QEMU command line
 *     (copied from the one Vireo started) in the same two hosts, the same
 *     NBD exports, mirrors, capabilities and parameters, driven with QMP;
 *     timed from the decision, before the target QEMU starts, to `cont`
 *     on the target.
 *
 * The two take turns, round by round, so that both see the same load from
 * the rest of the machine; the guest that is not moving is paused
 * meanwhile. Each figure is printed beside its baseline with the ratio; the targets
 * are a total-time ratio ≤ 1.10 and a downtime ≤ 300 ms.
 * Run: npm run bench:migration (root: network namespaces;
 * VIREO_BENCH_ROUNDS, migrations per load and side, default 3;
 * VIREO_BENCH_PHASES=1 prints when each phase was first seen;
 * VIREO_BENCH_LOG_DIR=DIR keeps the server's and agents' info logs there).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WebSocket } from 'ws';
import type { KObject } from '../src/api/object.js';
import { recordAt, stringAt } from '../src/api/kinds/read.js';
import { bandwidthBytesPerSecondOf, parseMigrationConfigurationStatus } from '../src/api/kinds/migration-config.js';
import { ImageStore, TEST_GUEST_READY_MARKER, importTestGuest } from '../src/agent/images/index.js';
import { resources } from '../src/client/index.js';
import { dialStream } from '../src/console/index.js';
import type { LabHost } from '../src/testing/hosts-lab.js';
import { eventually } from '../src/testing/wait.js';
import { qemuPidsUnder } from '../test/agent/support.js';
import { moverVmi } from '../test/cluster/migration-support.js';
import { startLabCluster } from '../test/cluster/support.js';
import type { LabCluster } from '../test/cluster/support.js';
import { SerialConsole, migratePlain, startPlainGuest, stopPlainGuest, templateOf } from './migration-plain.js';
import type { PlainGuest, PlainResult, PlainSettings, QemuTemplate } from './migration-plain.js';

const rounds = Number(process.env.VIREO_BENCH_ROUNDS ?? '3');
const labLabel = 'vireo.io/migration-bench';
const bootMs = 300_000;
const name = 'bench-mover';

type Load = 'idle' | 'dirtying';

/** Each load's figures, Vireo's and the baseline's. */
type Figures = Record<Load, { vireo: PlainResult[]; plain: PlainResult[] }>;

/** Rewrites 32 MiB of random data in a tmpfs in a loop; prints `dirty-on` once it runs (the typed line does not contain it). */
const dirtyLoop = 'mkdir -p /run/dirty; mount -t tmpfs -o size=80m tmpfs /run/dirty; dd if=/dev/urandom of=/run/dirty/src bs=1M count=32 2>/dev/null; (while true; do dd if=/run/dirty/src of=/run/dirty/dst bs=1M conv=notrunc 2>/dev/null; done) & echo dirty-$(echo on)';

function benchVmi(): KObject {
  return moverVmi(name, { memory: '256Mi', label: labLabel });
}

/** Types `line` into the VMI's console (through the API server, wherever it runs) and waits for `expect` in what follows. */
async function typeIntoVmi(cluster: LabCluster, line: string | undefined, expect: string): Promise<void> {
  const ws: WebSocket = await dialStream({ server: cluster.server.url, token: cluster.server.token, caCert: cluster.server.caCert, path: `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/${name}/console` });
  try {
    let text = '';
    ws.on('message', (data: Buffer) => { text += data.toString('utf8'); });
    if (line === undefined) {
      const log = await cluster.client.raw('GET', `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/${name}/consolelog`);
      text += log.status === 200 ? log.body : '';
    } else {
      ws.send(Buffer.from(`${line}\r`), { binary: true });
    }
    await eventually(() => text.includes(expect), { what: `"${expect}" on ${name}'s console`, timeoutMs: bootMs, intervalMs: 100 });
  } finally {
    ws.terminate();
  }
}

/** One Vireo migration of the VMI to `to`: ms from the create to Succeeded, QEMU's downtime, and the settings it ran with (for the baseline to use). */
async function migrateVireo(cluster: LabCluster, index: number, to: LabHost): Promise<{ result: PlainResult; settings: PlainSettings }> {
  const { client } = cluster;
  const migrationName = `bench-${index}`;
  const started = performance.now();
  await client.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: migrationName, namespace: 'default' }, spec: { vmiName: name } });
  const seen: string[] = [];
  const done = await eventually(async () => {
    const m = await client.get(resources.virtualMachineInstanceMigrations, 'default', migrationName);
    const phase = stringAt(m, 'status', 'phase') ?? '';
    if (!seen.some((s) => s.startsWith(`${phase} `))) seen.push(`${phase} ${(performance.now() - started).toFixed(0)}`);
    return phase === 'Succeeded' || phase === 'Failed' ? m : undefined;
  }, { what: `migration ${migrationName} to end`, timeoutMs: 300_000, intervalMs: 10 });
  const totalMs = performance.now() - started;
  if (process.env.VIREO_BENCH_PHASES === '1') process.stdout.write(`  phases first seen (ms after the create): ${seen.join(', ')}\n`);
  if (stringAt(done, 'status', 'phase') !== 'Succeeded') throw new Error(`migration ${migrationName} failed: ${JSON.stringify(done.status)}`);
  // The next move starts from the target: its agent holds the guest and reports it.
  const vmi = await eventually(async () => {
    const found = await client.get(resources.virtualMachineInstances, 'default', name);
    return stringAt(found, 'status', 'nodeName') === to.name && stringAt(found, 'status', 'phase') === 'Running' ? found : undefined;
  }, { what: `${name} running on ${to.name}`, timeoutMs: 60_000, intervalMs: 50 });
  await client.delete(resources.virtualMachineInstanceMigrations, 'default', migrationName);
  const config = parseMigrationConfigurationStatus(recordAt(vmi, 'status', 'migrationState', 'migrationConfiguration'));
  const settings = { autoConverge: config.allowAutoConverge, postCopy: config.allowPostCopy, bandwidthBytesPerSecond: bandwidthBytesPerSecondOf(config) };
  return { result: { totalMs, downtimeMs: Number(done.metadata.annotations?.['vireo.io/migration-downtime-ms'] ?? Number.NaN) }, settings };
}

/** Starts the VMI on host-1 and waits for its guest; the command line of its QEMU, the template of the baseline's. */
async function startVireoGuest(cluster: LabCluster, hosts: readonly [LabHost, LabHost]): Promise<QemuTemplate> {
  const { client } = cluster;
  const [host1, host2] = hosts;
  await client.patch(resources.nodes, undefined, host1.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } } });
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { metadata: { labels: { [labLabel]: 'yes' } }, spec: { unschedulable: true } });
  await client.create(resources.virtualMachineInstances, benchVmi());
  const vmi = await eventually(async () => {
    const found = await client.tryGet(resources.virtualMachineInstances, 'default', name);
    if (stringAt(found, 'status', 'phase') === 'Failed') throw new Error(`VMI ${name} failed: ${JSON.stringify(found?.status)}`);
    return stringAt(found, 'status', 'phase') === 'Running' ? found : undefined;
  }, { what: `${name} running`, timeoutMs: bootMs, intervalMs: 200 });
  await client.patch(resources.nodes, undefined, host2.name, 'merge', { spec: { unschedulable: false } });
  await typeIntoVmi(cluster, undefined, TEST_GUEST_READY_MARKER);
  const [pid] = qemuPidsUnder(join(cluster.root, host1.name));
  if (pid === undefined) throw new Error(`no QEMU of ${name} (${vmi.metadata.uid ?? ''}) on ${host1.name}`);
  return templateOf(pid, join(cluster.root, 'plain-template'));
}

/** Pauses or resumes the VMI through the API (its guest must not load the machine while the baseline runs) and waits until it is so. */
async function setVmiPaused(cluster: LabCluster, paused: boolean): Promise<void> {
  const isPaused = async (): Promise<boolean> => {
    const vmi = await cluster.client.get(resources.virtualMachineInstances, 'default', name);
    return ((recordAt(vmi, 'status')?.conditions ?? []) as { type?: string; status?: string }[]).some((c) => c.type === 'Paused' && c.status === 'True');
  };
  if ((await isPaused()) === paused) return;
  const path = `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/${name}/${paused ? 'pause' : 'unpause'}`;
  const answer = await cluster.client.raw('PUT', path, {});
  if (answer.status >= 300) throw new Error(`PUT ${path}: ${answer.status} ${answer.body}`);
  await eventually(async () => (await isPaused()) === paused || undefined, { what: `${name} ${paused ? 'paused' : 'running'}`, timeoutMs: 30_000, intervalMs: 50 });
}

/** Types `command` into the plain guest's console and waits for `expect`. */
async function typeIntoPlain(guest: PlainGuest, command: string, expect: string): Promise<void> {
  const console = await SerialConsole.open(guest);
  try {
    if (command !== '') console.type(command);
    await eventually(() => console.output().includes(expect), { what: `"${expect}" on the plain guest's console`, timeoutMs: 120_000, intervalMs: 100 });
  } finally {
    console.close();
  }
}

/**
 * The rounds, Vireo's and the baseline's taking turns so that both see the
 * same load from the rest of the machine; the guest that is not moving is
 * paused meanwhile.
 */
async function interleavedRounds(cluster: LabCluster, figures: Figures, hosts: readonly [LabHost, LabHost]): Promise<void> {
  const template = await startVireoGuest(cluster, hosts);
  await setVmiPaused(cluster, true);
  const root = join(cluster.root, 'plain');
  const started = await startPlainGuest(cluster.lab, hosts[0], template, join(root, 'g0'));
  let guest: PlainGuest = started.guest;
  try {
    await eventually(() => started.console.output().includes(TEST_GUEST_READY_MARKER), { what: 'the plain guest to be ready', timeoutMs: bootMs, intervalMs: 100 });
    started.console.close();
    let index = 0;
    for (const load of ['idle', 'dirtying'] as const) {
      if (load === 'dirtying') {
        // Paused since the last round.
        await guest.qmp.execute('cont');
        await typeIntoPlain(guest, dirtyLoop, 'dirty-on');
      }
      await guest.qmp.execute('stop');
      await setVmiPaused(cluster, false);
      if (load === 'dirtying') await typeIntoVmi(cluster, dirtyLoop, 'dirty-on');
      for (let i = 0; i < rounds; i++) {
        const to = index % 2 === 0 ? hosts[1] : hosts[0];
        index++;
        const { result: vireo, settings } = await migrateVireo(cluster, index, to);
        figures[load].vireo.push(vireo);
        await setVmiPaused(cluster, true);
        await guest.qmp.execute('cont');
        const moved = await migratePlain(cluster.lab, guest, { template, targetHost: to, dir: join(root, `g${index}`), ports: { migration: 21_000 + index * 2, nbd: 21_001 + index * 2 }, settings, printSettings: process.env.VIREO_BENCH_PHASES === '1' });
        guest = moved.guest;
        figures[load].plain.push(moved.result);
        process.stdout.write(`${load} round ${i + 1}: Vireo total ${vireo.totalMs.toFixed(0)} ms, downtime ${vireo.downtimeMs} ms; plain QEMU total ${moved.result.totalMs.toFixed(0)} ms, downtime ${moved.result.downtimeMs} ms\n`);
        await guest.qmp.execute('stop');
        await setVmiPaused(cluster, false);
      }
    }
  } finally {
    await stopPlainGuest(guest);
  }
  await cluster.client.delete(resources.virtualMachineInstances, 'default', name);
  await eventually(async () => (await cluster.client.tryGet(resources.virtualMachineInstances, 'default', name)) === undefined || undefined, { what: `${name} gone`, timeoutMs: 60_000 });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

function report(figures: Figures): void {
  process.stdout.write(`\nLive migration, 256 MiB guest (containerDisk + 16 MiB emptyDisk), TCG, ${rounds} rounds per row; targets: total ratio ≤ 1.10, downtime ≤ 300 ms\n`);
  process.stdout.write('| load | figure | Vireo median | Vireo max | plain QEMU median | plain QEMU max | median ratio | max ratio |\n|---|---|---|---|---|---|---|---|\n');
  for (const load of ['idle', 'dirtying'] as const) {
    for (const figure of ['totalMs', 'downtimeMs'] as const) {
      const v = figures[load].vireo.map((r) => r[figure]);
      const p = figures[load].plain.map((r) => r[figure]);
      const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : '–');
      process.stdout.write(`| ${load} | ${figure === 'totalMs' ? 'total' : 'downtime'} | ${median(v).toFixed(0)} ms | ${Math.max(...v).toFixed(0)} ms | ${median(p).toFixed(0)} ms | ${Math.max(...p).toFixed(0)} ms | ${ratio(median(v), median(p))} | ${ratio(Math.max(...v), Math.max(...p))} |\n`);
    }
  }
}

async function main(): Promise<void> {
  const logs = process.env.VIREO_BENCH_LOG_DIR === undefined ? undefined : { agentArgs: ['--log-level', 'info'], serverArgs: ['--log-level', 'info'] };
  const cluster = await startLabCluster({ hosts: 3, ...logs });
  try {
    const [, host1, host2] = cluster.lab.hosts;
    if (host1 === undefined || host2 === undefined) throw new Error('the lab has no host-1 and host-2');
    await Promise.all(cluster.agents.map((agent) => importTestGuest(new ImageStore(join(agent.dataDir, 'images')))));
    await cluster.client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
    await cluster.client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } }).catch(() => undefined);
    const figures: Figures = { idle: { vireo: [], plain: [] }, dirtying: { vireo: [], plain: [] } };
    await interleavedRounds(cluster, figures, [host1, host2]);
    report(figures);
  } finally {
    const logDir = process.env.VIREO_BENCH_LOG_DIR;
    if (logDir !== undefined) {
      for (const agent of cluster.agents) writeFileSync(join(logDir, `${agent.host.name}.log`), agent.process.output());
      writeFileSync(join(logDir, 'server.log'), cluster.server.output());
    }
    await cluster.close();
  }
}

await main();
