/**
 * Unwraps a gzip- or xz-compressed image into a scratch file: gzip with
 * node's zlib, xz with Debian's `xz` (xz-utils), both streamed. A truncated
 * or damaged stream fails with the decompressor's own words.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Transform } from 'node:stream';
import { byteCounter } from './counter.js';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { ImportError, isAbort } from './errors.js';
import type { Compression } from './format.js';

/** Options of {@link decompress}. */
export interface DecompressOptions {
  signal: AbortSignal;
  /** Compressed bytes read so far, of `total`. */
  onProgress?: (done: number, total: number) => void;
}

/** Writes the decompressed content of `source` to `target`. */
export async function decompress(source: string, compression: Compression, target: string, options: DecompressOptions): Promise<void> {
  const total = (await stat(source)).size;
  const counter = byteCounter(0, (done) => options.onProgress?.(done, total));
  const input = createReadStream(source, { highWaterMark: 1 << 20 });
  const output = createWriteStream(target, { highWaterMark: 1 << 20 });
  try {
    if (compression === 'gzip') {
      await pipeline(input, counter, createGunzip({ chunkSize: 1 << 20 }), output, { signal: options.signal });
      return;
    }
    await unxz(input, counter, output, options.signal);
  } catch (err) {
    if (isAbort(err) || err instanceof ImportError) throw err;
    const detail = err instanceof Error ? err.message : String(err);
    throw new ImportError('BadImage', `the ${compression} stream of the image is damaged or truncated (${detail}): check the source`, false, { cause: err });
  }
}

async function unxz(input: NodeJS.ReadableStream, counter: Transform, output: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
  const child = spawn('xz', ['--decompress', '--stdout', '--threads=0'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => {
      const code = (err as { code?: unknown }).code;
      reject(code === 'ENOENT' ? new ImportError('Unsupported', 'the image is xz-compressed and xz is not installed on this node: install xz-utils (apt-get install xz-utils)', true, { cause: err }) : err);
    });
    child.once('close', resolve);
  });
  const feeding = pipeline(input, counter, child.stdin).catch((err: unknown) => {
    // xz stops reading when the stream is damaged; its own message says why.
    if ((err as { code?: unknown }).code !== 'EPIPE') throw err;
  });
  const [, , code] = await Promise.all([feeding, pipeline(child.stdout, output), exited]);
  if (code !== 0) throw new Error(stderr.trim().split('\n').pop() ?? `xz exited ${String(code)}`);
}
