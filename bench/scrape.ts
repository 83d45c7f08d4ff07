/**
 * Scrape benchmark (issue 8): the cost of one scrape of a node's metrics
 * with 1, 10 and 100 running VMIs, target ≤ 50 ms at 100.
 *
 * Real VMIs on a real agent: the in-process API server and `NodeAgent` of
 * the agent tests (test/agent/support.ts), and an `AgentEndpoint` on
 * loopback serving it, so a scrape is the real HTTPS `GET /metrics` with
 * the bearer token, as Prometheus makes it. Each VMI is a real QEMU (TCG)
 * with a disk (the blank image: SeaBIOS finds nothing to boot and idles, so
 * 100 of them stay cheap), an `emptyDisk` and a pod-network NIC
 * (masquerade: a sandbox namespace and a tap), 64 MiB, 10m of CPU.
 *
 * Per size: scrapes at a steady interval, as Prometheus makes them
 * (VIREO_BENCH_INTERVAL_MS, default 2000), over HTTPS and through
 * `NodeAgent.metrics()` in process by turns (median, max; the agent asks
 * QEMU ahead of the next scrape by this rhythm), with how current QEMU's
 * answers were (the agent's `lastScrapeReport()`); then a few scrapes back
 * to back, off any rhythm, which ask QEMU at the scrape. The bytes and
 * samples of a response, and the QMP round trips alone. The baseline,
 * measured in the same run half an interval after each scrape (so that it
 * too starts from a process that was asleep): a bare loop doing the same
 * raw /proc reads per guest (status, net/dev, every thread's schedstat)
 * the plain way (open, read, close), with no QMP, no labels and no text:
 * the kernel-side part no scrape avoids, so the ratio says what the rest
 * (formatting, HTTP, the cgroup files) adds. The growth per VMI is also
 * printed ((t100 − t1) / 99).
 *
 * Everything (VMIs, QEMUs, sandboxes, cgroups, server) is removed at the
 * end, also on Ctrl-C. Run: npm run bench:scrape (root: network namespaces
 * and cgroups). VIREO_BENCH_SCRAPES (default 15) scrapes per size;
 * VIREO_BENCH_SIZES (default 1,10,100); VIREO_BENCH_CPU (default 10m) the
 * VMIs' CPU request.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { AgentEndpoint } from '../src/agent/index.js';
import { parseSamples } from '../src/agent/metrics/index.js';
import type { ScrapeReport, ScrapedGuest } from '../src/agent/metrics/index.js';
import { ensureSelfSigned } from '../src/cli/pki.js';
import { resources } from '../src/client/index.js';
import { silentLogger } from '../src/log/logger.js';
import { eventually } from '../src/testing/wait.js';
import { createBound, importBlankImage, phase, qemuPidsUnder, startAgentFixture, vmiManifest } from '../test/agent/support.js';
import type { AgentFixture } from '../test/agent/support.js';

const scrapes = Number(process.env.VIREO_BENCH_SCRAPES ?? '15');
const sizes = (process.env.VIREO_BENCH_SIZES ?? '1,10,100').split(',').map(Number);
/** The VMIs' CPU request: it sets their cgroup's CPU weight, and so how soon a QEMU answers QMP on a busy machine. */
const cpuRequest = process.env.VIREO_BENCH_CPU ?? '10m';
/** Prometheus' scrape interval in the bench (VIREO_BENCH_INTERVAL_MS): the agent asks QEMU ahead of the next scrape by its rhythm. */
const intervalMs = Number(process.env.VIREO_BENCH_INTERVAL_MS ?? '2000');
const batch = 10;
const targetMs = 50;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

const ms = (value: number): string => `${value.toFixed(1)} ms`;

