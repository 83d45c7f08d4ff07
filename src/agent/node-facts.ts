/**
 * The node's facts every QEMU command line is built from, resolved once
 * per agent: the QEMU binary and its version, OVMF's files, the host CPU
 * count, and the accelerator (KVM only when a probe guest really boots
 * under it; the development machines have a /dev/kvm that hangs guests).
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import type { Logger } from '../log/logger.js';
import { probeAccelerator } from './accel.js';
import { TEST_GUEST_READY_MARKER, ensureTestGuest } from './images/index.js';
import type { NodeFacts } from './qemu/index.js';
import { runTool } from '../host/run-tool.js';

/** The facts, and why that accelerator (shown in the VMI's SoftwareEmulation condition). */
export interface ResolvedFacts {
  facts: NodeFacts;
  accelReason: string;
}

const ovmfDir = '/usr/share/OVMF';

/** Debian's OVMF files (the 4 MiB builds when present, as libvirt prefers). */
function ovmfDefaults(): Pick<NodeFacts, 'ovmfCode' | 'ovmfVars' | 'ovmfSecureBootCode' | 'ovmfSecureBootVars'> {
  const pick = (...names: string[]): string => {
    const paths = names.map((n) => `${ovmfDir}/${n}`);
    return paths.find((p) => existsSync(p)) ?? paths[0] ?? '';
  };
  return {
    ovmfCode: pick('OVMF_CODE_4M.fd', 'OVMF_CODE.fd'),
    ovmfVars: pick('OVMF_VARS_4M.fd', 'OVMF_VARS.fd'),
    ovmfSecureBootCode: pick('OVMF_CODE_4M.secboot.fd', 'OVMF_CODE.secboot.fd'),
    ovmfSecureBootVars: pick('OVMF_VARS_4M.ms.fd', 'OVMF_VARS.ms.fd'),
  };
}

/**
 * Fills in what `given` leaves out. Without `given.accel` the accelerator
 * is probed by booting the test guest under KVM; any failure to probe
 * means TCG.
 */
export async function resolveNodeFacts(given: Partial<NodeFacts>, options: { logger: Logger; signal: AbortSignal; probeCache?: { file: string; fingerprint: string } }): Promise<ResolvedFacts> {
  const base = { qemuBinary: 'qemu-system-x86_64', hostCpus: cpus().length, ...ovmfDefaults() };
  const partial = { ...base, ...given };
  if (given.accel !== undefined) {
    return { facts: { ...partial, accel: given.accel }, accelReason: `the agent was configured to use ${given.accel}` };
  }
  try {
    const guest = await ensureTestGuest({ signal: options.signal });
    const probe = await probeAccelerator({ kernel: guest.kernel, initrd: guest.initrd, readyMarker: TEST_GUEST_READY_MARKER, qemuBinary: partial.qemuBinary, signal: options.signal, ...(options.probeCache === undefined ? {} : { cache: options.probeCache }) });
    options.logger.info('accelerator chosen', { accel: probe.accel, reason: probe.reason });
    return { facts: { ...partial, accel: probe.accel }, accelReason: probe.reason };
  } catch (err) {
    if (options.signal.aborted) throw err;
    options.logger.warn('cannot probe KVM; guests run under TCG', { err });
    return { facts: { ...partial, accel: 'tcg' }, accelReason: `KVM could not be probed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** `7.2.22` from `qemu-system-x86_64 --version`; undefined when QEMU does not run. */
export async function qemuVersion(binary: string, signal: AbortSignal): Promise<string | undefined> {
  try {
    const out = await runTool(binary, ['--version'], { signal, timeoutMs: 10_000 });
    return /version (\d+\.\d+(?:\.\d+)?)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}
