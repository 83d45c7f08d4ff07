/**
 * Which accelerator guests get on this node. KVM only when a probe guest
 * really boots under it: on nested machines `/dev/kvm` can exist and open
 * while guest kernels hang, so its presence proves nothing. Anything less
 * than a booted probe guest means TCG, with the reason (the agent reports
 * it in the VMI's `SoftwareEmulation` condition).
 */
import { spawn } from 'node:child_process';
import { access, open, readFile, rename, writeFile } from 'node:fs/promises';

/** The accelerator to use and why. */
export interface AcceleratorChoice {
  accel: 'kvm' | 'tcg';
  reason: string;
}

export interface ProbeOptions {
  /** The probe guest's kernel and initrd (the project's test guest). */
  kernel: string;
  initrd: string;
  /** What the probe guest prints on its serial console once booted. */
  readyMarker: string;
  /** How long the guest may take to boot; 10 s by default. */
  timeoutMs?: number;
  qemuBinary?: string;
  signal?: AbortSignal;
  /** The KVM device; `/dev/kvm` by default (tests point it elsewhere). */
  kvmDevice?: string;
  /**
   * Where the outcome of a probe boot is kept, so a restarted agent does
   * not boot the probe again; it holds until the host reboots or
   * `fingerprint` (e.g. the QEMU version) changes.
   */
  cache?: { file: string; fingerprint: string };
}

/** The outcome of booting the probe guest once. */
export type ProbeBoot = { booted: true; ms: number } | { booted: false; reason: string };

// A tiny guest boots under KVM in about a second; under a KVM that hangs guests, every second here delays the agent's start.
const defaultTimeoutMs = 10_000;
const cache = new Map<string, Promise<AcceleratorChoice>>();

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${JSON.stringify(reason) ?? 'no reason'}`);
}

function errorCode(err: unknown): string {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'unknown error';
}

/** Why `device` cannot be used, or undefined when it opens read-write (what QEMU needs). */
async function kvmDeviceProblem(device: string): Promise<string | undefined> {
  try {
    const handle = await open(device, 'r+');
    await handle.close();
    return undefined;
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT') return `${device} does not exist (no KVM on this host)`;
    if (code === 'EACCES' || code === 'EPERM') return `${device} cannot be opened: permission denied (add the agent's user to the kvm group)`;
    return `${device} cannot be opened (${code})`;
  }
}

/**
 * Boots the probe guest under `accel` and waits for `readyMarker` on its
 * serial console. The guest is killed once the marker appears, at the
 * timeout, or on abort (which rejects with the signal's reason).
 */
export async function bootProbeGuest(accel: 'kvm' | 'tcg', options: ProbeOptions): Promise<ProbeBoot> {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  const args = [
    '-accel', accel, '-machine', 'q35', '-cpu', accel === 'kvm' ? 'host' : 'max', '-m', '256',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', options.kernel, '-initrd', options.initrd, '-append', 'console=ttyS0 panic=-1',
    '-serial', 'stdio',
  ];
  options.signal?.throwIfAborted();
  const started = Date.now();
  const binary = options.qemuBinary ?? 'qemu-system-x86_64';
  // Under coreutils' `timeout`, so the probe guest dies on its own even when
  // this process is killed first (a guest hanging under KVM never would).
  const child = spawn('timeout', ['--signal=KILL', `${Math.ceil(timeoutMs / 1000) + 5}s`, binary, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return await new Promise<ProbeBoot>((resolve, reject) => {
    let serial = '';
    let stderr = '';
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      // `timeout` passes SIGTERM on to QEMU; a SIGKILL would strand QEMU until its deadline.
      child.kill('SIGTERM');
      outcome();
    };
    const onAbort = (): void => { settle(() => { reject(abortReason(options.signal)); }); };
    const timer = setTimeout(() => {
      settle(() => { resolve({ booted: false, reason: `a probe guest did not boot under ${accel.toUpperCase()} within ${Math.round(timeoutMs / 1000)} s` }); });
    }, timeoutMs);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      // Only the tail can still contain the start of a marker split across chunks.
      serial = (serial + chunk).slice(-(options.readyMarker.length + 4096));
      if (serial.includes(options.readyMarker)) settle(() => { resolve({ booted: true, ms: Date.now() - started }); });
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-2048); });
    child.once('error', (err) => {
      settle(() => { resolve({ booted: false, reason: `coreutils' timeout, which runs the probe guest, could not be started: ${err.message}` }); });
    });
    child.once('exit', (code, signal) => {
      // `timeout` exits 126 or 127 when it could not run QEMU at all.
      if (code === 126 || code === 127) {
        settle(() => { resolve({ booted: false, reason: `${binary} could not be started: ${stderr.trim()}` }); });
        return;
      }
      const why = stderr.trim() === '' ? `exit ${code ?? signal ?? 'unknown'}` : stderr.trim();
      settle(() => { resolve({ booted: false, reason: `QEMU stopped under ${accel.toUpperCase()} before the probe guest booted: ${why}` }); });
    });
  });
}

