/**
 * Typed reads of a VMI spec with field paths. The spec passed admission, so
 * a wrongly typed field here means a bug or an older object; either way it
 * is reported against its path instead of being cast or silently ignored.
 */
import { invalidDomain } from './errors.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** One field of the spec: its value (possibly absent) and its path. */
export class SpecNode {
  constructor(
    readonly value: unknown,
    readonly path: string,
  ) {}

  /** The child field `key` (absent children read as undefined). */
  get(key: string): SpecNode {
    return new SpecNode(isRecord(this.value) ? this.value[key] : undefined, `${this.path}.${key}`);
  }

  /** True when the field is set (not undefined or null). */
  get present(): boolean {
    return this.value !== undefined && this.value !== null;
  }

  /** The keys of an object field; none when absent. */
  keys(): string[] {
    if (!this.present) return [];
    if (!isRecord(this.value)) throw invalidDomain(this.path, 'must be an object');
    return Object.keys(this.value).filter((key) => this.get(key).present);
  }

  string(): string | undefined {
    if (!this.present) return undefined;
    if (typeof this.value !== 'string') throw invalidDomain(this.path, 'must be a string');
    return this.value;
  }

  boolean(): boolean | undefined {
    if (!this.present) return undefined;
    if (typeof this.value !== 'boolean') throw invalidDomain(this.path, 'must be true or false');
    return this.value;
  }

  /** A whole number within [min, max]. */
  integer(min: number, max: number): number | undefined {
    if (!this.present) return undefined;
    if (typeof this.value !== 'number' || !Number.isInteger(this.value)) throw invalidDomain(this.path, 'must be a whole number');
    if (this.value < min || this.value > max) throw invalidDomain(this.path, `${this.value} is out of range: it must be between ${min} and ${max}`);
    return this.value;
  }

  /** One of `allowed`; anything else is reported with the list. */
  oneOf<T extends string>(allowed: readonly T[]): T | undefined {
    const value = this.string();
    if (value === undefined) return undefined;
    const found = allowed.find((candidate) => candidate === value);
    if (found === undefined) throw invalidDomain(this.path, `"${value}" is not supported: use one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
    return found;
  }

  /** The elements of an array field, each with its indexed path. */
  items(): SpecNode[] {
    if (!this.present) return [];
    if (!Array.isArray(this.value)) throw invalidDomain(this.path, 'must be a list');
    const list: unknown[] = this.value;
    return list.map((item, index) => new SpecNode(item, `${this.path}[${index}]`));
  }

  /**
   * KubeVirt's `FeatureState`-like toggles: absent → `fallback`, `{}` or
   * `{enabled: true}` → true, `{enabled: false}` → false.
   */
  enabled(fallback: boolean, key = 'enabled'): boolean {
    if (!this.present) return fallback;
    return this.get(key).boolean() ?? true;
  }
}
