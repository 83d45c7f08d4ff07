/**
 * VM benchmark: a real `vireo server` (API server, controllers, scheduler
 * and node agent in one child process) running real QEMU guests of the
 * test guest, driven from this process. Printed side by side, with ratios:
 *
 * 1. one VM, create request → first `cloud-init:` line on its serial console,
 *    vs the same guest run by a bare `qemu-system-x86_64` with the command line
 *    the agent used (differences: see vm-bare.ts), medians of alternating runs;
 * 2. KubeVirt's scale recipe: N VMIs created 100 ms apart, request sent →
 *    watch event with phase Running, P50 and P95, beside KubeVirt's CI figures;
 * 3. the server's RSS growth per running VM (agent included: same process),
 *    beside KubeVirt's per-VM launcher overhead.
 *
 * Targets: (1) ratio ≤ 1.10; (2) P50 ≤ 1 s, P95 ≤ 2 s; (3) ≤ 2 MiB per VM.
 * Run: npm run bench:vm (VIREO_BENCH_VMIS=N for a quicker run, default 100;
 * VIREO_BENCH_BOOT_ROUNDS for more boot rounds, default 3).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageStore, importTestGuest } from '../src/agent/images/index.js';
import { freePort, startServerProcess } from '../src/testing/process.js';
import type { ServerProcess } from '../src/testing/process.js';
import { benchClient, percentile } from './http.js';
import type { BenchClient } from './http.js';
import { prepareBare, readAgentQemu, timeBareBoot } from './vm-bare.js';
import type { BareCommand } from './vm-bare.js';
import { benchNamespace, createNamespace, createVmi, deleteAllVmis, firstCloudInitInFile, guestVmi, listVmis, serialLogOf, watchEvent, watchVmisPath } from './vm-guest.js';
import { cpuSeconds, inspectorUrl, isAlive, median, qemuPidsUnder, rssBytes, settledRss, sleep, waitUntil } from './vm-proc.js';

const vmiCount = parseCount(process.env.VIREO_BENCH_VMIS, 100);
const bootRounds = parseCount(process.env.VIREO_BENCH_BOOT_ROUNDS, 3);
const createIntervalMs = 100;
/** The serial log is polled this often: the Vireo side's time is late by at most this much. */
const pollMs = 5;
/** The demo VM's memory, for the single-VM boot. */
const bootMemory = '128Mi';
/** The smallest memory the test guest boots with from its disk (88Mi runs out of memory in the initramfs). */
const scaleMemory = '96Mi';
/**
 * Without a request each 1-vCPU VMI reserves 100m (KubeVirt's
 * cpuAllocationRatio 10), so only 20 would fit on a 2-CPU node.
 */
const scaleCpuRequest = '10m';

// KubeVirt's figures, as issue 3 states them (constants, not measured here).
const kubevirtP50Seconds = 18;
const kubevirtP95Seconds = 28;
const kubevirtPerVmMiB = 240;

const mib = 1024 * 1024;
const cpus = availableParallelism();
const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-vm-'));
const dataDir = join(dir, 'data');

function parseCount(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`expected a positive integer, not ${JSON.stringify(value)}`);
  return n;
}

/** The VMI directory of `uid` on the node. */
function vmiDirOf(uid: string): string {
  return join(dataDir, 'agent', 'vmis', uid);
}

/** Deletes one VMI and waits until it and its QEMU are gone. */
async function deleteVmi(client: BenchClient, name: string, qemuPid: number | undefined): Promise<void> {
  const res = await client.call('DELETE', `/apis/kubevirt.io/v1/namespaces/${benchNamespace}/virtualmachineinstances/${name}`);
  if (res.status !== 200 && res.status !== 202) throw new Error(`delete VMI ${name}: ${res.status} ${res.body}`);
  await waitUntil(async () => (await client.call('GET', `/apis/kubevirt.io/v1/namespaces/${benchNamespace}/virtualmachineinstances/${name}`)).status === 404, {
    what: `VMI ${name} to be deleted`,
    timeoutMs: 60_000,
  });
  if (qemuPid !== undefined) await waitUntil(() => !isAlive(qemuPid), { what: `QEMU ${qemuPid} to exit`, timeoutMs: 30_000 });
}

/**
 * Creates a VM and resolves with the milliseconds from the create request
 * to its first cloud-init line; when `bareDir` is given, also prepares the
 * bare run of its QEMU command line there. The VMI is deleted after.
 */
