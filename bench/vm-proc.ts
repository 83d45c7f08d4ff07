/**
 * Process helpers for the VM benchmark: RSS from /proc, the QEMU processes
 * under a directory (so the benchmark only ever touches its own guests),
 * waiting on a condition with a deadline, and a forced GC in the server
 * through its inspector (loopback only).
 */
import { readdirSync, readFileSync } from 'node:fs';
import WebSocket from 'ws';

/** Resident set size of `pid` in bytes (VmRSS), or undefined when it is gone. */
export function rssBytes(pid: number): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kib = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
  return kib === undefined ? undefined : Number(kib) * 1024;
}

/**
 * CPU time `pid` has used (user + system, seconds), from /proc/<pid>/stat;
 * /proc counts in USER_HZ, which is 100 on x86-64.
 */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / 100 : undefined;
}

/** True when `pid` is a live process (not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The argument vector of `pid`, or undefined when it is gone. */
export function cmdlineOf(pid: number): string[] | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((a, i, all) => a !== '' || i < all.length - 1);
  } catch {
    return undefined;
  }
}

/** The environment of `pid` (a process of ours), or undefined when it is gone. */
export function environOf(pid: number): Record<string, string> | undefined {
  let raw: string;
  try {
    raw = readFileSync(`/proc/${pid}/environ`, 'utf8');
  } catch {
    return undefined;
  }
  const env: Record<string, string> = {};
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

/** Live `qemu-system-*` processes whose command line mentions `dir` (this benchmark's temp dir). */
export function qemuPidsUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const args = cmdlineOf(pid);
    if (args === undefined || !(args[0] ?? '').includes('qemu-system')) continue;
    if (args.some((a) => a.includes(dir)) && isAlive(pid)) pids.push(pid);
  }
  return pids;
}

/** Waits until `condition` holds, polling every `intervalMs`; throws after `timeoutMs` naming `what`. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, options: { what: string; timeoutMs: number; intervalMs?: number }): Promise<void> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (performance.now() >= deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await sleep(options.intervalMs ?? 50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The inspector's WebSocket URL from a Node process's output ("Debugger listening on ws://…"). */
export function inspectorUrl(output: string): string | undefined {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(output)?.[1];
}

/**
 * Runs a full garbage collection in the Node process behind `url`
 * (`HeapProfiler.collectGarbage`, twice: the second pass frees what the
 * first one's finalizers released).
 */
export async function collectGarbage(url: string): Promise<void> {
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => { resolve(); });
      ws.once('error', reject);
    });
    for (const id of [1, 2]) {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (data: WebSocket.RawData): void => {
          const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : data instanceof ArrayBuffer ? Buffer.from(data).toString('utf8') : data.toString('utf8');
          const reply: unknown = JSON.parse(text);
          if (typeof reply === 'object' && reply !== null && 'id' in reply && reply.id === id) {
            ws.off('message', onMessage);
            if ('error' in reply) reject(new Error(`inspector: HeapProfiler.collectGarbage failed: ${text}`));
            else resolve();
          }
        };
        ws.on('message', onMessage);
        ws.send(JSON.stringify({ id, method: 'HeapProfiler.collectGarbage' }));
      });
    }
  } finally {
    ws.close();
  }
}

/** The median of some numbers (NaN for none). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  const hi = sorted[mid] ?? NaN;
  return sorted.length % 2 === 1 ? hi : ((sorted[mid - 1] ?? NaN) + hi) / 2;
}

/**
 * The server's settled RSS: a forced GC (when the inspector is there), a
 * short pause, then the median of five samples 200 ms apart.
 */
export async function settledRss(pid: number, inspector: string | undefined): Promise<number> {
  if (inspector !== undefined) await collectGarbage(inspector);
  await sleep(500);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const rss = rssBytes(pid);
    if (rss === undefined) throw new Error(`process ${pid} is gone: cannot read its RSS`);
    samples.push(rss);
    await sleep(200);
  }
  return median(samples);
}
