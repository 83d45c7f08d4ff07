/**
 * A real Prometheus for tests: Debian's `prometheus` on a free loopback
 * port, its TSDB in a temp dir, the scrape config and rule files the test
 * gives, scraping and evaluating every second. Readiness comes from its
 * `/-/ready` endpoint; `stop()` ends it (SIGTERM, then SIGKILL) and removes
 * its files, so nothing outlives the test.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from './process.js';
import { eventually } from './wait.js';

export interface PrometheusOptions {
  /** `scrape_configs` entries, as Prometheus' YAML has them. */
  scrapeConfigs: readonly Record<string, unknown>[];
  /** Also scrape Prometheus' own `/metrics` as the job `prometheus` (its port is only known once chosen here). */
  scrapeItself?: boolean;
  /** Absolute paths of rule files to load. */
  ruleFiles?: readonly string[];
  /** Scrape and rule evaluation interval (default `1s`). */
  interval?: string;
  /** Files to write next to the config before it starts (name → content), e.g. a CA or a token. */
  files?: Record<string, string>;
  timeoutMs?: number;
}

/** One sample of an instant query's vector result. */
export interface VectorSample {
  metric: Record<string, string>;
  value: number;
}

/** A Prometheus HTTP API answer: `data` on success, `errorType`/`error` otherwise. */
export interface ApiAnswer {
  status: 'success' | 'error';
  data?: unknown;
  errorType?: string;
  error?: string;
}

export interface PrometheusInstance {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The temp dir holding the config, the files given and the TSDB. */
  dir: string;
  /** GET `/api/v1/<path>` with the query parameters given; resolves with the parsed answer, errors included. */
  api(path: string, params?: Record<string, string>): Promise<ApiAnswer>;
  /** An instant query's vector; throws with Prometheus' error (a parse error, say) when it fails. */
  query(expr: string): Promise<VectorSample[]>;
  /** Everything the process printed. */
  output(): string;
  stop(): Promise<void>;
}

export async function startPrometheus(options: PrometheusOptions): Promise<PrometheusInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-prometheus-'));
  const interval = options.interval ?? '1s';
  for (const [name, content] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), content, { mode: 0o600 });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const itself = options.scrapeItself === true ? [{ job_name: 'prometheus', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }] : [];
  const configPath = join(dir, 'prometheus.yml');
  writeFileSync(configPath, stringify({
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [...itself, ...options.scrapeConfigs],
  }));
  const child = spawn('prometheus', [
    `--config.file=${configPath}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  const spawnFailed = new Promise<never>((_, reject) => child.once('error', reject));
  spawnFailed.catch(() => undefined);
  const stop = async (): Promise<void> => {
    await stopChild(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.race([
      spawnFailed,
      eventually(async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus exited:\n${output}`);
        return (await get(`${url}/-/ready`)).status === 200;
      }, { timeoutMs: options.timeoutMs ?? 20_000, intervalMs: 100, what: 'prometheus to be ready' }),
    ]);
  } catch (err) {
    await stop();
    throw new Error(`prometheus did not start: ${err instanceof Error ? err.message : String(err)}\n${output}`);
  }
  const api = async (path: string, params: Record<string, string> = {}): Promise<ApiAnswer> => {
    const query = new URLSearchParams(params).toString();
    const answer = await get(`${url}/api/v1/${path}${query === '' ? '' : `?${query}`}`);
    return parseAnswer(answer.body);
  };
  return {
    url,
    dir,
    api,
    async query(expr) {
      const answer = await api('query', { query: expr });
      if (answer.status !== 'success') throw new Error(`query ${expr} failed: ${answer.errorType ?? ''}: ${answer.error ?? ''}`);
      return vectorOf(answer.data);
    },
    output: () => output,
    stop,
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const killer = setTimeout(() => { child.kill('SIGKILL'); }, 5_000);
  await exited;
  clearTimeout(killer);
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function parseAnswer(body: string): ApiAnswer {
  const value: unknown = JSON.parse(body);
  if (typeof value !== 'object' || value === null || !('status' in value)) throw new Error(`not a Prometheus API answer: ${body.slice(0, 200)}`);
  const record = value as Record<string, unknown>;
  const status = record.status;
  if (status !== 'success' && status !== 'error') throw new Error(`not a Prometheus API answer: ${body.slice(0, 200)}`);
  return {
    status,
    ...('data' in record ? { data: record.data } : {}),
    ...(typeof record.errorType === 'string' ? { errorType: record.errorType } : {}),
    ...(typeof record.error === 'string' ? { error: record.error } : {}),
  };
}

function vectorOf(data: unknown): VectorSample[] {
  if (typeof data !== 'object' || data === null) throw new Error('query answer without data');
  const { resultType, result } = data as { resultType?: unknown; result?: unknown };
  if (resultType === 'scalar' && Array.isArray(result)) return [{ metric: {}, value: Number(result[1]) }];
  if (resultType !== 'vector' || !Array.isArray(result)) throw new Error(`expected a vector, got ${String(resultType)}`);
  return result.map((entry: unknown) => {
    const { metric, value } = entry as { metric?: unknown; value?: unknown };
    if (typeof metric !== 'object' || metric === null || !Array.isArray(value)) throw new Error('malformed vector sample');
    return { metric: metric as Record<string, string>, value: Number(value[1]) };
  });
}
