/**
 * A real `vireo server` in a child process, for tests that must restart or
 * kill it (durability, informers across restarts, SIGTERM). Readiness comes
 * from the server's own `ready` line, never from a sleep.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
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

export async function startServerProcess(options: { dataDir: string; port: number; timeoutMs?: number }): Promise<ServerProcess> {
  const child = spawn(process.execPath, [cliPath, 'server', '--data-dir', options.dataDir, '--listen', `127.0.0.1:${options.port}`, '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => { resolve(code ?? signal ?? 'unknown'); }));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`vireo server did not say ready within ${options.timeoutMs ?? 30_000} ms:\n${output}`)); }, options.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c: Buffer) => (output += c.toString('utf8')));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`vireo server exited (${String(code)}) before it was ready:\n${output}`));
    });
  });
  const kubeconfig = join(options.dataDir, 'kubeconfig');
  return {
    child,
    url: `https://127.0.0.1:${options.port}`,
    kubeconfig,
    token: readFileSync(join(options.dataDir, 'token'), 'utf8').trim(),
    caCert: readFileSync(join(options.dataDir, 'ca.crt'), 'utf8'),
    output: () => output,
    exited,
  };
}
