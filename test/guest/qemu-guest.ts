/**
 * A QEMU guest for tests: serial console on stdio (read as text, written to
 * as if typed), a QMP socket, and waits on console output with deadlines.
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { eventually } from '../../src/testing/wait.js';

export interface QemuGuestOptions {
  /** Directory for the QMP socket. */
  dir: string;
  /** QEMU arguments after the common ones (accelerator, memory, console, QMP). */
  args: string[];
}

export class QemuGuest {
  readonly child: ChildProcessWithoutNullStreams;
  readonly startedAt = Date.now();
  /** Resolves with the exit code (or signal name) once QEMU has exited. */
  readonly exited: Promise<number | string>;
  private readonly qmpPath: string;
  private text = '';
  private readonly waiters = new Set<() => void>();
  private exitStatus: number | string | undefined;

  constructor(options: QemuGuestOptions) {
    this.qmpPath = join(options.dir, 'qmp.sock');
    this.child = spawn('qemu-system-x86_64', [
      '-accel', 'tcg', '-nographic', '-m', '256', '-no-reboot',
      '-qmp', `unix:${this.qmpPath},server=on,wait=off`,
      ...options.args,
    ], { stdio: ['pipe', 'pipe', 'pipe'] });
    const onData = (chunk: Buffer): void => {
      this.text += chunk.toString('utf8');
      for (const wake of this.waiters) wake();
    };
    this.child.stdout.on('data', onData);
    this.child.stderr.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitStatus = code ?? signal ?? 'unknown';
        for (const wake of this.waiters) wake();
        resolve(this.exitStatus);
      });
    });
  }

  /** Everything QEMU printed so far (serial console and QEMU's own messages). */
  output(): string {
    return this.text;
  }

  /** Where the output ends now: pass it to {@link waitFor} to only look at what comes later. */
  mark(): number {
    return this.text.length;
  }

  /**
   * Waits until the output after `from` matches `pattern`; returns the match.
   * Fails when QEMU exits first or the deadline passes, with the console's tail.
   */
  async waitFor(pattern: RegExp, options: { timeoutMs: number; from?: number }): Promise<RegExpExecArray> {
    const from = options.from ?? 0;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const match = pattern.exec(this.text.slice(from));
        if (match !== null) done(() => { resolve(match); });
        else if (this.exitStatus !== undefined) done(() => { reject(this.failure(`QEMU exited (${String(this.exitStatus)}) before ${String(pattern)} appeared`)); });
      };
      const timer = setTimeout(() => { done(() => { reject(this.failure(`${String(pattern)} did not appear within ${options.timeoutMs} ms`)); }); }, options.timeoutMs);
      const done = (settle: () => void): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Types `text` into the serial console. */
  type(text: string): void {
    this.child.stdin.write(text);
  }

  /** Runs one QMP command (after the greeting and `qmp_capabilities`) and returns its `return` value. */
  async qmp(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const socket = await eventually(() => connect(this.qmpPath), { timeoutMs: 10_000, what: `the QMP socket ${this.qmpPath}` });
    try {
      const lines: AsyncIterator<string> = createInterface({ input: socket })[Symbol.asyncIterator]();
      const next = async (): Promise<Record<string, unknown>> => {
        for (;;) {
          const line = await lines.next();
          if (line.done === true) throw new Error('QMP closed the connection');
          const message: unknown = JSON.parse(line.value);
          if (!isRecord(message)) throw new Error(`QMP sent ${line.value}`);
          if ('event' in message) continue;
          return message;
        }
      };
      const greeting = await next();
      if (!('QMP' in greeting)) throw new Error(`no QMP greeting: ${JSON.stringify(greeting)}`);
      const exchange = async (execute: string, args?: Record<string, unknown>): Promise<unknown> => {
        socket.write(`${JSON.stringify(args === undefined ? { execute } : { execute, arguments: args })}\n`);
        const reply = await next();
        if ('error' in reply) throw new Error(`QMP ${execute} failed: ${JSON.stringify(reply.error)}`);
        return reply.return;
      };
      await exchange('qmp_capabilities');
      return await exchange(command, args);
    } finally {
      socket.destroy();
    }
  }

  /** Kills QEMU if it still runs, and waits for it to be gone. */
  async stop(): Promise<void> {
    if (this.exitStatus === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }

  private failure(why: string): Error {
    return new Error(`${why}; console so far:\n${this.text.slice(-3000)}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function connect(path: string): Promise<Socket | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => { resolve(socket); });
    socket.once('error', () => { resolve(undefined); });
  });
}
