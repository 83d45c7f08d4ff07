/**
 * Reading the kernel's small text files the scrape takes its counters from
 * (`/proc`, cgroup stat files): read whole, synchronously (they are a few
 * hundred bytes and served from memory), a missing file as undefined.
 */
import { readFileSync } from 'node:fs';

/** The text of `file`, or undefined when it cannot be read (a process or cgroup that is gone, a controller that is off). */
export function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** `key value` lines (cgroup stat files) as numbers. */
export function keyedNumbers(text: string | undefined): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key !== undefined && value !== undefined) values.set(key, Number(value));
  }
  return values;
}
