/** The import's progress on its PVC, written at most once per interval and never two writes at a time. */
import { cdiAnnotations } from './annotations.js';

/** Writes the progress annotation at most once per interval, never two writes at a time. */
export class ProgressWriter {
  private lastWrite = 0;
  private latest: number | undefined;
  private written: number | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    private readonly write: (annotations: Record<string, string>) => Promise<void>,
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  report(percent: number): void {
    this.latest = percent;
    if (this.inFlight !== undefined || this.now() - this.lastWrite < this.intervalMs) return;
    this.inFlight = this.send().finally(() => { this.inFlight = undefined; });
  }

  async flush(): Promise<void> {
    await this.inFlight;
  }

  private async send(): Promise<void> {
    const percent = this.latest;
    if (percent === undefined || percent === this.written) return;
    this.lastWrite = this.now();
    this.written = percent;
    try {
      await this.write({ [cdiAnnotations.progress]: percent.toFixed(2) });
    } catch {
      // Progress is advisory: the next report tries again.
      this.written = undefined;
    }
  }
}
