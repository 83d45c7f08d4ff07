/**
 * What the lab cluster tests need on the machine: the reason to skip them
 * when something is missing, or false.
 */
import { execFileSync } from 'node:child_process';
import { kubectlBinary } from '../../src/testing/kubectl.js';

function has(binary: string): boolean {
  try {
    execFileSync('which', [binary]);
    return true;
  } catch {
    return false;
  }
}

/** Why the lab tests cannot run here (QEMU, nsenter or kubectl missing), or false. */
export const labSkip: string | false = !has('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (the agents check QEMU at start)' : !has('nsenter') ? 'nsenter is not installed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;