/** One HTTPS GET /metrics with the token; resolves with the body. */
function httpsScrape(port: number, ca: string, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/metrics', ca, servername: 'localhost', checkServerIdentity: () => undefined, headers: { authorization: `Bearer ${token}`, accept: 'text/plain' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`GET /metrics answered ${res.statusCode ?? 0}: ${body.slice(0, 300)}`));
        else resolve(body);
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The baseline: the raw /proc reads of every guest, nothing else. */
function rawReads(pids: readonly number[]): number {
  let bytes = 0;
  for (const pid of pids) {
    try {
      bytes += readFileSync(`/proc/${pid}/status`, 'utf8').length;
      bytes += readFileSync(`/proc/${pid}/net/dev`, 'utf8').length;
      for (const tid of readdirSync(`/proc/${pid}/task`)) bytes += readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').length;
    } catch {
      // exited meanwhile
    }
  }
  return bytes;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/**
 * The node agent's running guests, as its scrape reads them. The bench
 * reaches into the agent's private runner for this one breakdown only.
 */
function runningGuests(fixture: AgentFixture): Omit<ScrapedGuest, 'migrating'>[] {
  const runner = (fixture.agent as unknown as { runner?: { runningGuests(): Omit<ScrapedGuest, 'migrating'>[] } }).runner;
  if (runner === undefined) throw new Error('the node agent has no runner (not started?)');
  return runner.runningGuests();
}

/** How the agent's last scrape went. */
function lastReport(fixture: AgentFixture): ScrapeReport {
  const report = fixture.agent.lastScrapeReport();
  if (report === undefined) throw new Error('the agent has not scraped yet');
  return report;
}

/** Where one scrape's time goes: the QMP round trips alone (all guests in parallel, then one per guest in turn), against a whole collection in process. */
async function breakdown(fixture: AgentFixture): Promise<{ qmpMs: number; serialQmpMs: number; wholeMs: number }> {
  const guests = runningGuests(fixture);
  const commands = ['query-cpus-fast', 'query-blockstats', 'query-balloon', 'query-memory-size-summary'];
  const qmp = await timed(() => Promise.all(guests.map((g) => Promise.all(commands.map((c) => g.machine.execute(c as 'query-balloon'))))));
  const serial = await timed(async () => { for (const g of guests) await g.machine.execute('query-balloon'); });
  const whole = await timed(() => fixture.agent.metrics());
  return { qmpMs: qmp.ms, serialQmpMs: serial.ms, wholeMs: whole.ms };
}

/** CPU seconds (user + system) of `pids` from /proc/<pid>/stat. */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // exited meanwhile
    }
  }
  return ticks / 100;
}

function rssMiB(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kib / 1024;
}

async function startVmis(fixture: AgentFixture, from: number, to: number): Promise<void> {
  for (let first = from; first < to; first += batch) {
    const names = Array.from({ length: Math.min(batch, to - first) }, (_, i) => `scrape-${first + i}`);
    await Promise.all(names.map((name) => {
      const manifest = vmiManifest(name, { volumes: [{ name: 'scratch', emptyDisk: { capacity: '16Mi' } }], disks: [{ name: 'scratch', disk: { bus: 'virtio' } }], spec: { networks: [{ name: 'default', pod: {} }] } });
      manifest.metadata.labels = { 'app.kubernetes.io/name': 'scrape-bench', index: name };
      const spec = manifest.spec as { domain: { resources: Record<string, unknown>; devices: Record<string, unknown> } };
      spec.domain.resources = { requests: { cpu: cpuRequest, memory: '64Mi' } };
      spec.domain.devices.interfaces = [{ name: 'default', masquerade: {} }];
      return createBound(fixture, manifest);
    }));
    await eventually(async () => {
      const list = await fixture.client.list(resources.virtualMachineInstances, { namespace: 'default' });
      const running = list.items.filter((v) => phase(v) === 'Running').length;
      const failed = list.items.find((v) => phase(v) === 'Failed');
      if (failed !== undefined) throw new Error(`VMI ${failed.metadata.name ?? ''} failed: ${JSON.stringify(failed.status)}`);
      return running >= first + names.length || undefined;
    }, { what: `${first + names.length} VMIs to run`, timeoutMs: 180_000, intervalMs: 250 });
  }
}

