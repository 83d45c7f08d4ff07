/**
 * A throwaway etcd for tests and benchmarks: Debian's `etcd` binary on
 * loopback, on free ports, with its data in a temp dir; one member of its
 * own, or an `EtcdCluster` of three. Ready when its log says it serves
 * clients; `kill()` can stop it hard (as a crash), `pause()` freezes it
 * (SIGSTOP, as a partition would look to its clients), and `restart()`
 * brings it back on the same ports and data.
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

  /** The members of its cluster (`name=peerURL`, comma-separated), when it is one of several. */
  private initialCluster: string | undefined;

  private constructor(
    readonly dataDir: string,
    private port: number,
    private readonly peerPort: number,
    private readonly readyTimeoutMs: number,
    readonly name = 'test',
  ) {}

  /** `http://127.0.0.1:PEERPORT`, where the other members reach it. */
  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

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
  static async prepare(options: EtcdProcessOptions = {}, name = 'test'): Promise<EtcdProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), 'vireo-etcd-'));
    return new EtcdProcess(dataDir, await freePort(), await freePort(), options.readyTimeoutMs ?? 30_000, name);
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
    const peer = this.peerUrl;
    const clustered = this.initialCluster !== undefined;
    const child = spawn(
      'etcd',
      [
        '--name', this.name,
        '--data-dir', join(this.dataDir, 'member-data'),
        '--listen-client-urls', this.endpoint,
        '--advertise-client-urls', this.endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', this.initialCluster ?? `${this.name}=${peer}`,
        // One token for all members of a cluster: etcd derives the cluster ID from it.
        '--initial-cluster-token', `vireo-test-${this.initialCluster ?? this.peerPort}`,
        // A single member elects itself; a short election timeout makes that quick. Members of a
        // cluster on a busy machine need more slack, or they hold elections for nothing.
        '--heartbeat-interval', clustered ? '100' : '20',
        '--election-timeout', clustered ? '1000' : '200',
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

  /** Freezes etcd (SIGSTOP): its clients' connections stay open and nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Thaws a paused etcd (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Whether etcd runs (not killed). */
  get running(): boolean {
    return this.child !== undefined;
  }

  /** Stops etcd and removes its data. */
  async stop(): Promise<void> {
    this.resume();
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Makes this member one of `members` (before its first start). */
  joinCluster(members: readonly EtcdProcess[]): void {
    this.initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  }
}

/** Three (or `size`) etcd members in one cluster on loopback, started together (a member alone waits for a quorum). */
export class EtcdCluster {
  private constructor(readonly members: readonly EtcdProcess[]) {}

  /** `etcd://127.0.0.1:A,127.0.0.1:B,…`, what `vireo server --store` takes. */
  get storeUrl(): string {
    return `etcd://${this.members.map((m) => `127.0.0.1:${m.clientPort}`).join(',')}`;
  }

  /** The client URLs, what the etcd3 client takes. */
  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  static async start(options: EtcdProcessOptions & { size?: number } = {}): Promise<EtcdCluster> {
    const members: EtcdProcess[] = [];
    for (let i = 0; i < (options.size ?? 3); i++) members.push(await EtcdProcess.prepare(options, `member${i}`));
    for (const member of members) member.joinCluster(members);
    const cluster = new EtcdCluster(members);
    const started = await Promise.allSettled(members.map((m) => m.restart()));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed !== undefined) {
      await cluster.stop();
      throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    }
    return cluster;
  }

  /** Freezes every member (SIGSTOP): the store is unreachable. */
  pause(): void {
    for (const member of this.members) member.pause();
  }

  resume(): void {
    for (const member of this.members) member.resume();
  }

  /** Stops every member and removes their data. */
  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
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
