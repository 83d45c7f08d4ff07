/**
 * A QEMU for tests that need one without an agent (QMP, command-line
 * checks): a child of the test process, killed when its signal aborts, its
 * stderr tail kept to explain a failed start. The agent itself starts QEMU
 * detached, through `src/agent/qemu-process.ts`.
 */
import { spawn } from 'node:child_process';
import type { QemuCommand } from '../agent/qemu/types.js';

/** How a QEMU process ended. `error` is set when it could not be started at all. */
export interface QemuExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface QemuProcess {
  readonly pid: number | undefined;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<QemuExit>;
  /** The last 64 KiB QEMU wrote to stderr. */
  stderr(): string;
  /** Sends `signal` (SIGTERM by default) unless the process has exited. */
  kill(signal?: NodeJS.Signals): void;
}

export interface StartQemuOptions {
  /** Arguments appended to the command's (e.g. `-S`). */
  extraArgs?: string[];
  /** Kills QEMU (SIGKILL) when aborted. */
  signal?: AbortSignal;
}

const stderrLimit = 64 * 1024;

/** Spawns `command` with an argument array (never a shell). */
export function startQemu(command: QemuCommand, options: StartQemuOptions = {}): QemuProcess {
  const args = [...command.args, ...(options.extraArgs ?? [])];
  const child = spawn(command.binary, args, {
    env: { ...process.env, ...command.env },
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(options.signal === undefined ? {} : { signal: options.signal, killSignal: 'SIGKILL' as const }),
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-stderrLimit);
  });
  let done = false;
  const exited = new Promise<QemuExit>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      // An abort also lands here, after the kill; the exit event still follows then.
      if (child.pid === undefined) {
        done = true;
        resolve({ code: null, signal: null, error });
      }
    });
  });
  return {
    pid: child.pid,
    exited,
    stderr: () => stderr,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (!done) child.kill(signal);
    },
  };
}
