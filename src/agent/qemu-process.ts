/**
 * QEMU as an operating-system process: spawned detached (its own process
 * group, no pipes to the agent) so it outlives an agent or server restart,
 * and found again by pid, checked against its command line so a recycled
 * pid is never mistaken for (or killed as) a guest.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** How a process we spawned ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A QEMU just spawned by this agent. */
export interface SpawnedQemu {
  pid: number;
  /** Resolves when the process exits (only the agent that spawned it learns this). */
  exited: Promise<ProcessExit>;
}

/** Where QEMU's output goes, and its extra environment. */
export interface SpawnQemuOptions {
  /** Appended to with QEMU's stdout and stderr. */
  logFile: string;
  /** Added to the agent's environment. */
  env: Record<string, string>;
}

/** Starts QEMU detached. Rejects when it cannot be executed at all. */
export async function spawnQemu(binary: string, args: readonly string[], options: SpawnQemuOptions): Promise<SpawnedQemu> {
  const fd = openSync(options.logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = spawn(binary, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, ...options.env } });
  } finally {
    closeSync(fd);
  }
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }); });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => { reject(new Error(`cannot run ${binary}: ${err.message}`, { cause: err })); });
  });
  // The agent must be able to exit (or restart) while the guest runs on.
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${binary} started without a pid`);
  return { pid, exited };
}

/**
 * True when `pid` is a live (not zombie) process whose command line
 * contains `marker` (the VMI's QMP socket path, unique per VMI).
 */
export function isQemuAlive(pid: number, marker: string): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!cmdline.includes(marker)) return false;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself contain spaces).
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Waits until the process is gone; false when it still runs after `timeoutMs`. */
export async function waitGone(pid: number, marker: string, options: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  // Polling /proc: a process the agent did not spawn (found after a restart) gives no exit event.
  while (isQemuAlive(pid, marker)) {
    if (Date.now() >= deadline || options.signal?.aborted === true) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** Sends `signal` to the QEMU at `pid` if it still is that QEMU. */
export function signalQemu(pid: number, marker: string, signal: NodeJS.Signals): boolean {
  if (!isQemuAlive(pid, marker)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The pid in a QEMU `-pidfile`, if there is one. */
export async function readPidFile(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * QEMU's own explanation from its log: its last `qemu-system-…:` line (how
 * QEMU prefixes errors), else the last line; without `-msg timestamp=on`'s
 * timestamp.
 */
export async function qemuErrorLine(logFile: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(logFile, 'utf8');
  } catch {
    return '';
  }
  const lines = text
    .split('\n')
    .map((l) => l.trim().replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z\s+/, ''))
    .filter((l) => l !== '');
  const own = lines.filter((l) => /^(\S*\/)?qemu(-system-[\w-]+)?:/.test(l));
  return own[own.length - 1] ?? lines[lines.length - 1] ?? '';
}

/** "exit code 1" / "killed by SIGKILL". */
export function describeExit(exit: ProcessExit): string {
  if (exit.signal !== null) return `killed by ${exit.signal}`;
  return `exit code ${exit.code ?? 'unknown'}`;
}