async function vireoBoot(client: BenchClient, name: string, bareDir?: string): Promise<{ ms: number; spawnMs: number; accel: string; bare?: BareCommand }> {
  const startWall = Date.now();
  const start = performance.now();
  const vmi = await createVmi(client, guestVmi(name, { memory: bootMemory }));
  const seen = await firstCloudInitInFile(serialLogOf(dataDir, vmi.uid), { intervalMs: pollMs, timeoutMs: 120_000 });
  const qemu = readAgentQemu(vmiDirOf(vmi.uid));
  const bare = bareDir === undefined ? undefined : await prepareBare(qemu, bareDir);
  const record = readVmiRecord(vmiDirOf(vmi.uid));
  await deleteVmi(client, name, qemu.pid);
  return { ms: seen - start, spawnMs: record.startedAt - startWall, accel: record.accel, ...(bare === undefined ? {} : { bare }) };
}

/** When the agent spawned the VMI's QEMU (epoch ms), or undefined when its record cannot be read. */
function trySpawnedAt(vmiDir: string): number | undefined {
  try {
    return readVmiRecord(vmiDir).startedAt;
  } catch {
    return undefined;
  }
}

/**
 * From the record the agent writes next to a QEMU: when it spawned it
 * (epoch ms; `startedAt` is written just before the spawn) and under which
 * accelerator.
 */
function readVmiRecord(vmiDir: string): { startedAt: number; accel: string } {
  const record: unknown = JSON.parse(readFileSync(join(vmiDir, 'vmi.json'), 'utf8'));
  const field = (key: string): unknown => (typeof record === 'object' && record !== null && key in record ? (record as Record<string, unknown>)[key] : undefined);
  const startedAt = field('startedAt');
  const accel = field('accel');
  if (typeof startedAt !== 'string' || typeof accel !== 'string') throw new Error(`${vmiDir}/vmi.json has no startedAt or accel`);
  return { startedAt: Date.parse(startedAt), accel };
}

interface ScaleResult {
  /** Request sent → Running, ms, sorted. */
  latencies: number[];
  /** Request sent → first watch event with phase Scheduled (node bound), ms, sorted. */
  scheduled: number[];
  /** Request sent → the agent spawned QEMU (its record's `startedAt`), ms, sorted. */
  spawned: number[];
  failed: Set<string>;
  createSpanMs: number;
}

/** KubeVirt's recipe: `count` VMIs created `createIntervalMs` apart; each one's time to a watch event with phase Running. */
async function scaleRecipe(client: BenchClient, count: number): Promise<ScaleResult> {
  const { resourceVersion } = await listVmis(client);
  const sentAt = new Map<string, { mono: number; wall: number }>();
  const running = new Map<string, number>();
  const scheduled = new Map<string, number>();
  const spawned = new Map<string, number>();
  const failed = new Set<string>();
  const watch = client.stream(watchVmisPath(resourceVersion), (line) => {
    const event = watchEvent(line);
    if (event === undefined) return;
    const { name, uid, phase } = event.vmi;
    const sent = sentAt.get(name);
    if (sent === undefined || running.has(name)) return;
    const elapsed = performance.now() - sent.mono;
    if (phase === 'Scheduled' && !scheduled.has(name)) scheduled.set(name, elapsed);
    if (phase === 'Running') {
      running.set(name, elapsed);
      const at = trySpawnedAt(vmiDirOf(uid));
      if (at !== undefined) spawned.set(name, at - sent.wall);
    } else if (phase === 'Failed') failed.add(name);
  });
  await watch.ready;
  const creates: Promise<unknown>[] = [];
  const start = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const wait = start + i * createIntervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      const name = `scale-${i}`;
      sentAt.set(name, { mono: performance.now(), wall: Date.now() });
      creates.push(createVmi(client, guestVmi(name, { memory: scaleMemory, cpuRequest: scaleCpuRequest, labels: { run: 'scale' } })));
    }
    const createSpanMs = performance.now() - start;
    await Promise.all(creates);
    await waitUntil(() => running.size + failed.size >= count, { what: `${count} VMIs to reach Running`, timeoutMs: 600_000, intervalMs: 100 });
    const sorted = (m: Map<string, number>): number[] => [...m.values()].sort((a, b) => a - b);
    return { latencies: sorted(running), scheduled: sorted(scheduled), spawned: sorted(spawned), failed, createSpanMs };
  } finally {
    watch.close();
  }
}

/** Total and per-process RSS of the QEMUs under the data dir. */
function qemuRss(): { total: number; count: number } {
  const pids = qemuPidsUnder(dataDir);
  return { total: pids.reduce((sum, pid) => sum + (rssBytes(pid) ?? 0), 0), count: pids.length };
}

