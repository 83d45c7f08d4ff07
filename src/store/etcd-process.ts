/**
 * A throwaway single-member etcd for tests and benchmarks: Debian's `etcd`
 * binary on loopback, on free ports, with its data in a temp dir. Ready when
 * its log says it serves clients; `kill()` can stop it hard (as a crash) and
 * `restart()` brings it back on the same ports and data.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';

/** Options of {@link EtcdProcess.start}. */
export interface EtcdProcessOptions {
  /** How long to wait for etcd to serve clients. Default 30 s. */
  readyTimeoutMs?: number;
}

/** A running (or stopped, restartable) etcd member of its own. */
export class EtcdProcess {
  private child: ChildProcess | undefined;

  private constructor(
    readonly dataDir: string,
    private port: number,
    private readonly peerPort: number,
    private readonly readyTimeoutMs: number,
  ) {}

  /** The loopback port clients reach it on. */
  get clientPort(): number {
    return this.port;
  }

  /** `http://127.0.0.1:PORT`, what the etcd3 client takes. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  /** `etcd://127.0.0.1:PORT`, what `vireo server --store` takes. */
  get storeUrl(): string {
    return `etcd://127.0.0.1:${this.clientPort}`;
  }

  /** A fresh etcd, its ports and data dir chosen but not started yet (`restart()` starts it). */
  static async prepare(options: EtcdProcessOptions = {}): Promise<EtcdProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), 'vireo-etcd-'));
    return new EtcdProcess(dataDir, await freePort(), await freePort(), options.readyTimeoutMs ?? 30_000);
  }

  /** Starts a fresh etcd; resolves once it serves clients. */
  static async start(options: EtcdProcessOptions = {}): Promise<EtcdProcess> {
    const etcd = await EtcdProcess.prepare(options);
    try {
      await etcd.restart();
    } catch (error) {
      await etcd.stop();
      throw error;
    }
    return etcd;
  }

  /**
   * Starts etcd again on its data (after `kill`), on the same ports, or
   * serving clients on `clientPort` instead (out of reach of clients of the old one).
   */
  async restart(options: { clientPort?: number } = {}): Promise<void> {
    if (this.child !== undefined) throw new Error('etcd is already running');
    this.port = options.clientPort ?? this.port;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      'etcd',
      [
        '--name', 'test',
        '--data-dir', join(this.dataDir, 'member-data'),
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        // A single member elects itself; a short election timeout makes that quick.
        '--heartbeat-interval', '20',
        '--election-timeout', '200',
        '--logger', 'zap',
        '--log-outputs', 'stderr',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let log = '';
      const timer = setTimeout(() => { fail(new Error(`etcd did not serve clients within ${this.readyTimeoutMs} ms; its log:\n${log.slice(-2000)}`)); }, this.readyTimeoutMs);
      const fail = (error: Error): void => {
        clearTimeout(timer);
        child.stderr?.removeAllListeners('data');
        // An etcd that never got ready must not outlive the caller.
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        this.child = undefined;
        reject(error);
      };
      child.once('error', (error) => { fail(new Error(`cannot start etcd (is Debian's etcd-server installed? scripts/setup installs it): ${error.message}`)); });
      child.once('exit', (code, signal) => { fail(new Error(`etcd exited (${code ?? signal}) before serving clients; its log:\n${log.slice(-2000)}`)); });
      child.stderr?.on('data', (chunk: Buffer) => {
        log += chunk.toString('utf8');
        // One JSON record a line; readiness is the record that says clients are served.
        for (const line of log.split('\n')) {
          if (line.includes('"msg":"serving client traffic insecurely')) {
            clearTimeout(timer);
            child.removeAllListeners('exit');
            child.stderr?.removeAllListeners('data');
            child.stderr?.resume();
            resolve();
            return;
          }
        }
        log = log.slice(-20_000);
      });
    });
  }

  /** Kills etcd with SIGKILL, as a crash would; the data stays for `restart`. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** Stops etcd and removes its data. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** A TCP port free on loopback right now (the kernel picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => { resolve(port); });
    });
  });
}
