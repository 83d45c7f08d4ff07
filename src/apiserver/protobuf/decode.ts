/**
 * A table-driven decoder from a protobuf message to the plain object
 * Kubernetes' JSON encoding gives for the same Go value. The tables
 * (`messages.ts`) say, per field, its number, its type and how Go's
 * `encoding/json` treats it when it holds its zero value.
 */
import { WireReader, WireType, fieldOf, malformed, wireTypeOf } from './wire.js';

/** Scalar protobuf types the Kubernetes messages we decode use. */
export type ScalarType = 'string' | 'bytes' | 'bool' | 'int32' | 'int64';

/**
 * What a field holds. `time` is meta/v1 `Time` (RFC 3339 in seconds, UTC);
 * `intOrString` is util/intstr `IntOrString`; `fieldsV1` is meta/v1
 * `FieldsV1`, whose bytes are JSON.
 */
export type FieldType = ScalarType | 'time' | 'intOrString' | 'fieldsV1' | MessageSpec;

/**
 * How Go's `encoding/json` writes the field (which is what a client's
 * `-o json` shows and what a JSON client would have sent):
 * - `omitempty`: left out when zero (`""`, 0, false, empty, zero time);
 * - `pointer`: written when it was on the wire, even when zero (proto2 `optional` into a Go pointer);
 * - `always`: written even when zero or absent (no `omitempty`, or a struct, which `omitempty` never drops).
 */
export type Presence = 'omitempty' | 'pointer' | 'always';

/** One field of a message. `map` fields are `map<string, type>`. */
export interface FieldSpec {
  readonly json: string;
  readonly number: number;
  readonly type: FieldType;
  readonly presence: Presence;
  readonly label: 'single' | 'repeated' | 'map';
}

/** A message: its fields in Go struct order, which is the JSON key order. */
export interface MessageSpec {
  readonly name: string;
  readonly fields: readonly FieldSpec[];
  /** Field index by field number, for the per-tag lookup. */
  readonly byNumber: readonly (number | undefined)[];
}

/** Declares a message; `fields` in Go struct order. */
export function message(name: string, fields: readonly FieldSpec[]): MessageSpec {
  const byNumber: (number | undefined)[] = [];
  fields.forEach((f, i) => {
    if (byNumber[f.number] !== undefined) throw new Error(`${name}: field number ${f.number} is declared twice`);
    // Packed repeated scalars and message-valued maps never occur in the kinds we decode, so the reader does not handle them.
    if (f.label === 'repeated' && isVarintType(f.type)) throw new Error(`${name}.${f.json}: repeated numeric fields are not supported`);
    if (f.label === 'map' && f.type !== 'string' && f.type !== 'bytes') throw new Error(`${name}.${f.json}: maps hold strings or bytes only`);
    byNumber[f.number] = i;
  });
  return { name, fields, byNumber };
}

/** A field declaration; `label` defaults to `single`. */
export function field(json: string, number: number, type: FieldType, presence: Presence, label: FieldSpec['label'] = 'single'): FieldSpec {
  return { json, number, type, presence, label };
}

/** Decoded values of one message, by field index, before the JSON rules apply. Kept open so repeats merge, as in protobuf. */
type Slots = unknown[];

/** Decodes the message in `reader` and returns its JSON form. */
export function decodeMessage(reader: WireReader, spec: MessageSpec): Record<string, unknown> {
  return toJson(readInto(reader, spec, []), spec);
}

function readInto(reader: WireReader, spec: MessageSpec, slots: Slots): Slots {
  while (!reader.done) {
    const at = reader.offset;
    const tag = reader.tag();
    const index = spec.byNumber[fieldOf(tag)];
    const f = index === undefined ? undefined : spec.fields[index];
    if (index === undefined || f === undefined) {
      // Unknown fields are skipped, as Kubernetes' generated decoders do.
      reader.skip(wireTypeOf(tag));
      continue;
    }
    const expected = f.label === 'single' && isVarintType(f.type) ? WireType.varint : WireType.lengthDelimited;
    if (wireTypeOf(tag) !== expected) {
      throw malformed(`${spec.name}.${f.json} (field ${f.number}) has wire type ${wireTypeOf(tag)}, expected ${expected}`, at);
    }
    if (f.label === 'map') {
      const entries = (slots[index] ??= new Map<string, unknown>()) as Map<string, unknown>;
      readMapEntry(reader.message(), f, entries);
    } else if (f.label === 'repeated') {
      const items = (slots[index] ??= []) as unknown[];
      items.push(typeof f.type === 'object' ? decodeMessage(reader.message(), f.type) : readValue(reader, f.type));
    } else if (typeof f.type === 'object') {
      const nested = (slots[index] ??= []) as Slots;
      readInto(reader.message(), f.type, nested);
    } else {
      slots[index] = readValue(reader, f.type);
    }
  }
  return slots;
}

function isVarintType(type: FieldType): boolean {
  return type === 'bool' || type === 'int32' || type === 'int64';
}

/** A map entry is a message with the key as field 1 and the value as field 2; either may be absent (then zero). */
function readMapEntry(reader: WireReader, f: FieldSpec, entries: Map<string, unknown>): void {
  if (typeof f.type === 'object') throw new Error(`map ${f.json}: message values are not supported`);
  let key = '';
  // Go decodes an absent map value as "" (string) or an empty slice (bytes), both "" in JSON.
  let value: unknown = '';
  while (!reader.done) {
    const at = reader.offset;
    const tag = reader.tag();
    const number = fieldOf(tag);
    if (number !== 1 && number !== 2) {
      reader.skip(wireTypeOf(tag));
      continue;
    }
    if (wireTypeOf(tag) !== WireType.lengthDelimited) throw malformed(`an entry of map ${f.json} has a ${number === 1 ? 'key' : 'value'} of wire type ${wireTypeOf(tag)}`, at);
    if (number === 1) key = reader.string();
    else value = readValue(reader, f.type);
  }
  entries.set(key, value);
}

