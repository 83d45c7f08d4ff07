/**
 * Equality and copying for parsed JSON values, the two operations every
 * patch algorithm needs. Values are plain JSON (no Dates, Maps or cycles).
 */
import { isPlainObject } from '../object.js';

/** Structural equality of JSON values; object key order does not matter. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (isPlainObject(a)) {
    if (!isPlainObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    for (const k of keys) if (!Object.hasOwn(b, k) || !jsonEqual(a[k], b[k])) return false;
    return true;
  }
  return false;
}

/** A deep copy of a JSON value, so patches never alias or mutate their inputs. */
export function jsonClone<T>(value: T): T {
  if (Array.isArray(value)) return value.map(jsonClone) as T;
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) setField(out, k, jsonClone(v));
    return out as T;
  }
  return value;
}

/**
 * Sets an own property even for the key `__proto__`, which plain assignment
 * would turn into a prototype change: patch keys come from clients.
 */
export function setField(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}

/** Short JSON for error messages. */
export function preview(value: unknown, max = 120): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
