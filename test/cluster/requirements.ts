/**
 * What the lab cluster tests need on the machine: the reason to skip them
 * when something is missing, or false.
 */
import { kubectlBinary } from '../../src/testing/kubectl.js';
import { hasBinary } from '../../src/testing/binaries.js';

/** Why the lab tests cannot run here (QEMU, nsenter or kubectl missing), or false. */
export const labSkip: string | false = !hasBinary('qemu-system-x86_64') ? 'qemu-system-x86_64 is not installed (the agents check QEMU at start)' : !hasBinary('nsenter') ? 'nsenter is not installed' : kubectlBinary() === undefined ? 'kubectl is not installed' : false;