function readValue(reader: WireReader, type: Exclude<FieldType, MessageSpec>): unknown {
  switch (type) {
    case 'string':
      return reader.string();
    case 'bytes':
      return reader.bytes().toString('base64');
    case 'bool':
      return reader.bool();
    case 'int32':
      return reader.int32();
    case 'int64':
      return reader.int64();
    case 'time':
      return readTime(reader.message());
    case 'intOrString':
      return readIntOrString(reader.message());
    case 'fieldsV1':
      return readFieldsV1(reader.message());
  }
}

/** Go's zero time: `time.Unix` of this many seconds is year 1, January 1, which `Time` writes as `null`. */
const goZeroTimeSeconds = -62135596800;

/** meta/v1 `Time` {seconds = 1, nanos = 2}; JSON keeps whole seconds in UTC, and the zero time (an empty message) is null. */
function readTime(reader: WireReader): string | null {
  const start = reader.offset;
  let seconds = 0;
  let nanos = 0;
  let empty = true;
  while (!reader.done) {
    empty = false;
    const at = reader.offset;
    const tag = reader.tag();
    const number = fieldOf(tag);
    if (number === 1 || number === 2) {
      if (wireTypeOf(tag) !== WireType.varint) throw malformed(`a Time has a ${number === 1 ? 'seconds' : 'nanos'} field of wire type ${wireTypeOf(tag)}`, at);
      if (number === 1) seconds = reader.int64();
      else nanos = reader.int32();
    } else {
      reader.skip(wireTypeOf(tag));
    }
  }
  // Go's time.Unix carries nanos outside [0, 1e9) into the seconds.
  const whole = seconds + Math.floor(nanos / 1e9);
  if (empty || (whole === goZeroTimeSeconds && nanos % 1e9 === 0)) return null;
  const date = new Date(whole * 1000);
  const year = date.getUTCFullYear();
  if (Number.isNaN(year) || year < 1 || year > 9999) throw malformed(`a Time of ${whole} seconds is outside years 1 to 9999`, start);
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** util/intstr `IntOrString` {type = 1 (0 int, 1 string), intVal = 2, strVal = 3}. */
function readIntOrString(reader: WireReader): number | string {
  const start = reader.offset;
  let type = 0;
  let intVal = 0;
  let strVal = '';
  while (!reader.done) {
    const at = reader.offset;
    const tag = reader.tag();
    const number = fieldOf(tag);
    const wireType = wireTypeOf(tag);
    if (number === 1 && wireType === WireType.varint) type = reader.int64();
    else if (number === 2 && wireType === WireType.varint) intVal = reader.int32();
    else if (number === 3 && wireType === WireType.lengthDelimited) strVal = reader.string();
    else if (number <= 3) throw malformed(`an IntOrString has field ${number} of wire type ${wireType}`, at);
    else reader.skip(wireType);
  }
  if (type === 0) return intVal;
  if (type === 1) return strVal;
  throw malformed(`an IntOrString has type ${type}; only 0 (int) and 1 (string) exist`, start);
}

/** meta/v1 `FieldsV1` {Raw = 1}: the bytes are the JSON value itself. */
function readFieldsV1(reader: WireReader): unknown {
  const start = reader.offset;
  let raw: Buffer | undefined;
  while (!reader.done) {
    const at = reader.offset;
    const tag = reader.tag();
    if (fieldOf(tag) !== 1) {
      reader.skip(wireTypeOf(tag));
      continue;
    }
    if (wireTypeOf(tag) !== WireType.lengthDelimited) throw malformed(`a FieldsV1 has Raw of wire type ${wireTypeOf(tag)}`, at);
    raw = reader.bytes();
  }
  if (raw === undefined) return null;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw malformed('a managedFields entry has fieldsV1 that is not JSON', start);
  }
}

/** Applies the JSON rules to decoded slots, in struct order. */
function toJson(slots: Slots, spec: MessageSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  spec.fields.forEach((f, i) => {
    const slot = slots[i];
    if (f.label === 'map') {
      const entries = slot instanceof Map ? slot : undefined;
      // Object.fromEntries defines keys as own properties, so a label named "__proto__" stays data, as JSON.parse keeps it.
      if (entries !== undefined && entries.size > 0) out[f.json] = Object.fromEntries(entries);
      else if (f.presence === 'always') out[f.json] = null;
      return;
    }
    if (f.label === 'repeated') {
      if (Array.isArray(slot) && slot.length > 0) out[f.json] = slot;
      else if (f.presence === 'always') out[f.json] = null;
      return;
    }
    if (typeof f.type === 'object') {
      if (Array.isArray(slot)) out[f.json] = toJson(slot, f.type);
      else if (f.presence === 'always') out[f.json] = toJson([], f.type);
      return;
    }
    if (slot === undefined) {
      if (f.presence === 'always') out[f.json] = zeroValue(f.type);
      return;
    }
    if (f.presence === 'omitempty' && isZero(slot)) return;
    out[f.json] = slot;
  });
  return out;
}

function zeroValue(type: Exclude<FieldType, MessageSpec>): unknown {
  switch (type) {
    case 'string':
      return '';
    case 'bool':
      return false;
    case 'int32':
    case 'int64':
    case 'intOrString':
      return 0;
    case 'bytes':
    case 'time':
    case 'fieldsV1':
      return null;
  }
}

function isZero(value: unknown): boolean {
  return value === '' || value === 0 || value === false || value === null;
}
