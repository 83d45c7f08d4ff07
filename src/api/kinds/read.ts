/**
 * Typed reads from untyped JSON. Objects reach printers and validators as
 * `KObject` with `unknown` fields; these helpers answer "is there a string
 * here?" without casts, so a malformed manifest yields an empty value, never
 * a crash.
 */
import { isPlainObject } from '../object.js';

/** A JSON object as a record, or undefined when `value` is anything else. */
export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isPlainObject(value) ? value : undefined;
}

/** The value at a path of object keys, or undefined when any step is missing. */
export function at(value: unknown, ...path: string[]): unknown {
  let current: unknown = value;
  for (const key of path) {
    const record = asRecord(current);
    if (record === undefined) return undefined;
    current = record[key];
  }
  return current;
}

/** A record at `path`, or undefined. */
export function recordAt(value: unknown, ...path: string[]): Record<string, unknown> | undefined {
  return asRecord(at(value, ...path));
}

/** An array at `path`; an empty array when absent or not an array. */
export function arrayAt(value: unknown, ...path: string[]): unknown[] {
  const found = at(value, ...path);
  return Array.isArray(found) ? (found as unknown[]) : [];
}

/**
 * The records of the array at `path`; an entry that is not an object reads
 * as `{}`, so indexes (and the field paths built from them) stay right.
 */
export function recordsAt(value: unknown, ...path: string[]): Record<string, unknown>[] {
  return arrayAt(value, ...path).map((item) => asRecord(item) ?? {});
}

/** A string at `path`, or undefined. */
export function stringAt(value: unknown, ...path: string[]): string | undefined {
  const found = at(value, ...path);
  return typeof found === 'string' ? found : undefined;
}

/** A number at `path`, or undefined. */
export function numberAt(value: unknown, ...path: string[]): number | undefined {
  const found = at(value, ...path);
  return typeof found === 'number' ? found : undefined;
}

/** A boolean at `path`, or undefined. */
export function booleanAt(value: unknown, ...path: string[]): boolean | undefined {
  const found = at(value, ...path);
  return typeof found === 'boolean' ? found : undefined;
}

/** True when `path` names a present, non-null value. */
export function has(value: unknown, ...path: string[]): boolean {
  const found = at(value, ...path);
  return found !== undefined && found !== null;
}

/** The string entries of a string map at `path` (labels, selectors); non-string values are skipped. */
export function stringMapAt(value: unknown, ...path: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(recordAt(value, ...path) ?? {})) {
    if (typeof item === 'string') out[key] = item;
  }
  return out;
}

/** Number of keys of the object at `path`; 0 when absent. */
export function keyCountAt(value: unknown, ...path: string[]): number {
  return Object.keys(recordAt(value, ...path) ?? {}).length;
}
