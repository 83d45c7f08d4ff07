/**
 * A real `vireo server` in a child process, for tests that must restart or
 * kill it (durability, informers across restarts, SIGTERM), and a real
 * `vireo agent` for tests of a second node. Readiness comes from the
 * process's own `ready` line, never from a sleep.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const cliPath = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  kubeconfig: string;
  token: string;
  caCert: string;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** What it printed on stderr alone: its JSON log records. */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
}

/** A TCP port that was free a moment ago (for servers that must come back on the same address). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => { resolve(port); });
    });
  });
}

/** A started `vireo` child process: its output so far and its exit. */
interface Spawned {
  child: ChildProcess;
  output: () => string;
  stderr: () => string;
  exited: Promise<number | string>;
}

/** Runs `vireo ARGS` and resolves once it prints `ready`; rejects if it exits first or takes longer than `timeoutMs`. */
async function spawnUntilReady(args: string[], what: string, timeoutMs: number, env?: Record<string, string>, prefix: readonly string[] = []): Promise<Spawned> {
  // A prefix (e.g. a lab host's nsenter) execs node in the end, so the child's pid is vireo's either way.
  const argv = [...prefix, process.execPath, cliPath, ...args];
  const child = spawn(argv[0] ?? process.execPath, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...(env === undefined ? {} : { env: { ...process.env, ...env } }) });
  let output = '';
  let stdout = '';
  let stderr = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => { resolve(code ?? signal ?? 'unknown'); }));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`${what} did not say ready within ${timeoutMs} ms:\n${output}`)); }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      stdout += chunk.toString('utf8');
      // Its own line on stdout: a log record on stderr saying "already" must not count.
      if (/\bready\b/.test(stdout)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString('utf8');
      stderr += c.toString('utf8');
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${String(code)}) before it was ready:\n${output}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    // A process that never got ready must not outlive the test.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
  return { child, output: () => output, stderr: () => stderr, exited };
}

/**
 * Pod ranges of their own for a server process: every VM has a NIC on the
 * pod network, and servers side by side on one host must not give their
 * node bridges one subnet. Derived from the data directory, so a restarted
 * server keeps its Nodes' ranges; room for four nodes (/22 and /62).
 */
export function processClusterCidr(dataDir: string): string {
  const bytes = createHash('sha256').update(resolve(dataDir)).digest();
  const [a = 0, b = 0, c = 0, d = 0] = bytes;
  return `10.${200 + (a % 40)}.${(b % 64) * 4}.0/22,fd00:${((c << 8) | d).toString(16)}:${bytes.readUInt16BE(4).toString(16)}:${(bytes.readUInt16BE(6) & 0xfffc).toString(16)}::/62`;
}

/** Where a test process runs: by default in this network namespace on loopback; or in a lab host (src/testing/hosts-lab.ts) on its address. */
export interface ProcessPlace {
  /** The address it listens on (default 127.0.0.1). */
  host?: string;
  /** The argv prefix that enters its host (HostsLab.command). */
  prefix?: readonly string[];
}

/** `host:port` for --listen, bracketing IPv6. */
function listenOn(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Starts `vireo server` on `port` (loopback unless `place` says otherwise); `store` is its `--store` (default: SQLite in the data dir). */
export async function startServerProcess(options: { dataDir: string; port: number; timeoutMs?: number; store?: string; pkiDir?: string; logLevel?: string; nodeName?: string; place?: ProcessPlace; args?: string[] }): Promise<ServerProcess> {
  const address = listenOn(options.place?.host ?? '127.0.0.1', options.port);
  const { child, output, stderr, exited } = await spawnUntilReady(
    [
      'server', '--data-dir', options.dataDir, '--listen', address, '--log-level', options.logLevel ?? 'warn', '--cluster-cidr', processClusterCidr(options.pkiDir ?? options.dataDir),
      ...(options.store === undefined ? [] : ['--store', options.store]),
      // A second server of one cluster: the first one's CA, token and upload key.
      ...(options.pkiDir === undefined ? [] : ['--pki-dir', options.pkiDir]),
      ...(options.nodeName === undefined ? [] : ['--node-name', options.nodeName]),
      ...(options.args ?? []),
    ],
    'vireo server',
    options.timeoutMs ?? 30_000,
    undefined,
    options.place?.prefix,
  );
  const kubeconfig = join(options.dataDir, 'kubeconfig');
  return {
    child,
    url: `https://${address}`,
    kubeconfig,
    token: readFileSync(join(options.pkiDir ?? options.dataDir, 'token'), 'utf8').trim(),
    caCert: readFileSync(join(options.pkiDir ?? options.dataDir, 'ca.crt'), 'utf8'),
    output,
    stderr,
    exited,
  };
}

/** A `vireo agent` in a child process. */
export interface AgentProcess {
  child: ChildProcess;
  /** `https://ADDRESS:PORT` of its endpoint. */
  url: string;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends SIGTERM and resolves with the exit code once it has exited (its guests keep running). */
  stop(): Promise<number | string>;
}

/** How a test agent reaches its server: the cluster kubeconfig, or joining with a token (or a credential stored by an earlier join). */
export type AgentAccess = { kubeconfig: string } | { join: { server?: string; token?: string; caCertHash?: string } };

/** Starts `vireo agent` as node `nodeName`, its endpoint on `port` (loopback unless `place` says otherwise; `env` added to its environment); resolves once it says ready. */
export async function startAgentProcess(options: AgentAccess & { dataDir: string; nodeName: string; port: number; timeoutMs?: number; env?: Record<string, string>; place?: ProcessPlace; args?: string[] }): Promise<AgentProcess> {
  const access = 'kubeconfig' in options ? ['--kubeconfig', options.kubeconfig] : joinArgs(options.join);
  const address = listenOn(options.place?.host ?? '127.0.0.1', options.port);
  const { child, output, exited } = await spawnUntilReady(
    ['agent', ...access, '--data-dir', options.dataDir, '--node-name', options.nodeName, '--listen', address, '--log-level', 'warn', ...(options.args ?? [])],
    `vireo agent ${options.nodeName}`,
    options.timeoutMs ?? 30_000,
    options.env,
    options.place?.prefix,
  );
  return {
    child,
    url: `https://${address}`,
    output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

function joinArgs(join: { server?: string; token?: string; caCertHash?: string }): string[] {
  return [
    ...(join.server === undefined ? [] : ['--server', join.server]),
    ...(join.token === undefined ? [] : ['--token', join.token]),
    ...(join.caCertHash === undefined ? [] : ['--ca-cert-hash', join.caCertHash]),
  ];
}
