/**
 * An image that arrives as a byte stream (CDI's upload server): written to
 * the import's scratch directory as it comes, never held in memory, then
 * checked and converted like a downloaded image. A stream that ends early
 * (the client went away, or sent less than its `Content-Length`) is an
 * `Interrupted` failure: the volume is left as it was, and a new upload
 * may start over.
 */
import { createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImportError, isAbort } from './errors.js';

/** An image arriving on a stream. */
export interface StreamSource {
  kind: 'stream';
  body: Readable;
  /** The announced length (`Content-Length`), when there is one: fewer bytes is an interrupted upload. */
  bytes?: number;
  /** Called once every byte is on disk, before the image is checked and converted (CDI's async upload answers here). */
  onReceived?: () => void;
}

/** Options of {@link receive}. */
export interface ReceiveOptions {
  signal: AbortSignal;
  /** Bytes written so far, and the announced total. */
  onProgress?: (done: number, total: number | undefined) => void;
}

/** Writes `source.body` to `file`; resolves with the byte count once the stream ended complete. */
export async function receive(source: StreamSource, file: string, options: ReceiveOptions): Promise<{ bytes: number }> {
  let done = 0;
  const counter = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      done += chunk.length;
      if (source.bytes !== undefined && done > source.bytes) {
        callback(new ImportError('BadImage', `the upload sent more than the ${source.bytes} bytes it announced (Content-Length): send the file as it is`, false));
        return;
      }
      options.onProgress?.(done, source.bytes);
      callback(null, chunk);
    },
  });
  try {
    await pipeline(source.body, counter, createWriteStream(file, { highWaterMark: 1 << 20 }), { signal: options.signal });
  } catch (err) {
    if (err instanceof ImportError || (options.signal.aborted && isAbort(err))) throw err;
    throw interrupted(done, source.bytes, err);
  }
  // A client may close cleanly after sending less than it announced (a truncated chunked body does not).
  if (source.bytes !== undefined && done < source.bytes) throw interrupted(done, source.bytes, undefined);
  if (done === 0) throw new ImportError('BadImage', 'the upload is empty (0 bytes): send the image file', false);
  return { bytes: done };
}

function interrupted(done: number, total: number | undefined, cause: unknown): ImportError {
  const of = total === undefined ? '' : ` of ${total}`;
  const detail = cause instanceof Error ? ` (${cause.message})` : '';
  return new ImportError('Interrupted', `the upload was interrupted after ${done}${of} bytes${detail}: the volume is unchanged; upload the image again`, true, { cause });
}
