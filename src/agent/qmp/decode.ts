/**
 * Small decoders that turn parsed JSON into typed values or fail with the
 * path of the first mismatch: QMP's wire format is checked here before any
 * of it is trusted. Unknown object keys are dropped, not rejected, because
 * newer QEMUs add fields to replies and events.
 */

/** A value that failed its schema; `path` is where, e.g. `return[0].thread-id`. */
export class DecodeError extends Error {
  readonly path: string;

  constructor(path: string, expected: string, actual: unknown) {
    super(`${path}: expected ${expected}, got ${describe(actual)}`);
    this.name = 'DecodeError';
    this.path = path;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Checks `value` (found at `path`) and returns it typed, or throws `DecodeError`. */
export type Decoder<T> = (value: unknown, path: string) => T;

/** The type a decoder produces. */
export type Decoded<D> = D extends Decoder<infer T> ? T : never;

export const string: Decoder<string> = (value, path) => {
  if (typeof value !== 'string') throw new DecodeError(path, 'a string', value);
  return value;
};

export const boolean: Decoder<boolean> = (value, path) => {
  if (typeof value !== 'boolean') throw new DecodeError(path, 'a boolean', value);
  return value;
};

export const integer: Decoder<number> = (value, path) => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new DecodeError(path, 'an integer', value);
  return value;
};

/** Any finite number (a QAPI `number`, which QEMU may write with a fraction). */
export const number: Decoder<number> = (value, path) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new DecodeError(path, 'a number', value);
  return value;
};

/** One of a fixed set of strings (a QAPI enum). */
export function oneOf<T extends string>(...allowed: T[]): Decoder<T> {
  return (value, path) => {
    const found = allowed.find((candidate) => candidate === value);
    if (found === undefined) throw new DecodeError(path, `one of ${allowed.join('|')}`, value);
    return found;
  };
}

export function array<T>(item: Decoder<T>): Decoder<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) throw new DecodeError(path, 'an array', value);
    const list: unknown[] = value;
    return list.map((element, index) => item(element, `${path}[${index}]`));
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Any JSON object, unchecked inside (for data Vireo passes on without reading). */
export const record: Decoder<Record<string, unknown>> = (value, path) => {
  if (!isRecord(value)) throw new DecodeError(path, 'an object', value);
  return value;
};

type Fields = Record<string, Decoder<unknown>>;
type Required<R extends Fields> = { [K in keyof R]: Decoded<R[K]> };
type Optional<O extends Fields> = { [K in keyof O]?: Decoded<O[K]> };

/** An object with `required` and `optional` members; other members are dropped. */
export function object<R extends Fields>(required: R): Decoder<Required<R>>;
export function object<R extends Fields, O extends Fields>(required: R, optional: O): Decoder<Required<R> & Optional<O>>;
export function object(required: Fields, optional: Fields = {}): Decoder<Record<string, unknown>> {
  return (value, path) => {
    if (!isRecord(value)) throw new DecodeError(path, 'an object', value);
    const out: Record<string, unknown> = {};
    for (const [key, decode] of Object.entries(required)) {
      out[key] = decode(value[key], `${path}.${key}`);
    }
    for (const [key, decode] of Object.entries(optional)) {
      if (value[key] !== undefined) out[key] = decode(value[key], `${path}.${key}`);
    }
    return out;
  };
}

/** Any JSON value, unchecked: for replies whose shape depends on the arguments (`qom-get`), decoded by the caller that knows it. */
export const anyValue: Decoder<unknown> = (value) => value;

/** `{}`: what most QMP commands return. */
export const empty = object({});
