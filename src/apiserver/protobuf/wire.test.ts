import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.js';
import { fixed32, fixed64, num, rawTag, str, varint } from './encode.js';
import { WireReader, fieldOf, wireTypeOf } from './wire.js';

function reader(...parts: Buffer[]): WireReader {
  return new WireReader(Buffer.concat(parts));
}

/** Asserts `fn` throws a 400 ApiError whose message matches `pattern`. */
function assertMalformed(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApiError, `expected an ApiError, got ${String(err)}`);
    assert.equal(err.httpCode, 400);
    assert.match(err.message, /^the protobuf request body is malformed: /);
    assert.match(err.message, pattern);
    return true;
  });
}

test('varints of every length decode exactly, small ones as numbers', () => {
  for (const value of [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, 2 ** 32, 2 ** 48, 2 ** 49 - 1]) {
    assert.equal(new WireReader(varint(value)).varint(), value, `varint ${value}`);
  }
  for (const value of [2n ** 49n, 2n ** 56n + 5n, 2n ** 63n, 2n ** 64n - 1n]) {
    assert.equal(new WireReader(varint(value)).varint(), value, `varint ${value}`);
  }
});

test('int32 and int64 read negative values from 10-byte varints, as Go writes them', () => {
  assert.equal(new WireReader(varint(-1)).int32(), -1);
  assert.equal(new WireReader(varint(-2_147_483_648)).int32(), -2_147_483_648);
  assert.equal(new WireReader(varint(2_147_483_647)).int32(), 2_147_483_647);
  // Go's decoder keeps the low 32 bits of a longer varint.
  assert.equal(new WireReader(varint(2 ** 32 + 7)).int32(), 7);
  assert.equal(new WireReader(varint(-1)).int64(), -1);
  assert.equal(new WireReader(varint(-62_135_596_800)).int64(), -62_135_596_800);
  assert.equal(new WireReader(varint(Number.MAX_SAFE_INTEGER)).int64(), Number.MAX_SAFE_INTEGER);
  assert.equal(new WireReader(varint(Number.MIN_SAFE_INTEGER)).int64(), Number.MIN_SAFE_INTEGER);
});

test('int64 values JSON numbers cannot hold exactly are refused', () => {
  assertMalformed(() => new WireReader(varint(2n ** 53n)).int64(), /outside the range/);
  assertMalformed(() => new WireReader(varint(-(2n ** 60n))).int64(), /outside the range/);
});

test('bool is any non-zero varint', () => {
  assert.equal(new WireReader(varint(0)).bool(), false);
  assert.equal(new WireReader(varint(1)).bool(), true);
  assert.equal(new WireReader(varint(2n ** 63n)).bool(), true);
});

test('tags split into field number and wire type', () => {
  const r = reader(num(5, 1), str(300, 'x'));
  const first = r.tag();
  assert.deepEqual([fieldOf(first), wireTypeOf(first)], [5, 0]);
  r.skip(wireTypeOf(first));
  const second = r.tag();
  assert.deepEqual([fieldOf(second), wireTypeOf(second)], [300, 2]);
  assert.equal(r.string(), 'x');
  assert.equal(r.done, true);
});

test('length-delimited fields read as text, bytes or a sub-reader, without reading past their end', () => {
  const r = reader(str(1, 'héllo'), str(2, Buffer.from([0, 1, 255])), str(3, Buffer.concat([num(1, 42)])), num(4, 9));
  r.tag();
  assert.equal(r.string(), 'héllo');
  r.tag();
  assert.deepEqual([...r.bytes()], [0, 1, 255]);
  r.tag();
  const sub = r.message();
  sub.tag();
  assert.equal(sub.varint(), 42);
  assert.equal(sub.done, true);
  r.tag();
  assert.equal(r.varint(), 9);
  assert.equal(r.done, true);
});

test('invalid UTF-8 becomes U+FFFD, as Go writes it in JSON', () => {
  const r = reader(str(1, Buffer.from([0x61, 0xff, 0x62])));
  r.tag();
  assert.equal(r.string(), 'a\ufffdb');
});

test('skip passes over every wire type Kubernetes uses', () => {
  const r = reader(num(1, 2n ** 63n), fixed64(2), str(3, 'abc'), fixed32(4), num(5, 7));
  for (let i = 0; i < 4; i++) r.skip(wireTypeOf(r.tag()));
  r.tag();
  assert.equal(r.varint(), 7);
  assert.equal(r.done, true);
});

test('malformed input is a 400 that says what and where', () => {
  assertMalformed(() => new WireReader(Buffer.from([0x80, 0x80])).varint(), /ends inside a varint \(at byte 0\)/);
  assertMalformed(() => new WireReader(Buffer.alloc(11, 0xff)).varint(), /longer than 10 bytes/);
  assertMalformed(() => reader(rawTag(0, 0)).tag(), /field number 0 is out of range/);
  assertMalformed(() => reader(varint(2n ** 33n)).tag(), /larger than 32 bits/);
  assertMalformed(() => { reader(rawTag(1, 3)).skip(3); }, /wire type 3 is not one Kubernetes uses/);
  assertMalformed(() => { reader(rawTag(1, 6)).skip(6); }, /wire type 6/);
  const r = reader(rawTag(1, 2), varint(5), Buffer.from('abc'));
  r.tag();
  assertMalformed(() => r.string(), /a length of 5 bytes runs past the end of its message \(at byte 1\)/);
  const huge = reader(rawTag(1, 2), varint(2n ** 60n));
  huge.tag();
  assertMalformed(() => huge.bytes(), /runs past the end/);
  const fixed = reader(rawTag(1, 1), Buffer.alloc(7));
  const fixedTag = fixed.tag();
  assertMalformed(() => { fixed.skip(wireTypeOf(fixedTag)); }, /a fixed field of 8 bytes runs past the end/);
  const short = reader(rawTag(1, 5), Buffer.alloc(3));
  const shortTag = short.tag();
  assertMalformed(() => { short.skip(wireTypeOf(shortTag)); }, /a fixed field of 4 bytes runs past the end/);
});