async function probe(options: ProbeOptions): Promise<AcceleratorChoice> {
  const problem = await kvmDeviceProblem(options.kvmDevice ?? '/dev/kvm');
  if (problem !== undefined) return { accel: 'tcg', reason: problem };
  for (const file of [options.kernel, options.initrd]) {
    try {
      await access(file);
    } catch {
      return { accel: 'tcg', reason: `the probe guest is missing (${file}), so KVM cannot be shown to boot guests` };
    }
  }
  const key = options.cache === undefined ? undefined : await cacheKey(options);
  if (options.cache !== undefined && key !== undefined) {
    const kept = await readKept(options.cache.file, key);
    if (kept !== undefined) return kept;
  }
  const boot = await bootProbeGuest('kvm', options);
  const choice: AcceleratorChoice = boot.booted ? { accel: 'kvm', reason: `a probe guest booted under KVM in ${boot.ms} ms` } : { accel: 'tcg', reason: boot.reason };
  if (options.cache !== undefined && key !== undefined) await keep(options.cache.file, key, choice);
  return choice;
}

/** What a kept probe outcome holds for: this boot of the host, these options, this fingerprint; undefined when the boot id is unknown. */
async function cacheKey(options: ProbeOptions): Promise<string | undefined> {
  let bootId: string;
  try {
    bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return undefined;
  }
  return JSON.stringify([bootId, options.cache?.fingerprint, options.kvmDevice, options.qemuBinary, options.kernel, options.initrd, options.timeoutMs]);
}

/** The kept outcome for `key`, with when it was probed in its reason. */
async function readKept(file: string, key: string): Promise<AcceleratorChoice | undefined> {
  try {
    const kept = JSON.parse(await readFile(file, 'utf8')) as { key?: unknown; accel?: unknown; reason?: unknown; at?: unknown };
    if (kept.key !== key || (kept.accel !== 'kvm' && kept.accel !== 'tcg') || typeof kept.reason !== 'string' || typeof kept.at !== 'string') return undefined;
    return { accel: kept.accel, reason: `${kept.reason} (probed at ${kept.at}, since this host booted)` };
  } catch {
    return undefined;
  }
}

async function keep(file: string, key: string, choice: AcceleratorChoice): Promise<void> {
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ key, ...choice, at: new Date().toISOString() })}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/** Forgets the outcomes cached in this process (not those kept on disk). */
export function forgetProbes(): void {
  cache.clear();
}

/**
 * KVM when a probe guest boots under it within the timeout, else TCG; the
 * reason says which check decided. The result is cached per process (per
 * set of options) and, with `cache`, on disk until the host reboots; an
 * aborted probe is not cached.
 */
export async function probeAccelerator(options: ProbeOptions): Promise<AcceleratorChoice> {
  const key = JSON.stringify([options.kvmDevice, options.qemuBinary, options.kernel, options.initrd, options.readyMarker, options.timeoutMs, options.cache]);
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = probe(options);
    cache.set(key, pending);
  }
  try {
    return await pending;
  } catch (err) {
    cache.delete(key);
    throw err;
  }
}
