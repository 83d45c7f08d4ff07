/**
 * What the source does about a migration that does not converge, as
 * KubeVirt's migration monitor in virt-launcher decides it: the
 * completion timeout (`completionTimeoutPerGiB` × the GiB of memory and
 * disks to copy, counted from the start) and the progress timeout (the
 * data remaining has not shrunk for `progressTimeout` seconds). At the
 * completion timeout a migration that may disrupt the workload switches
 * to post-copy when allowed, else pauses the guest (and gets twice the
 * time); otherwise, and when it is stuck, it is aborted with KubeVirt's
 * reason. Nothing is tracked once in post-copy: the guest runs on the
 * target and an abort would lose it. Pure: the source agent feeds it what
 * QEMU reports and carries out the answer.
 */
import { completionTimeoutSecondsOf } from '../../api/kinds/migration-config.js';

/** The settings of one migration that the source enforces (from the VMI's resolved `migrationConfiguration`). */
export interface ConvergenceSettings {
  allowAutoConverge: boolean;
  allowPostCopy: boolean;
  allowWorkloadDisruption: boolean;
  /** 0: no completion timeout. */
  completionTimeoutPerGiB: number;
  /** 0: no progress timeout. */
  progressTimeoutSeconds: number;
}

/** KubeVirt's `migrationState.mode`. */
export type MigrationMode = 'PreCopy' | 'PostCopy' | 'Paused';

/** What the source should do now. */
export type ConvergenceAction =
  | { kind: 'wait' }
  /** Switch to post-copy (`migrate-start-postcopy`); mode becomes PostCopy. */
  | { kind: 'post-copy' }
  /** Pause the guest so that the copy catches up; mode becomes Paused. */
  | { kind: 'pause' }
  /** Abort (`migrate_cancel`, roll back) with KubeVirt's reason. */
  | { kind: 'abort'; reason: string };

/** One migration's clock and progress watermark. */
export class ConvergenceMonitor {
  /** KubeVirt's acceptable completion time, in seconds (0: none); doubled once the guest is paused. */
  private acceptableSeconds: number;
  private lastProgressMs: number;
  private watermark: number | undefined;
  /** Post-copy was asked for: the completion timeout no longer aborts (the switch may wait for the disks to be in step). */
  private postCopyRequested = false;

  constructor(
    private readonly settings: ConvergenceSettings,
    /** Guest memory plus the disks to copy, in bytes. */
    dataBytes: number,
    private readonly startedMs: number,
  ) {
    this.acceptableSeconds = completionTimeoutSecondsOf(settings.completionTimeoutPerGiB, dataBytes);
    this.lastProgressMs = startedMs;
  }

  /** The completion timeout in seconds (0: none). */
  get completionTimeoutSeconds(): number {
    return this.acceptableSeconds;
  }

  /**
   * Takes a sample (`remainingBytes`: what is left to copy, undefined when
   * QEMU did not say) at `nowMs` in mode `mode` and answers what to do;
   * post-copy is answered once, and the caller switches as soon as the
   * memory migration runs.
   * Progress is the remaining data shrinking since the last sample, as
   * KubeVirt counts it (a new pre-copy pass grows it again).
   */
  observe(nowMs: number, remainingBytes: number | undefined, mode: MigrationMode): ConvergenceAction {
    if (remainingBytes !== undefined) {
      if (this.watermark === undefined || remainingBytes < this.watermark) this.lastProgressMs = nowMs;
      this.watermark = remainingBytes;
    }
    if (mode === 'PostCopy') return { kind: 'wait' };
    const elapsedSeconds = Math.floor((nowMs - this.startedMs) / 1000);
    const completionReached = this.acceptableSeconds > 0 && elapsedSeconds > this.acceptableSeconds;
    if (completionReached && this.settings.allowWorkloadDisruption && mode !== 'Paused' && !this.postCopyRequested) {
      if (this.settings.allowPostCopy) {
        this.postCopyRequested = true;
        return { kind: 'post-copy' };
      }
      // The guest stops dirtying memory: the copy completes; it gets twice the time before an abort.
      this.acceptableSeconds *= 2;
      return { kind: 'pause' };
    }
    const stuckSeconds = Math.floor((nowMs - this.lastProgressMs) / 1000);
    if (this.settings.progressTimeoutSeconds > 0 && stuckSeconds > this.settings.progressTimeoutSeconds) {
      return { kind: 'abort', reason: `Live migration stuck for ${stuckSeconds} sec and has been aborted` };
    }
    if (completionReached && !this.postCopyRequested) return { kind: 'abort', reason: `Live migration is not completed after ${this.acceptableSeconds} sec and has been aborted` };
    return { kind: 'wait' };
  }
}

/** A migration the source aborted itself (a timeout): its message is KubeVirt's reason, as is. */
export class ConvergenceAbort extends Error {}
