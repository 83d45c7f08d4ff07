/**
 * API load the benchmarks share: ConfigMap creates from concurrent clients,
 * GET latencies, and watch delivery lag, against a server in namespace bench.
 */
import { percentile } from './http.js';
import type { BenchClient } from './http.js';

/** A ConfigMap of about 200 bytes, as the benchmarks create. */
export function configMap(name: string): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { bench: 'yes' } }, data: { key: 'value'.repeat(20) } });
}

/** Creates `total` ConfigMaps in namespace bench from `concurrency` clients; returns creates/s. */
export async function createsPerSecond(client: BenchClient, prefix: string, total: number, concurrency: number): Promise<number> {
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const res = await client.call('POST', '/api/v1/namespaces/bench/configmaps', configMap(`${prefix}-${i}`));
        if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.body}`);
      }
    }),
  );
  return total / ((performance.now() - start) / 1000);
}

/** GET latencies (ms, sorted) of `paths`, `rounds` times over. */
export async function latencies(client: BenchClient, paths: string[], rounds: number): Promise<number[]> {
  const out: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const path of paths) {
      const t = performance.now();
      const res = await client.call('GET', path);
      out.push(performance.now() - t);
      if (res.status !== 200) throw new Error(`GET ${path}: ${res.status}`);
    }
  }
  return out.sort((a, b) => a - b);
}

/** Watch delivery lag (ms) with `watchers` watchers over `events` creates, one every 20 ms. */
export async function watchLagP99(client: BenchClient, watchers: number, events: number): Promise<{ p50: number; p99: number; delivered: number }> {
  const resource = `lag${watchers}`;
  const sentAt = new Map<string, number>();
  const lags: number[] = [];
  const streams = [];
  for (let w = 0; w < watchers; w++) {
    const s = client.stream(`/api/v1/namespaces/bench/configmaps?watch=true&resourceVersion=${await currentRv(client)}&labelSelector=run%3D${resource}`, (line) => {
      const name = /"name":"([^"]+)"/.exec(line)?.[1];
      const sent = name === undefined ? undefined : sentAt.get(name);
      if (sent !== undefined) lags.push(performance.now() - sent);
    });
    streams.push(s);
  }
  await Promise.all(streams.map((s) => s.ready));
  for (let i = 0; i < events; i++) {
    const name = `${resource}-${i}`;
    sentAt.set(name, performance.now());
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { run: resource } }, data: { i: String(i) } });
    const res = await client.call('POST', '/api/v1/namespaces/bench/configmaps', body);
    if (res.status !== 201) throw new Error(`create failed: ${res.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const deadline = Date.now() + 10_000;
  while (lags.length < watchers * events && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  for (const s of streams) s.close();
  lags.sort((a, b) => a - b);
  return { p50: percentile(lags, 50), p99: percentile(lags, 99), delivered: lags.length };
}

/** The resourceVersion of a list now. */
export async function currentRv(client: BenchClient): Promise<string> {
  const res = await client.call('GET', '/api/v1/namespaces/bench/configmaps?limit=1');
  return (JSON.parse(res.body) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
}
