/** A pass-through stream that counts the bytes going by, for progress reports. */
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';

/** Passes chunks on unchanged, calling `onBytes` with the running total (starting at `start`). */
export function byteCounter(start: number, onBytes: (done: number) => void): Transform {
  let done = start;
  return new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      done += chunk.length;
      onBytes(done);
      callback(null, chunk);
    },
  });
}
