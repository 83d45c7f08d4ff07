/**
 * How the agent endpoint serves a volume export (`GET …/persistentvolumeclaims/NAME/export?target=UID`)
 * to another node's importer: the export file with `ETag`, byte ranges
 * (`Range`, honoured only while `If-Range` still names the same file) so a
 * copy cut short resumes where it stopped, and an optional rate limit so a
 * copy does not take the whole link (and so tests can watch one run).
 */
import { createReadStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExportedVolume } from '../storage/snapshots/export.js';

/** The byte range a request asks for and may have, or undefined for the whole file. */
export function rangeOf(req: IncomingMessage, exported: ExportedVolume): { start: number } | 'unsatisfiable' | undefined {
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range?.[1] === undefined) return undefined;
  const ifRange = req.headers['if-range'];
  // A validator for another file: the client's partial copy is of something else; send it all again.
  if (ifRange !== undefined && ifRange !== exported.etag) return undefined;
  const start = Number(range[1]);
  return start < exported.bytes ? { start } : 'unsatisfiable';
}

/** Sends `exported` (or the part `req` asks for), at most `rateBytesPerSecond` when given. */
export async function sendExport(req: IncomingMessage, res: ServerResponse, exported: ExportedVolume, options: { rateBytesPerSecond?: number }): Promise<void> {
  const range = rangeOf(req, exported);
  const common = { 'Content-Type': 'application/octet-stream', 'Accept-Ranges': 'bytes', ETag: exported.etag };
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...common, 'Content-Range': `bytes */${exported.bytes}` });
    res.end();
    return;
  }
  const start = range?.start ?? 0;
  if (range === undefined) res.writeHead(200, { ...common, 'Content-Length': exported.bytes });
  else res.writeHead(206, { ...common, 'Content-Length': exported.bytes - start, 'Content-Range': `bytes ${start}-${exported.bytes - 1}/${exported.bytes}` });
  const file = createReadStream(exported.path, { start, highWaterMark: 256 * 1024 });
  const rate = options.rateBytesPerSecond;
  if (rate === undefined || rate <= 0) await pipeline(file, res);
  else await pipeline(file, throttle(rate), res);
}

/** Passes bytes on no faster than `bytesPerSecond`, in slices of a tenth of a second. */
function throttle(bytesPerSecond: number): Transform {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const push = (offset: number): void => {
        if (offset >= chunk.length) {
          callback();
          return;
        }
        this.push(chunk.subarray(offset, offset + slice));
        setTimeout(() => { push(offset + slice); }, 100);
      };
      push(0);
    },
  });
}
