/**
 * The files a scrape reads again and again (`/proc/<pid>/…`, a cgroup's
 * stat files), each read through a descriptor kept open between scrapes:
 * reading a seq_file from offset 0 makes the kernel write it afresh, and
 * skips the path walk through /proc of an open, which costs more than the
 * read itself (about a third of the time of open, read and close).
 * Node raises its descriptor limit to the hard limit at start, so a few
 * descriptors per guest are cheap.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';

/** One read's buffer, shared: reads are synchronous. A file that fills it is read whole the plain way. */
const buffer = Buffer.alloc(64 * 1024);

/** Descriptors of one guest's files, by path; {@link close} when the guest is gone. */
export class KeptFiles {
  private readonly fds = new Map<string, number>();

  /** The file's text now, or undefined when it cannot be opened or read (the process is gone). */
  read(path: string): string | undefined {
    try {
      let fd = this.fds.get(path);
      if (fd === undefined) {
        fd = openSync(path, 'r');
        this.fds.set(path, fd);
      }
      const length = readSync(fd, buffer, 0, buffer.length, 0);
      return length < buffer.length ? buffer.toString('utf8', 0, length) : readFileSync(path, 'utf8');
    } catch {
      this.forget(path);
      return undefined;
    }
  }

  /** Closes every descriptor. */
  close(): void {
    for (const path of [...this.fds.keys()]) this.forget(path);
  }

  private forget(path: string): void {
    const fd = this.fds.get(path);
    if (fd === undefined) return;
    this.fds.delete(path);
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
}
