/**
 * Store backends side by side: the same real `vireo server` (HTTPS, child
 * process) on SQLite and on etcd (Debian's etcd, one member on loopback,
 * fsync on), driven the same way in one run. Prints each figure for both
 * and the ratio etcd / SQLite:
 *
 * - API creates/s with 16 concurrent clients
 * - watch delivery lag p50/p99 with 1 and with 100 watchers
 * - raw store writes/s (one create after another, in process), the floor under the API figure
 *
 * Run: npm run bench:store
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdProcess } from '../src/store/etcd-process.js';
import { EtcdStore } from '../src/store/etcd.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/types.js';
import { freePort, startServerProcess } from '../src/testing/process.js';
import { createsPerSecond, watchLagP99 } from './api-load.js';
import { benchClient } from './http.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-store-'));

interface Figures {
  createsPerSecond: number;
  lag1: { p50: number; p99: number };
  lag100: { p50: number; p99: number };
  rawWritesPerSecond: number;
}

/** Serial creates straight on the store, for `durationMs`. */
async function rawWritesPerSecond(store: Store, durationMs: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  while (performance.now() - start < durationMs) {
    await store.create(`/bench/raw-${n}`, 'value'.repeat(40));
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

async function measureServer(name: string, store: string | undefined): Promise<Omit<Figures, 'rawWritesPerSecond'>> {
  const server = await startServerProcess({ dataDir: join(dir, name), port: await freePort(), ...(store === undefined ? {} : { store }) });
  const client = benchClient(server.url, server.token, server.caCert);
  try {
    await client.call('POST', '/api/v1/namespaces', JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'bench' } }));
    await createsPerSecond(client, 'warm', 200, 16);
    const creates = await createsPerSecond(client, 'c', 2000, 16);
    const lag1 = await watchLagP99(client, 1, 100);
    const lag100 = await watchLagP99(client, 100, 50);
    return { createsPerSecond: creates, lag1, lag100 };
  } finally {
    client.close();
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

function row(name: string, sqlite: number, etcd: number, digits: number): void {
  console.log(`${name.padEnd(34)} ${sqlite.toFixed(digits).padStart(10)} ${etcd.toFixed(digits).padStart(10)}   ratio ${(etcd / sqlite).toFixed(2).padStart(6)}`);
}

async function main(): Promise<void> {
  const etcd = await EtcdProcess.start();
  try {
    const sqliteStore = new SqliteStore({ path: join(dir, 'raw.db') });
    const sqliteRaw = await rawWritesPerSecond(sqliteStore, 2000);
    await sqliteStore.close();
    const etcdStore = await EtcdStore.open({ endpoints: [etcd.endpoint], prefix: '/raw/' });
    const etcdRaw = await rawWritesPerSecond(etcdStore, 2000);
    await etcdStore.close();

    const sqlite = await measureServer('sqlite', undefined);
    const onEtcd = await measureServer('etcd', etcd.storeUrl);

    console.log(`\nVireo store benchmark: the same server on SQLite and on etcd (one member, loopback, fsync on)\n`);
    console.log(`${''.padEnd(34)} ${'SQLite'.padStart(10)} ${'etcd'.padStart(10)}   (ratio = etcd / SQLite)`);
    row('API creates/s, 16 clients', sqlite.createsPerSecond, onEtcd.createsPerSecond, 0);
    row('watch lag p50, 1 watcher (ms)', sqlite.lag1.p50, onEtcd.lag1.p50, 2);
    row('watch lag p99, 1 watcher (ms)', sqlite.lag1.p99, onEtcd.lag1.p99, 2);
    row('watch lag p50, 100 watchers (ms)', sqlite.lag100.p50, onEtcd.lag100.p50, 2);
    row('watch lag p99, 100 watchers (ms)', sqlite.lag100.p99, onEtcd.lag100.p99, 2);
    row('raw store creates/s, serial', sqliteRaw, etcdRaw, 0);
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
