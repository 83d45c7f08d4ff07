/**
 * What the migration controller needs to end a migration cleanly when
 * something failed under it: a bound on how long it waits for an agent
 * that may be gone (a cut-off or dead target answers nothing, and the
 * agent call's own timeout is minutes), and the mark of a source that was
 * not cleaned up after the switch-over, kept on the migration until a
 * later pass gets the source agent to quit its paused QEMU.
 */

/**
 * How long a failing migration waits for each agent to clean up before
 * it is marked Failed anyway. The target agent removes a target it no
 * longer owns by itself (src/agent/migration/target-janitor.ts) once it
 * can read the VMI again, so nothing stays behind for not waiting longer.
 */
export const cleanupWaitMs = 10_000;

/**
 * How long a running migration waits for a source agent that does not
 * answer (it restarts, or its host is briefly out of reach) before it is
 * failed. QEMU runs on meanwhile; a restarted agent takes the migration
 * over (src/agent/migration/source.ts `adopt`).
 */
export const sourceSilenceLimitMs = 60_000;

/** Set on a Succeeded migration whose source has not yet quit its QEMU (the value says why); removed once it has. */
export const sourceCleanupAnnotation = 'vireo.io/migration-source-cleanup';

/** `work`'s outcome, or a rejection saying what did not answer once `ms` passed (the work itself runs on). */
export async function within<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => { reject(new Error(`${what} did not answer within ${ms / 1000} s`)); }, ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
