/**
 * API server benchmark: a real `vireo server` (SQLite, HTTPS) in a child
 * process, driven from this process. Each figure is printed beside a
 * baseline measured in the same run, with the ratio:
 *
 * - creates/s with 16 concurrent clients   vs  raw SQLite inserts/s, one fsync'd transaction each (same durability)
 * - get p50/p99                             vs  GET /healthz on the same server (the HTTPS + auth floor)
 * - list of 10,000 objects                  vs  JSON.parse + JSON.stringify of the same list in-process (the encoding floor)
 * - watch delivery lag p99, 500 watchers    vs  the same with 1 watcher (the cost of fan-out)
 *
 * Targets on a 2-core machine: ≥ 1,500 creates/s, get p99 ≤ 5 ms, watch lag p99 ≤ 50 ms.
 * Run: npm run bench
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { freePort, startServerProcess } from '../src/testing/process.js';
import { configMap, createsPerSecond, latencies, watchLagP99 } from './api-load.js';
import { benchClient, percentile } from './http.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-'));

function rawSqliteInsertsPerSecond(durationMs: number): number {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE kv (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, value BLOB)');
  const insert = db.prepare('INSERT INTO kv (name, value) VALUES (?, ?)');
  const value = configMap('x');
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    insert.run(`/registry/core/configmaps/default/raw-${n}`, value);
    n++;
  }
  const rate = n / ((performance.now() - start) / 1000);
  db.close();
  return rate;
}

function row(name: string, value: string, baselineName: string, baseline: string, ratio: number, target: string): void {
  console.log(`${name.padEnd(34)} ${value.padStart(12)}   ${baselineName.padEnd(40)} ${baseline.padStart(12)}   ratio ${ratio.toFixed(2).padStart(6)}   ${target}`);
}

async function main(): Promise<void> {
  const port = await freePort();
  const server = await startServerProcess({ dataDir: join(dir, 'data'), port });
  const client = benchClient(server.url, server.token, server.caCert);
  try {
    await client.call('POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }));
    await createsPerSecond(client, 'warm', 300, 16);

    const rawRate = rawSqliteInsertsPerSecond(2000);
    const createRate = await createsPerSecond(client, 'c', 4000, 16);

    const getPaths = Array.from({ length: 200 }, (_, i) => `/api/v1/namespaces/bench/configmaps/c-${i}`);
    const gets = await latencies(client, getPaths, 10);
    const health = await latencies(client, Array.from({ length: 200 }, () => '/healthz'), 10);

    await createsPerSecond(client, 'fill', 10_000 - 4300, 16);
    const listTimes: number[] = [];
    let listBody = '';
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      const res = await client.call('GET', '/api/v1/namespaces/bench/configmaps');
      listTimes.push(performance.now() - t);
      listBody = res.body;
    }
    const count = (JSON.parse(listBody) as { items: unknown[] }).items.length;
    const encodeTimes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      JSON.stringify(JSON.parse(listBody));
      encodeTimes.push(performance.now() - t);
    }
    listTimes.sort((a, b) => a - b);
    encodeTimes.sort((a, b) => a - b);

    const lag1 = await watchLagP99(client, 1, 100);
    const lag500 = await watchLagP99(client, 500, 50);

    console.log(`\nVireo API server benchmark (2-core targets: ≥1,500 creates/s, get p99 ≤ 5 ms, watch lag p99 ≤ 50 ms)\n`);
    row('creates/s, 16 clients', createRate.toFixed(0), 'raw SQLite inserts/s (fsync each)', rawRate.toFixed(0), createRate / rawRate, createRate >= 1500 ? 'target met' : 'BELOW TARGET');
    row('get p50 (ms)', percentile(gets, 50).toFixed(2), 'GET /healthz p50 (ms)', percentile(health, 50).toFixed(2), percentile(gets, 50) / percentile(health, 50), '');
    row('get p99 (ms)', percentile(gets, 99).toFixed(2), 'GET /healthz p99 (ms)', percentile(health, 99).toFixed(2), percentile(gets, 99) / percentile(health, 99), percentile(gets, 99) <= 5 ? 'target met' : 'ABOVE TARGET');
    row(`list of ${count} objects (ms, median)`, percentile(listTimes, 50).toFixed(1), 'JSON parse+stringify of it (ms)', percentile(encodeTimes, 50).toFixed(1), percentile(listTimes, 50) / percentile(encodeTimes, 50), '');
    row('watch lag p99, 500 watchers (ms)', lag500.p99.toFixed(2), 'watch lag p99, 1 watcher (ms)', lag1.p99.toFixed(2), lag500.p99 / lag1.p99, lag500.p99 <= 50 ? 'target met' : 'ABOVE TARGET');
    row('watch lag p50, 500 watchers (ms)', lag500.p50.toFixed(2), 'watch lag p50, 1 watcher (ms)', lag1.p50.toFixed(2), lag500.p50 / lag1.p50, `${lag500.delivered} deliveries`);
  } finally {
    client.close();
    server.child.kill('SIGTERM');
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
