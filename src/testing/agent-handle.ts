/**
 * A node agent for tests of the API server's subresources, backed by real
 * processes instead of QEMU: each guest is a child process that behaves like
 * a serial line (every byte written by any session is echoed to all
 * sessions, over a real unix socket), pause and unpause are SIGSTOP and
 * SIGCONT of that process, and the kept serial output is what a permanent
 * reader saw, as the real agent keeps it; a guest's ports are the same
 * ports on loopback. What is under test is the
 * subresource and WebSocket code, not this handle.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError, conflict } from '../api/errors.js';
import type { Readable } from 'node:stream';
import type { AgentDirectory, AgentHandle, GuestAction, UploadOptions, UploadResult } from '../agent/handle.js';
import type { MigrationAnswer, MigrationCommand } from '../agent/migration/index.js';
import { renderKubeconfig } from '../cli/kubeconfig.js';
import { ApiServer } from '../apiserver/server.js';
import { silentLogger } from '../log/logger.js';
import type { TestServer } from './server.js';

/** The guest: a serial line on a unix socket, broadcasting every byte to every peer. */
const serialLineProgram = `
const net = require('node:net');
const peers = new Set();
net.createServer((sock) => {
  peers.add(sock);
  sock.on('data', (d) => { for (const p of peers) p.write(d); });
  sock.on('close', () => peers.delete(sock));
  sock.on('error', () => sock.destroy());
}).listen(process.argv[1], () => process.stdout.write('ready\\n'));
// Stdin is a pipe from the test process: when it closes, the test is gone and so is this guest.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
`;

interface Guest {
  child: ChildProcess;
  socketPath: string;
  /** The permanent reader that keeps the serial log. */
  reader: Socket;
  log: string;
  paused: boolean;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** `fn`'s result as a promise; a throw becomes a rejection, as the AgentHandle contract wants. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

export class EchoAgent implements AgentHandle {
  /** Every guest action that reached this agent, in order. */
  readonly actions: { namespace: string; name: string; action: GuestAction }[] = [];
  /** Every upload that reached this agent, with its bytes. */
  readonly uploads: { namespace: string; pvc: string; options: UploadOptions; data: Buffer }[] = [];
  private readonly guests = new Map<string, Guest>();
  private readonly dir = mkdtempSync(join(tmpdir(), 'vireo-echo-agent-'));

  constructor(readonly nodeName: string) {}

  /** Starts the guest process of VMI `namespace/name`; resolves once it listens. */
  async addGuest(namespace: string, name: string): Promise<void> {
    const socketPath = join(this.dir, `${this.guests.size}.sock`);
    const child = spawn(process.execPath, ['-e', serialLineProgram, socketPath], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.once('exit', (code) => { reject(new Error(`the test guest exited (${String(code)}) before it listened`)); });
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        if (out.includes('ready\n')) resolve();
      });
    });
    const reader = await connectUnix(socketPath);
    const guest: Guest = { child, socketPath, reader, log: '', paused: false };
    reader.on('data', (chunk: Buffer) => { guest.log += chunk.toString('utf8'); });
    this.guests.set(key(namespace, name), guest);
  }

  /** The pid of a guest's process (to check its state in /proc). */
  guestPid(namespace: string, name: string): number {
    return this.guest(namespace, name).child.pid ?? -1;
  }

  guestAction(namespace: string, name: string, action: GuestAction): Promise<void> {
    return settle(() => { this.act(namespace, name, action); });
  }

  private act(namespace: string, name: string, action: GuestAction): void {
    const guest = this.guest(namespace, name);
    switch (action) {
      case 'pause':
        if (guest.paused) throw conflict('virtualmachineinstance', 'kubevirt.io', name, 'VMI is already paused');
        guest.child.kill('SIGSTOP');
        guest.paused = true;
        break;
      case 'unpause':
        if (!guest.paused) throw conflict('virtualmachineinstance', 'kubevirt.io', name, 'VMI is not paused');
        guest.child.kill('SIGCONT');
        guest.paused = false;
        break;
      case 'softreboot':
      case 'reset':
        break;
    }
    this.actions.push({ namespace, name, action });
  }

  async openStream(namespace: string, name: string, _kind: 'console' | 'vnc'): Promise<Socket> {
    return connectUnix(this.guest(namespace, name).socketPath);
  }

  /** The guest's "pod address" is loopback: a port of a known guest is that port on 127.0.0.1. */
  async openPortForward(namespace: string, name: string, port: number): Promise<Socket> {
    this.guest(namespace, name);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }

  serialLog(namespace: string, name: string): Promise<string> {
    return settle(() => this.guest(namespace, name).log);
  }

  metrics(): Promise<string> {
    return Promise.reject(new ApiError('ServiceUnavailable', `the echo agent of ${this.nodeName} runs no QEMU: it has no metrics`));
  }

  /** Keeps the uploaded bytes in memory (test images are small). */
  migration(namespace: string, name: string, command: MigrationCommand): Promise<MigrationAnswer> {
    return Promise.reject(new ApiError('Conflict', `the echo agent runs no guests: it cannot do migration step ${command.step} of ${namespace}/${name}`));
  }

  async upload(namespace: string, pvc: string, body: Readable, options: UploadOptions): Promise<UploadResult> {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const data = Buffer.concat(chunks);
    this.uploads.push({ namespace, pvc, options, data });
    return { bytes: data.length, processing: options.async };
  }

  /** Kills every guest and removes the sockets. */
  async stop(): Promise<void> {
    await Promise.all(
      [...this.guests.values()].map(async (g) => {
        g.reader.destroy();
        if (g.child.exitCode !== null || g.child.signalCode !== null) return;
        const exited = new Promise((resolve) => g.child.once('exit', resolve));
        g.child.kill('SIGKILL');
        await exited;
      }),
    );
    this.guests.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private guest(namespace: string, name: string): Guest {
    const guest = this.guests.get(key(namespace, name));
    if (guest === undefined) throw conflict('virtualmachineinstance', 'kubevirt.io', name, `VMI is not running on node ${this.nodeName}`);
    return guest;
  }
}

/** A second API server on a test server's store and registry, given the agents (until the control plane takes them). */
export interface AgentFrontDoor {
  url: string;
  kubeconfig: string;
  stop(): Promise<void>;
}

export async function serveWithAgents(test: TestServer, agents: AgentDirectory): Promise<AgentFrontDoor> {
  const server = new ApiServer({
    store: test.store,
    registry: test.plane.registry,
    token: test.token,
    tls: { cert: test.pki.serverCert, key: test.pki.serverKey },
    logger: silentLogger,
    agents,
  });
  const address = await server.listen('127.0.0.1', 0);
  const url = `https://127.0.0.1:${address.port}`;
  const kubeconfig = join(test.dir, 'agents-kubeconfig');
  writeFileSync(kubeconfig, renderKubeconfig({ server: url, caCert: test.pki.caCert, token: test.token }), { mode: 0o600 });
  return { url, kubeconfig, stop: () => server.close() };
}
