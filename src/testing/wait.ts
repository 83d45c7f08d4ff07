/** Waiting on conditions with a deadline: the only way tests synchronise. */

export async function eventually<T>(probe: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const started = Date.now();
  const deadline = started + (options.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) {
        reportWait(options.what, started);
        return value;
      }
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out waiting for ${options.what ?? 'a condition'} (last: ${detail})`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
  }
}

/** With VIREO_TEST_TIMING set, says on stderr how long each wait of a second or more took: where a slow test spends its time. */
function reportWait(what: string | undefined, started: number): void {
  const waited = Date.now() - started;
  if (process.env.VIREO_TEST_TIMING !== undefined && waited >= 1000) process.stderr.write(`[wait ${(waited / 1000).toFixed(1)} s] ${what ?? 'a condition'}\n`);
}
