/** The VM controller's options, resolved once at construction. */
import type { Informer } from '../../client/index.js';
import type { EventRecorder } from '../events/index.js';
import type { BackoffOptions } from './start-failure.js';

/** Tuning and seams of the VM controller; every field is optional. */
export interface VirtualMachineControllerOptions {
  /** VMs reconciled at once. Default 4. */
  concurrency?: number;
  /** Crash-loop backoff: first delay (KubeVirt: 10 s; it grows with the square of the failures). */
  crashLoopBaseMs?: number;
  /** Crash-loop backoff ceiling (KubeVirt: 5 min). */
  crashLoopMaxMs?: number;
  /** [0, 1) source for the backoff jitter. */
  random?: () => number;
  now?: () => number;
  /** Shared caches; the controller starts them if needed but stops only those it made. */
  vmInformer?: Informer;
  vmiInformer?: Informer;
  /** Shared DataVolume cache (`dataVolumeTemplates`). */
  dataVolumeInformer?: Informer;
  /** Where events go; by default one of the controller's own (`virtualmachine-controller`). */
  recorder?: EventRecorder;
}

/** The options with every default filled in. */
export interface CompiledOptions {
  concurrency: number;
  backoff: BackoffOptions;
  now: () => number;
}

/** Fills in the defaults, once, at construction. */
export function compileOptions(options: VirtualMachineControllerOptions): CompiledOptions {
  return {
    concurrency: options.concurrency ?? 4,
    backoff: { baseMs: options.crashLoopBaseMs ?? 10_000, maxMs: options.crashLoopMaxMs ?? 300_000, random: options.random ?? Math.random },
    now: options.now ?? Date.now,
  };
}
