/**
 * Starting a QEMU process from a `QemuCommand`. QEMU reports start-up
 * errors on stderr and exits, so its stderr is kept (the tail) to explain a
 * failed start; readiness is the QMP greeting, not anything printed here.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import type { QemuCommand } from './types.js';

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
  /** The last 64 KiB QEMU wrote to stderr (empty when stderr goes to `logFile`). */
  stderr(): string;
  /** Sends `signal` (SIGTERM by default) unless the process has exited. */
  kill(signal?: NodeJS.Signals): void;
}

export interface StartQemuOptions {
  /** Arguments appended to the command's (e.g. `-S`). */
  extraArgs?: string[];
  /** Kills QEMU (SIGKILL) when aborted. */
  signal?: AbortSignal;
  /** Appends QEMU's stdout and stderr to this file instead of keeping them in memory. */
  logFile?: string;
  /**
   * Starts QEMU in its own session and does not hold the agent's event loop
   * open for it, so it outlives an agent restart. `exited` then settles only
   * while something else keeps the agent running.
   */
  detached?: boolean;
}

const stderrLimit = 64 * 1024;

/** Spawns `command` with an argument array (never a shell). */
export function startQemu(command: QemuCommand, options: StartQemuOptions = {}): QemuProcess {
  const args = [...command.args, ...(options.extraArgs ?? [])];
  const env = { ...process.env, ...command.env };
  const detached = options.detached === true;
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'a');
  const child = spawn(command.binary, args, {
    env,
    detached,
    stdio: logFd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', logFd, logFd],
    ...(options.signal === undefined ? {} : { signal: options.signal, killSignal: 'SIGKILL' as const }),
  });
  if (logFd !== undefined) closeSync(logFd);
  if (detached) child.unref();
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
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
