/**
 * CDI's `upload-form` endpoints take the image as the `file` field of a
 * `multipart/form-data` body (what a browser form or `curl -F file=@disk`
 * sends). The field's bytes are streamed out as they arrive, never held:
 * only a boundary's length is kept back between chunks.
 */
import { Readable } from 'node:stream';
import { ApiError } from '../api/errors.js';

/** The boundary of a `multipart/form-data` content type; a 400 when there is none. */
export function formBoundary(contentType: string | undefined): string {
  const [type, ...params] = (contentType ?? '').split(';');
  if (type?.trim().toLowerCase() !== 'multipart/form-data') {
    throw new ApiError('UnsupportedMediaType', `the upload-form endpoints take multipart/form-data with the image in the "file" field, not ${contentType ?? 'a body without Content-Type'}: use /v1beta1/upload for a plain body`);
  }
  for (const param of params) {
    const match = /^\s*boundary=(?:"([^"]+)"|([^\s;]+))\s*$/i.exec(param);
    const boundary = match?.[1] ?? match?.[2];
    if (boundary !== undefined && boundary.length <= 70) return boundary;
  }
  throw new ApiError('BadRequest', 'the multipart/form-data Content-Type has no usable boundary parameter');
}

/** Most bytes of part headers accepted (a part's headers are a few lines). */
const maxHeaderBytes = 16 * 1024;

/** The content of field `field` of a multipart body, as a stream; the stream fails when the body has no such field or is malformed. */
export function formField(body: AsyncIterable<Buffer | string>, boundary: string, field = 'file'): Readable {
  return Readable.from(fieldChunks(body, boundary, field), { objectMode: false });
}

async function* fieldChunks(body: AsyncIterable<Buffer | string>, boundary: string, field: string): AsyncGenerator<Buffer> {
  const first = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let state: 'preamble' | 'headers' | 'content' | 'afterDelimiter' | 'done' = 'preamble';
  let wanted = false;
  let found = false;
  let pending = Buffer.alloc(0);
  for await (const raw of body) {
    pending = pending.length === 0 ? Buffer.from(raw) : Buffer.concat([pending, Buffer.from(raw)]);
    for (;;) {
      if (state === 'preamble') {
        // The first boundary may open the body or follow a preamble line.
        const at = pending.indexOf(first);
        if (at < 0 || pending.length < at + first.length + 2) break;
        pending = pending.subarray(at + first.length);
        state = 'afterDelimiter';
      } else if (state === 'afterDelimiter') {
        if (pending.length < 2) break;
        const next = pending.subarray(0, 2).toString('latin1');
        if (next === '--') { state = 'done'; break; }
        if (next !== '\r\n') throw malformed('a boundary is followed by neither CRLF nor "--"');
        pending = pending.subarray(2);
        state = 'headers';
      } else if (state === 'headers') {
        const end = pending.indexOf('\r\n\r\n');
        if (end < 0) {
          if (pending.length > maxHeaderBytes) throw malformed(`a part's headers are longer than ${maxHeaderBytes} bytes`);
          break;
        }
        wanted = fieldName(pending.subarray(0, end).toString('utf8')) === field;
        found ||= wanted;
        pending = pending.subarray(end + 4);
        state = 'content';
      } else if (state === 'content') {
        const end = pending.indexOf(delimiter);
        if (end >= 0) {
          if (wanted && end > 0) yield Buffer.from(pending.subarray(0, end));
          pending = pending.subarray(end + delimiter.length);
          state = 'afterDelimiter';
          continue;
        }
        // Keep back what could be the start of a delimiter split across chunks.
        const safe = pending.length - (delimiter.length - 1);
        if (safe > 0) {
          if (wanted) yield Buffer.from(pending.subarray(0, safe));
          pending = pending.subarray(safe);
        }
        break;
      } else {
        break;
      }
    }
    if (state === 'done') break;
  }
  if (state !== 'done') throw malformed('the body ended before its closing boundary');
  if (!found) throw malformed(`it has no "${field}" field`);
}

/** The `name` of a part's `Content-Disposition: form-data; name="…"`. */
function fieldName(headers: string): string | undefined {
  for (const line of headers.split('\r\n')) {
    const [key, ...value] = line.split(':');
    if (key?.trim().toLowerCase() !== 'content-disposition') continue;
    return /;\s*name="([^"]*)"/i.exec(value.join(':'))?.[1];
  }
  return undefined;
}

function malformed(why: string): Error {
  return new Error(`the multipart/form-data upload is malformed: ${why}; send the image as the "file" field (curl -F file=@IMAGE)`);
}
