import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { formBoundary, formField } from './upload-form.js';

function multipart(boundary: string, parts: { name: string; data: Buffer }[]): Buffer {
  const chunks: Buffer[] = [Buffer.from('preamble to ignore\r\n')];
  for (const part of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${part.name}"; filename="x.img"\r\nContent-Type: application/octet-stream\r\n\r\n`), part.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function* inPieces(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of stream) out.push(chunk as Buffer);
  return Buffer.concat(out);
}

test('the file field comes out whole, whatever the chunking, and the other fields do not', async () => {
  const boundary = '----vireo7MA4YWxkTrZu0gW';
  // Bytes that look like a delimiter's start inside the file must stay in it.
  const file = Buffer.concat([randomBytes(100_000), Buffer.from(`\r\n--${boundary.slice(0, 10)}`), randomBytes(3000)]);
  const body = multipart(boundary, [{ name: 'note', data: Buffer.from('hello') }, { name: 'file', data: file }]);
  for (const size of [1, 7, 64, 4096, body.length]) {
    assert.deepEqual(await collect(formField(Readable.from(inPieces(body, size)), boundary)), file, `chunks of ${size}`);
  }
});

test('a body without the file field, or cut before its end, fails the stream', async () => {
  const boundary = 'b';
  await assert.rejects(collect(formField(Readable.from(inPieces(multipart(boundary, [{ name: 'other', data: Buffer.from('x') }]), 3)), boundary)), /no "file" field/);
  const cut = multipart(boundary, [{ name: 'file', data: randomBytes(1000) }]).subarray(0, 500);
  await assert.rejects(collect(formField(Readable.from(inPieces(cut, 100)), boundary)), /ended before its closing boundary/);
});

test('the boundary comes from the Content-Type, quoted or not', () => {
  assert.equal(formBoundary('multipart/form-data; boundary=abc'), 'abc');
  assert.equal(formBoundary('Multipart/Form-Data; charset=utf-8; boundary="a b"'), 'a b');
  assert.throws(() => formBoundary('application/octet-stream'), (err: unknown) => err instanceof ApiError && err.httpCode === 415);
  assert.throws(() => formBoundary('multipart/form-data'), (err: unknown) => err instanceof ApiError && err.httpCode === 400);
});