async function main(): Promise<void> {
  const fixture = await startAgentFixture();
  let endpoint: AgentEndpoint | undefined;
  let closing: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    closing ??= (async () => {
      await endpoint?.close();
      await fixture.close();
    })();
    return closing;
  };
  process.on('SIGINT', () => { void cleanup().finally(() => process.exit(130)); });
  process.on('SIGTERM', () => { void cleanup().finally(() => process.exit(143)); });
  try {
    await importBlankImage(fixture.images);
    const tls = await ensureSelfSigned(join(fixture.dataDir, '..'), 'agent', fixture.nodeName);
    endpoint = new AgentEndpoint({ token: fixture.server.token, tls, logger: silentLogger });
    const { port } = await endpoint.listen('127.0.0.1', 0);
    endpoint.serve(fixture.agent);
    const scrapeOverHttps = (): Promise<string> => httpsScrape(port, tls.cert, fixture.server.token);

    console.log(`Scrape benchmark: one node's GET /metrics over HTTPS (${scrapes} scrapes per size every ${intervalMs} ms, as Prometheus scrapes; median / max), target ≤ ${targetMs} ms at 100 VMIs`);
    console.log(`VMIs: real TCG QEMUs idling in SeaBIOS (blank disk + 16 MiB emptyDisk, masquerade pod NIC), 64 MiB, ${cpuRequest} CPU requested (VIREO_BENCH_CPU)`);
    console.log('baseline: the same raw /proc reads per guest (status, net/dev, every thread\'s schedstat) in a bare loop; no QMP, labels or text\n');
    const rows: { n: number; https: number; inProcess: number; baseline: number }[] = [];
    let started = 0;
    for (const n of sizes) {
      const startAt = performance.now();
      await startVmis(fixture, started, n);
      started = n;
      const pids = qemuPidsUnder(fixture.dataDir);
      // Let the start settle (SeaBIOS reaching its idle loop), then judge how cheap the guests are.
      await new Promise((r) => setTimeout(r, 2000));
      const cpuBefore = cpuSeconds(pids);
      const idleStart = performance.now();
      await new Promise((r) => setTimeout(r, 2000));
      const idleCpu = (cpuSeconds(pids) - cpuBefore) / ((performance.now() - idleStart) / 1000);
      const startedIn = (performance.now() - startAt) / 1000;

      await scrapeOverHttps(); // warm: the TLS session, the agent's QMP connections
      const https: number[] = [];
      const inProcess: number[] = [];
      const baseline: number[] = [];
      const reports: ScrapeReport[] = [];
      let body = '';
      // Prometheus' rhythm: one scrape per interval, over HTTPS and in process by turns; the baseline's
      // reads half an interval later, so that they too start from a process that was asleep.
      let tick = performance.now();
      const sleepUntil = async (at: number): Promise<void> => {
        await new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));
      };
      for (let i = 0; i < 2 * scrapes; i++) {
        tick += intervalMs;
        await sleepUntil(tick);
        if (i % 2 === 0) {
          const overHttps = await timed(scrapeOverHttps);
          https.push(overHttps.ms);
          body = overHttps.value;
        } else {
          inProcess.push((await timed(() => fixture.agent.metrics())).ms);
        }
        reports.push(lastReport(fixture));
        await sleepUntil(tick + intervalMs / 2);
        baseline.push((await timed(() => rawReads(pids))).ms);
      }
      // Off the rhythm: scrapes back to back, each asking QEMU and waiting for it (at most 25 ms).
      const backToBack: number[] = [];
      for (let i = 0; i < 5; i++) backToBack.push((await timed(scrapeOverHttps)).ms);
      const samples = parseSamples(body);
      const names = new Set(samples.map((s) => s.labels.name));
      if (names.size !== n) throw new Error(`the scrape covers ${names.size} VMIs, ${n} are running`);
      const row = { n, https: median(https), inProcess: median(inProcess), baseline: median(baseline) };
      rows.push(row);
      console.log(`N=${String(n).padStart(3)}: HTTPS ${ms(row.https)} (max ${ms(Math.max(...https))}), in process ${ms(row.inProcess)} (max ${ms(Math.max(...inProcess))}), baseline ${ms(row.baseline)} → ratio ${(row.https / Math.max(row.baseline, 0.001)).toFixed(1)}×`);
      const askedAtScrape = reports.reduce((sum, r) => sum + r.asked, 0);
      console.log(`       QMP answers: current at ${reports.filter((r) => r.asked === 0).length} of ${reports.length} scrapes (${askedAtScrape} guest askings at a scrape, ${reports.reduce((sum, r) => sum + r.late, 0)} late), waited for QEMU: median ${ms(median(reports.map((r) => r.waitedMs)))}; answers served at most ${ms(Math.max(...reports.map((r) => r.oldestAnswerMs)))} old`);
      console.log(`       back to back (no rhythm: each scrape asks every guest and waits up to 25 ms): HTTPS ${ms(median(backToBack))} (max ${ms(Math.max(...backToBack))})`);
      const parts = await breakdown(fixture);
      console.log(`       where the time goes (one scrape): QMP alone ${ms(parts.qmpMs)} (4 commands × ${n} guests in parallel; one command per guest in turn: ${ms(parts.serialQmpMs)}); a whole collection in process: ${ms(parts.wholeMs)}`);
      console.log(`       ${(Buffer.byteLength(body) / 1024).toFixed(1)} KiB, ${samples.length} samples; ${pids.length} QEMUs: ${rssMiB(pids).toFixed(0)} MiB resident, ${(idleCpu * 100).toFixed(0)}% of a core idle; agent process ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB; started in ${startedIn.toFixed(0)} s`);
    }
    const first = rows[0];
    const last = rows[rows.length - 1];
    if (first !== undefined && last !== undefined && last.n > first.n) {
      console.log(`\ngrowth per VMI (N=${first.n} → ${last.n}): HTTPS ${ms((last.https - first.https) / (last.n - first.n))}, in process ${ms((last.inProcess - first.inProcess) / (last.n - first.n))}, baseline ${ms((last.baseline - first.baseline) / (last.n - first.n))}`);
      if (last.n >= 100) console.log(`target ≤ ${targetMs} ms at ${last.n} VMIs: ${last.https <= targetMs ? 'met' : 'MISSED'} (${ms(last.https)})`);
    }
  } finally {
    await cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exitCode = 1;
});
