/**
 * How the node's nftables controllers (network policy, services) reprogram
 * their table: `schedule` coalesces changes over a debounce window, a change
 * arriving while a run is under way runs it once more afterwards, and
 * nothing runs before `start` (a table compiled before every informer has
 * listed would see part of the cluster) or after `stop`. The run reports
 * its own failures: a failed run waits for the next change.
 */
export class CoalescedSync {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private stopped = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly debounceMs: number,
  ) {}

  /** Allows runs from now on and runs once (nothing when already stopped). */
  async start(): Promise<void> {
    if (this.stopped) return;
    this.started = true;
    await this.now();
  }

  /** A run within the debounce window. */
  schedule(): void {
    if (!this.started || this.stopped || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.now();
    }, this.debounceMs);
  }

  /** Runs now; during a run, once more after it. */
  async now(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.run();
      } while (this.again && !this.stopped);
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  /** No run after this; waits for the one under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
