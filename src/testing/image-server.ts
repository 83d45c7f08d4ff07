/**
 * A static file server on 127.0.0.1 for import tests and the import
 * benchmark: serves files with `ETag`/`Last-Modified` and byte ranges,
 * optionally over HTTPS, and can require basic auth or a header, cut a
 * response half-way once, or hold it half-way until told to break it, or
 * answer an error status. It counts the bytes
 * and the requests it served, per path.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** How one path is served. */
export interface ServedFile {
  file: string;
  /** Require `Authorization: Basic` with these. */
  basicAuth?: { username: string; password: string };
  /** Require these request headers (lowercase names). */
  requireHeaders?: Record<string, string>;
  /** Cut the connection after this many bytes of the body, on the first full (non-range) response only. */
  cutOnceAfter?: number;
  /** Send this many bytes of the body, then nothing more while the client waits, on the first full response only (a download in progress). */
  holdOnceAfter?: number;
  /** Answer this status instead, this many times (then serve). */
  failWith?: { status: number; times: number };
  /** Send no ETag or Last-Modified (a server that cannot resume). */
  noValidators?: boolean;
  /** Override the ETag (to simulate the file changing on the server). */
  etag?: string;
}

/** A request the server saw. */
export interface SeenRequest {
  path: string;
  range: string | undefined;
  status: number;
  bytes: number;
}

export interface ImageServer {
  /** `http(s)://127.0.0.1:PORT`. */
  url: string;
  serve(path: string, served: ServedFile): void;
  /** Breaks the responses of `path` held by `holdOnceAfter`: the client sees its download cut. */
  breakHeld(path: string): void;
  requests(path?: string): SeenRequest[];
  bytesServed(path: string): number;
  stop(): Promise<void>;
}

/** Starts the server; `tls` serves HTTPS with that key and certificate. */
export async function startImageServer(options: { tls?: { key: string; cert: string } } = {}): Promise<ImageServer> {
  const files = new Map<string, ServedFile & { cut: boolean; failed: number; held: ServerResponse[] }>();
  const seen: SeenRequest[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const entry = files.get(path);
    const record: SeenRequest = { path, range: req.headers.range, status: 0, bytes: 0 };
    seen.push(record);
    const end = (status: number, body = ''): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (entry === undefined) {
      end(404, 'not found\n');
      return;
    }
    if (entry.failWith !== undefined && entry.failed < entry.failWith.times) {
      entry.failed++;
      end(entry.failWith.status, 'failing on purpose\n');
      return;
    }
    if (entry.basicAuth !== undefined) {
      const expected = `Basic ${Buffer.from(`${entry.basicAuth.username}:${entry.basicAuth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.setHeader('www-authenticate', 'Basic realm="images"');
        end(401, 'unauthorized\n');
        return;
      }
    }
    for (const [name, value] of Object.entries(entry.requireHeaders ?? {})) {
      if (req.headers[name] !== value) {
        end(403, `missing header ${name}\n`);
        return;
      }
    }
    void stat(entry.file).then((info) => {
      const etag = entry.etag ?? `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
      const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' };
      if (entry.noValidators !== true) {
        headers.etag = etag;
        headers['last-modified'] = info.mtime.toUTCString();
      }
      let start = 0;
      let status = 200;
      const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const ifRange = req.headers['if-range'];
      if (range?.[1] !== undefined && (ifRange === undefined || ifRange === etag || ifRange === info.mtime.toUTCString())) {
        start = Number(range[1]);
        if (start >= info.size) {
          end(416, '');
          return;
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${info.size - 1}/${info.size}`;
      }
      headers['content-length'] = info.size - start;
      record.status = status;
      res.writeHead(status, headers);
      const first = status === 200 && !entry.cut;
      const cutAt = first ? entry.cutOnceAfter : undefined;
      const holdAt = first ? entry.holdOnceAfter : undefined;
      const stopAt = cutAt ?? holdAt;
      if (stopAt !== undefined) entry.cut = true;
      const stream = createReadStream(entry.file, { start, ...(stopAt === undefined ? {} : { end: stopAt - 1 }), highWaterMark: 1 << 20 });
      stream.on('data', (chunk: Buffer | string) => { record.bytes += chunk.length; });
      stream.on('end', () => {
        // A hold leaves the response open: the client sees a download that has stalled.
        if (cutAt !== undefined) res.destroy();
        else if (holdAt !== undefined) entry.held.push(res);
      });
      stream.pipe(res, { end: stopAt === undefined });
    }, () => { end(500, 'cannot read the file\n'); });
  };
  const server = options.tls === undefined ? createHttpServer(handler) : createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    serve(path, served) {
      files.set(path, { ...served, cut: false, failed: 0, held: [] });
    },
    breakHeld(path) {
      const entry = files.get(path);
      for (const res of entry?.held.splice(0) ?? []) res.destroy();
    },
    requests: (path) => seen.filter((r) => path === undefined || r.path === path),
    bytesServed: (path) => seen.filter((r) => r.path === path).reduce((sum, r) => sum + r.bytes, 0),
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
    },
  };
}
