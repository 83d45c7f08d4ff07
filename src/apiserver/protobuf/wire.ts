/**
 * A bounds-checked reader for the protobuf wire format: varints, 64-bit,
 * length-delimited and 32-bit fields. Every read checks the end of its
 * window, so malformed input ends in a 400 `ApiError`, never an exception
 * from the buffer or a loop that does not advance.
 */
import { ApiError, badRequest } from '../../api/errors.js';

/** Protobuf wire types (groups, 3 and 4, are not used by Kubernetes). */
export const WireType = {
  varint: 0,
  fixed64: 1,
  lengthDelimited: 2,
  fixed32: 5,
} as const;

export type WireType = (typeof WireType)[keyof typeof WireType];

const maxFieldNumber = 2 ** 29 - 1;

/** A 400 for a body that is not well-formed protobuf, saying where. */
export function malformed(detail: string, offset: number): ApiError {
  return badRequest(`the protobuf request body is malformed: ${detail} (at byte ${offset}); send the object as JSON instead if your client can`);
}

/** Reads fields from `buf[start, end)`; offsets in errors are positions in `buf`. */
export class WireReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  /** True when the window has been read to its end. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Where the next read starts. */
  get offset(): number {
    return this.pos;
  }

  /** A field's tag: `field << 3 | wireType`. Use `fieldOf` and `wireTypeOf` to split it. */
  tag(): number {
    const at = this.pos;
    const tag = this.varint();
    if (typeof tag === 'bigint' || tag > 0xffffffff) throw malformed('a field tag is larger than 32 bits', at);
    const field = Math.floor(tag / 8);
    if (field === 0 || field > maxFieldNumber) throw malformed(`field number ${field} is out of range`, at);
    return tag;
  }

  /**
   * An unsigned varint: a number when it has at most 7 bytes (below 2^49,
   * so exact), else an exact bigint. Kubernetes' integers are almost always
   * short, so the common case stays off the bigint path.
   */
  varint(): number | bigint {
    const at = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) {
      const b = this.byte(at);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    let big = BigInt(value);
    let shift = 49n;
    for (let i = 7; i < 10; i++) {
      const b = this.byte(at);
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, big);
      shift += 7n;
    }
    throw malformed('a varint is longer than 10 bytes', at);
  }

  /** An int32 field: the varint's low 32 bits, signed, as Go's decoder keeps them. */
  int32(): number {
    const v = this.varint();
    if (typeof v === 'bigint') return Number(BigInt.asIntN(32, v));
    return v % 2 ** 32 | 0;
  }

  /** An int64 field; values JSON numbers cannot hold exactly are refused. */
  int64(): number {
    const at = this.pos;
    const v = this.varint();
    if (typeof v === 'number') return v;
    const signed = BigInt.asIntN(64, v);
    if (signed > BigInt(Number.MAX_SAFE_INTEGER) || signed < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw malformed(`the integer ${signed} is outside the range this server stores exactly (±2^53)`, at);
    }
    return Number(signed);
  }

  bool(): boolean {
    const v = this.varint();
    return typeof v === 'bigint' ? v !== 0n : v !== 0;
  }

  /** A length-delimited field as a reader over its bytes. */
  message(): WireReader {
    const [start, end] = this.span();
    return new WireReader(this.buf, start, end);
  }

  /** A length-delimited field as UTF-8 text (invalid sequences become U+FFFD, as Go's JSON encoder writes them). */
  string(): string {
    const [start, end] = this.span();
    return this.buf.toString('utf8', start, end);
  }

  /** A length-delimited field's bytes, without copying. */
  bytes(): Buffer {
    const [start, end] = this.span();
    return this.buf.subarray(start, end);
  }

  /** Skips a field of `wireType` whose tag has been read. */
  skip(wireType: number): void {
    const at = this.pos;
    switch (wireType) {
      case WireType.varint:
        this.varint();
        return;
      case WireType.fixed64:
        this.advance(8, at);
        return;
      case WireType.lengthDelimited:
        this.span();
        return;
      case WireType.fixed32:
        this.advance(4, at);
        return;
      default:
        throw malformed(`wire type ${wireType} is not one Kubernetes uses`, at);
    }
  }

  private byte(fieldStart: number): number {
    const b = this.pos < this.end ? this.buf[this.pos] : undefined;
    if (b === undefined) throw malformed('the body ends inside a varint', fieldStart);
    this.pos++;
    return b;
  }

  private advance(n: number, fieldStart: number): void {
    if (this.end - this.pos < n) throw malformed(`a fixed field of ${n} bytes runs past the end of its message`, fieldStart);
    this.pos += n;
  }

  /** A length-delimited field's bounds in the buffer: `[start, end)`. */
  span(): [number, number] {
    const at = this.pos;
    const length = this.varint();
    if (typeof length === 'bigint' || length > this.end - this.pos) {
      throw malformed(`a length of ${length} bytes runs past the end of its message`, at);
    }
    const start = this.pos;
    this.pos += length;
    return [start, this.pos];
  }
}

/** The field number of a tag. */
export function fieldOf(tag: number): number {
  return Math.floor(tag / 8);
}

/** The wire type of a tag. */
export function wireTypeOf(tag: number): number {
  return tag & 7;
}