function row(name: string, value: string, baselineName: string, baseline: string, ratio: number, target: string): void {
  console.log(`${name.padEnd(44)} ${value.padStart(9)}   ${baselineName.padEnd(46)} ${baseline.padStart(9)}   ratio ${ratio.toFixed(3).padStart(7)}   ${target}`);
}

/** Starts the server with its inspector on a loopback port (for a forced GC before RSS readings). */
async function startServer(): Promise<ServerProcess> {
  const previous = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${previous ?? ''} --inspect=127.0.0.1:0`.trim();
  try {
    return await startServerProcess({ dataDir, port: await freePort(), timeoutMs: 60_000 });
  } finally {
    if (previous === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = previous;
  }
}

/** Kills what is left of this run's QEMUs (by pid, only those under this run's temp dir) and waits for them to go. */
async function killLeftoverQemus(): Promise<number> {
  const pids = qemuPidsUnder(dir);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await waitUntil(() => pids.every((pid) => !isAlive(pid)), { what: 'leftover QEMUs to exit', timeoutMs: 10_000 }).catch(() => undefined);
  return pids.length;
}

async function main(): Promise<void> {
  const store = new ImageStore(join(dataDir, 'images'));
  await importTestGuest(store, { onProgress: (line) => { console.error(`  build-guest: ${line}`); } });
  const server = await startServer();
  const serverPid = server.child.pid;
  if (serverPid === undefined) throw new Error('the vireo server has no pid');
  const inspector = inspectorUrl(server.output());
  const client = benchClient(server.url, server.token, server.caCert);
  // Interrupted: nothing of this run may stay behind (the server leaves its guests running by design).
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`${signal}: stopping the server and killing this run's QEMUs`);
    server.child.kill('SIGTERM');
    void Promise.race([server.exited, sleep(10_000)])
      .then(() => killLeftoverQemus())
      .finally(() => {
        rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await createNamespace(client);

    // The agent's first start waits for the KVM probe (~10 s here, then TCG): a throwaway VM takes it.
    console.error('pre-warm: one throwaway VM (takes the KVM probe)…');
    const warm = await vireoBoot(client, 'warm');

    const vireoMs: number[] = [];
    const spawnMs: number[] = [];
    const accels = new Set<string>();
    const bareMs: number[] = [];
    for (let r = 0; r < bootRounds; r++) {
      console.error(`boot round ${r + 1}/${bootRounds}: Vireo, then bare QEMU…`);
      const vireo = await vireoBoot(client, `boot-${r}`, join(dir, `bare-${r}`));
      vireoMs.push(vireo.ms);
      spawnMs.push(vireo.spawnMs);
      accels.add(vireo.accel);
      if (vireo.bare === undefined) throw new Error('no bare command was prepared');
      bareMs.push(await timeBareBoot(vireo.bare, 120_000));
    }

    const rss0 = await settledRss(serverPid, inspector);
    console.error(`scale: ${vmiCount} VMIs, ${createIntervalMs} ms apart…`);
    const cpuBefore = { server: cpuSeconds(serverPid) ?? NaN, bench: process.cpuUsage(), at: performance.now() };
    const scale = await scaleRecipe(client, vmiCount);
    const scaleWallS = (performance.now() - cpuBefore.at) / 1000;
    const serverCpuS = (cpuSeconds(serverPid) ?? NaN) - cpuBefore.server;
    const benchCpu = process.cpuUsage(cpuBefore.bench);
    const benchCpuS = (benchCpu.user + benchCpu.system) / 1e6;
    const runningCount = scale.latencies.length;
    const rssN = await settledRss(serverPid, inspector);
    const qemu = qemuRss();

    console.error(`deleting ${vmiCount} VMIs…`);
    const deleteStart = performance.now();
    await deleteAllVmis(client, 180_000);
    await waitUntil(() => qemuPidsUnder(dataDir).length === 0, { what: 'every QEMU to exit', timeoutMs: 60_000, intervalMs: 100 });
    const deleteMs = performance.now() - deleteStart;

    const vireoBootS = median(vireoMs) / 1000;
    const bareBootS = median(bareMs) / 1000;
    const p50 = percentile(scale.latencies, 50) / 1000;
    const p95 = percentile(scale.latencies, 95) / 1000;
    const perVmMiB = (rssN - rss0) / mib / Math.max(1, runningCount);

    console.log(`\nVireo VM benchmark (${[...accels].join('/').toUpperCase()}, ${cpus} CPUs, N = ${vmiCount}; targets: boot ratio ≤ 1.10, P50 ≤ 1 s, P95 ≤ 2 s, ≤ 2 MiB/VM)\n`);
    row('create → first cloud-init line (s, median)', vireoBootS.toFixed(3), 'bare qemu-system-x86_64, same args (s, median)', bareBootS.toFixed(3), vireoBootS / bareBootS, vireoBootS / bareBootS <= 1.1 ? 'target met' : 'ABOVE TARGET');
    row(`VMI create → Running P50 (s), N=${vmiCount}`, p50.toFixed(3), 'KubeVirt CI P50 (s; issue 3 anchor)', kubevirtP50Seconds.toFixed(0), p50 / kubevirtP50Seconds, p50 <= 1 ? 'target met' : 'ABOVE TARGET');
    row(`VMI create → Running P95 (s), N=${vmiCount}`, p95.toFixed(3), 'KubeVirt CI P95 (s; issue 3 anchor)', kubevirtP95Seconds.toFixed(0), p95 / kubevirtP95Seconds, p95 <= 2 ? 'target met' : 'ABOVE TARGET');
    row('server+agent RSS growth per running VM (MiB)', perVmMiB.toFixed(2), 'KubeVirt launcher overhead per VM (MiB; issue 3)', kubevirtPerVmMiB.toFixed(0), perVmMiB / kubevirtPerVmMiB, perVmMiB <= 2 ? 'target met' : 'ABOVE TARGET');
    console.log('');
    console.log(`  boot runs, alternating (s):    Vireo ${vireoMs.map((ms) => (ms / 1000).toFixed(3)).join(' ')}   bare ${bareMs.map((ms) => (ms / 1000).toFixed(3)).join(' ')}`);
    console.log(`  of which create request → agent spawns QEMU (ms): ${spawnMs.map((ms) => ms.toFixed(0)).join(' ')} (median ${median(spawnMs).toFixed(0)}; from the agent's record, 1 ms clock)`);
    console.log(`  pre-warm VM (excluded; includes the agent's one-time KVM probe): ${(warm.ms / 1000).toFixed(3)} s`);
    console.log(`  Vireo side: serial.log polled every ${pollMs} ms (adds at most ${pollMs} ms); bare side: its serial socket read directly`);
    console.log(`  scale: ${runningCount}/${vmiCount} Running, ${scale.failed.size} Failed; creates spanned ${(scale.createSpanMs / 1000).toFixed(1)} s; max ${(percentile(scale.latencies, 100) / 1000).toFixed(3)} s; ${scaleMemory} guests, cpu request ${scaleCpuRequest}`);
    const p = (sorted: number[]): string => `P50 ${(percentile(sorted, 50) / 1000).toFixed(3)} s, P95 ${(percentile(sorted, 95) / 1000).toFixed(3)} s`;
    console.log(`  scale breakdown from the request: phase Scheduled seen ${p(scale.scheduled)} (${scale.scheduled.length} seen); agent spawned QEMU ${p(scale.spawned)} (${scale.spawned.length} read); Running seen ${p(scale.latencies)}`);
    console.log(`  CPU during the scale step (${scaleWallS.toFixed(1)} s wall, ${cpus} CPUs): server+agent ${serverCpuS.toFixed(1)} s (${((serverCpuS / scaleWallS) * 100).toFixed(0)}% of one CPU), this benchmark process ${benchCpuS.toFixed(1)} s`);
    console.log(`  server RSS: ${(rss0 / mib).toFixed(1)} MiB with 0 VMs, ${(rssN / mib).toFixed(1)} MiB with ${runningCount} running (each after a forced GC${inspector === undefined ? ' — inspector not found, so no GC' : ''}, median of 5 samples)`);
    console.log(`  QEMU RSS (context, not counted): ${(qemu.total / mib / Math.max(1, qemu.count)).toFixed(1)} MiB per VM over ${qemu.count} QEMUs, read right after the server's`);
    console.log(`  delete ${vmiCount} VMIs → no QEMU left: ${(deleteMs / 1000).toFixed(1)} s`);
    console.log(`  anchors are constants from issue 3 (shared/reference/perf-anchors.md §5 lists 27.0/38.6 s P50/P95 for the 2025 CI run and 223 Mi static + per-vCPU/page-table/video overhead per VM)`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    try {
      await deleteAllVmis(client, 120_000);
      await waitUntil(() => qemuPidsUnder(dataDir).length === 0, { what: 'every QEMU to exit', timeoutMs: 60_000, intervalMs: 100 });
    } catch (err) {
      console.error(`cleanup through the API failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    client.close();
    server.child.kill('SIGTERM');
    await server.exited;
    const killed = await killLeftoverQemus();
    if (killed > 0) console.error(`killed ${killed} leftover QEMU process(es)`);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
