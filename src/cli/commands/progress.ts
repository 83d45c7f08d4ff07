/**
 * The transfer progress `vireo image-upload` shows: on a terminal, one line
 * redrawn in place (percent, a bar, bytes, rate); elsewhere (a pipe, a log,
 * CI) nothing until a single summary line at the end.
 */

/** `1536` → `1.5 KiB`; binary units, as virtctl's bar prints them. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`;
}

/** One redrawn line: ` 45% [=========>           ] 115.2 MiB / 256.0 MiB  38.4 MiB/s`. */
export function progressLine(done: number, total: number, elapsedMs: number, width = 30): string {
  const fraction = total <= 0 ? 1 : Math.min(1, done / total);
  const filled = Math.floor(fraction * width);
  const bar = filled >= width ? '='.repeat(width) : `${'='.repeat(filled)}>${' '.repeat(width - filled - 1)}`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `${percent} [${bar}] ${formatSize(done)} / ${formatSize(total)}  ${rate(done, elapsedMs)}`;
}

/** The summary line once a transfer ended. */
export function summaryLine(done: number, elapsedMs: number): string {
  return `${formatSize(done)} sent in ${(elapsedMs / 1000).toFixed(1)} s (${rate(done, elapsedMs)})`;
}

function rate(bytes: number, elapsedMs: number): string {
  return elapsedMs <= 0 ? '-' : `${formatSize(Math.round((bytes * 1000) / elapsedMs))}/s`;
}

/** Shows a transfer's progress on `out`: redrawn at most every 200 ms on a TTY, a summary line otherwise. */
export class Progress {
  private done = 0;
  private lastDraw = 0;
  private readonly started = Date.now();

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream,
  ) {}

  add(bytes: number): void {
    this.done += bytes;
    if (!this.out.isTTY) return;
    const now = Date.now();
    if (now - this.lastDraw < 200 && this.done < this.total) return;
    this.lastDraw = now;
    this.out.write(`\r${progressLine(this.done, this.total, now - this.started)}`);
  }

  /** Ends the line (TTY) or prints the summary. */
  finish(): void {
    const elapsed = Date.now() - this.started;
    if (this.out.isTTY) this.out.write(`\r${progressLine(this.done, this.total, elapsed)}\n`);
    else this.out.write(`${summaryLine(this.done, elapsed)}\n`);
  }
}
