/**
 * A minimal protobuf writer for tests: enough to build the messages and
 * envelopes the decoder reads, field by field, including malformed ones.
 */

/** A varint's bytes; negative numbers are written as 64-bit two's complement (10 bytes), as Go writes negative ints. */
export function varint(value: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Buffer.from(out);
}

function tag(field: number, wireType: number): Buffer {
  return varint(field * 8 + wireType);
}

/** A varint field (int32, int64, bool). */
export function num(field: number, value: number | bigint | boolean): Buffer {
  return Buffer.concat([tag(field, 0), varint(typeof value === 'boolean' ? (value ? 1 : 0) : value)]);
}

/** A length-delimited field holding text or bytes. */
export function str(field: number, value: string | Uint8Array): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  return Buffer.concat([tag(field, 2), varint(bytes.length), bytes]);
}

/** A length-delimited field holding a message made of `parts`. */
export function msg(field: number, ...parts: Buffer[]): Buffer {
  return str(field, Buffer.concat(parts));
}

/** One entry of a `map<string, string|bytes>` field. */
export function entry(field: number, key: string, value: string | Uint8Array): Buffer {
  return msg(field, str(1, key), str(2, value));
}

/** A fixed 64-bit field (no Kubernetes field we decode uses one: it exercises skipping). */
export function fixed64(field: number): Buffer {
  return Buffer.concat([tag(field, 1), Buffer.alloc(8)]);
}

/** A fixed 32-bit field. */
export function fixed32(field: number): Buffer {
  return Buffer.concat([tag(field, 5), Buffer.alloc(4)]);
}

/** A raw tag with any wire type, for malformed input. */
export function rawTag(field: number, wireType: number): Buffer {
  return tag(field, wireType);
}

/** The `k8s\0` magic and a `runtime.Unknown` around `raw`, written as client-go writes it (empty strings included). */
export function envelope(apiVersion: string, kind: string, raw: Buffer, options: { contentEncoding?: string; contentType?: string } = {}): Buffer {
  return Buffer.concat([
    Buffer.from('k8s\x00', 'latin1'),
    msg(1, str(1, apiVersion), str(2, kind)),
    str(2, raw),
    str(3, options.contentEncoding ?? ''),
    str(4, options.contentType ?? ''),
  ]);
}
