/**
 * The HTTP(S) download of an import: streamed to a file in the scratch
 * directory (never held in memory), with basic auth, a CA bundle, extra
 * headers and a checksum, and resumable: a partial file and what the server
 * said about it (`ETag`, `Last-Modified`, length) stay in the scratch
 * directory, and the next attempt asks only for the rest with `Range` +
 * `If-Range`. A changed file on the server answers 200, and the download
 * starts over.
 */
import { createWriteStream } from 'node:fs';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { byteCounter } from './counter.js';
import { pipeline } from 'node:stream/promises';
import { isPlainObject } from '../../api/object.js';
import { pinnedTls } from '../../net/pinned-tls.js';
import { hashFilePrefix, hasherFor, parseChecksum, verifyChecksum } from './checksum.js';
import { ImportError, isAbort } from './errors.js';

/** An HTTP(S) source, as a DataVolume's `spec.source.http` resolves. */
export interface HttpSource {
  kind: 'http';
  url: string;
  /** From the Secret `secretRef` names: `accessKeyId` and `secretKey`. */
  basicAuth?: { username: string; password: string };
  /** PEM certificates trusted for HTTPS (the `certConfigMap`'s values). */
  caBundle?: string;
  insecureSkipVerify?: boolean;
  /** `Name: value` headers sent with every request. */
  extraHeaders?: string[];
  /** `algorithm:hex` of the bytes as served. */
  checksum?: string;
  /**
   * Trust exactly this certificate (PEM), whatever the host's name: another
   * node's agent, as its Node publishes it. A mismatch is retried, since
   * the Node is read again for the next attempt.
   */
  pinnedCertificate?: string;
}

/** Options of {@link download}. */
export interface DownloadOptions {
  signal: AbortSignal;
  /** Bytes on disk so far and the total, when the server says it. */
  onProgress?: (done: number, total: number | undefined) => void;
  /** Resumes within one call before giving up with a retryable error. Default 3. */
  attempts?: number;
}

/** What the server said about the file, kept beside the partial download. */
interface Validator {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

const maxRedirects = 10;

/**
 * Downloads `source.url` into `file` (`file.meta.json` beside it holds the
 * validator); resumes what an earlier call left. Throws an ImportError.
 */
export async function download(source: HttpSource, file: string, options: DownloadOptions): Promise<{ bytes: number }> {
  const checksum = source.checksum === undefined || source.checksum === '' ? undefined : parseChecksum(source.checksum);
  const attempts = Math.max(1, options.attempts ?? 3);
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    options.signal.throwIfAborted();
    try {
      const bytes = await downloadOnce(source, file, options);
      if (checksum !== undefined) {
        const hash = hasherFor(checksum);
        await hashFilePrefix(hash, file, bytes);
        verifyChecksum(checksum, hash.digest('hex'), source.url);
      }
      return { bytes };
    } catch (err) {
      if (isAbort(err) || !(err instanceof ImportError) || !err.retryable) {
        if (err instanceof ImportError && err.failure === 'ChecksumMismatch') await forget(file);
        throw err;
      }
      lastError = err;
      // A short pause, then resume from what is on disk.
      await sleep(200 * 4 ** attempt, options.signal);
    }
  }
  throw lastError;
}

async function downloadOnce(source: HttpSource, file: string, options: DownloadOptions): Promise<number> {
  const validator = await readValidator(file, source.url);
  const have = validator === undefined ? 0 : await sizeOf(file);
  const resuming = validator !== undefined && have > 0 && (validator.etag !== undefined || validator.lastModified !== undefined);
  if (resuming && validator.total !== undefined && have === validator.total) return have;
  const headers: Record<string, string> = {};
  if (resuming) {
    headers.range = `bytes=${have}-`;
    headers['if-range'] = validator.etag ?? validator.lastModified ?? '';
  }
  const res = await get(source, headers, options.signal);
  const status = res.statusCode ?? 0;
  let offset = 0;
  let total: number | undefined;
  if (status === 206 && resuming) {
    offset = rangeStart(res.headers['content-range']) ?? -1;
    if (offset !== have) {
      res.resume();
      await forget(file);
      throw new ImportError('HttpError', `${source.url} answered a range request with bytes from ${offset}, not ${have}; starting the download over`, true);
    }
    total = rangeTotal(res.headers['content-range']) ?? validator.total;
  } else if (status === 200) {
    const length = Number(res.headers['content-length']);
    total = Number.isFinite(length) && res.headers['content-length'] !== undefined ? length : undefined;
    const next: Validator = { url: source.url, ...validatorOf(res), ...(total === undefined ? {} : { total }) };
    await writeFile(metaFile(file), JSON.stringify(next));
  } else if (status === 416 && resuming) {
    res.resume();
    await forget(file);
    throw new ImportError('HttpError', `${source.url} refused to resume the download at byte ${have}; starting it over`, true);
  } else {
    res.resume();
    throw statusError(source.url, status, res.statusMessage);
  }
  let done = offset;
  options.onProgress?.(done, total);
  const counter = byteCounter(offset, (bytes) => {
    done = bytes;
    options.onProgress?.(done, total);
  });
  try {
    await pipeline(res, counter, createWriteStream(file, { flags: offset > 0 ? 'r+' : 'w', start: offset, highWaterMark: 1 << 20 }), { signal: options.signal });
  } catch (err) {
    if (isAbort(err)) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new ImportError('NoSpace', `the node's disk is full: the download of ${source.url} stopped after ${done} bytes (${describe(err)}); free space on the node (the import resumes from there) or use a node with more room`, true, { cause: err });
    }
    throw new ImportError('Unreachable', `the download of ${source.url} broke off after ${done} bytes (${describe(err)}); it resumes from there`, true, { cause: err });
  }
  if (total !== undefined && done < total) {
    throw new ImportError('Unreachable', `the download of ${source.url} ended after ${done} of ${total} bytes; it resumes from there`, true);
  }
  return done;
}

/** One GET, following redirects; rejects with an ImportError when the server cannot be reached. */
async function get(source: HttpSource, extra: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> {
  let url = parseUrl(source.url);
  const origin = url.origin;
  for (let hop = 0; hop <= maxRedirects; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'vireo-importer', ...headersOf(source.extraHeaders ?? []), ...extra };
    if (source.basicAuth !== undefined && url.origin === origin) {
      headers.authorization = `Basic ${Buffer.from(`${source.basicAuth.username}:${source.basicAuth.password}`).toString('base64')}`;
    }
    const res = await send(url, headers, source, signal);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(status) && location !== undefined) {
      res.resume();
      url = new URL(location, url);
      continue;
    }
    return res;
  }
  throw new ImportError('HttpError', `${source.url} redirected more than ${maxRedirects} times: fix the URL`, false);
}

function send(url: URL, headers: Record<string, string>, source: HttpSource, signal: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const common = { method: 'GET', headers, signal, timeout: 60_000 };
    const trust = source.pinnedCertificate !== undefined ? pinnedTls(source.pinnedCertificate) : source.caBundle === undefined ? {} : { ca: source.caBundle };
    const req = url.protocol === 'https:'
      ? httpsRequest(url, { ...common, ...trust, rejectUnauthorized: source.insecureSkipVerify !== true })
      : httpRequest(url, common);
    req.once('response', resolve);
    req.once('timeout', () => { req.destroy(new Error('no answer within 60 s')); });
    req.once('error', (err) => {
      if (isAbort(err)) {
        reject(err);
        return;
      }
      const code = (err as { code?: unknown }).code;
      const tls = typeof code === 'string' && /CERT|VERIFY|SIGNATURE|SELF_SIGNED|^ERR_TLS/.test(code);
      if (tls && source.pinnedCertificate !== undefined) {
        reject(new ImportError('Unreachable', `${url.host} did not present the certificate its Node publishes (${describe(err)}); retrying with the Node's current one`, true, { cause: err }));
        return;
      }
      if (tls) {
        reject(new ImportError('Unreachable', `the TLS certificate of ${url.host} is not trusted (${describe(err)}): name a ConfigMap with its CA in spec.source.http.certConfigMap`, false, { cause: err }));
        return;
      }
      reject(new ImportError('Unreachable', `cannot reach ${url.host} (${describe(err)}); retrying: check the URL and that the server is up`, true, { cause: err }));
    });
    req.end();
  });
}

function statusError(url: string, status: number, text: string | undefined): ImportError {
  const said = `${status}${text === undefined || text === '' ? '' : ` ${text}`}`;
  if (status === 404 || status === 410) return new ImportError('NotFound', `Unable to connect to http data source: expected status code 200, got ${status}. Status: ${said} (${url}): fix spec.source.http.url`, false);
  if (status === 401 || status === 403) return new ImportError('Unauthorized', `Unable to connect to http data source: expected status code 200, got ${status}. Status: ${said} (${url}): check the credentials in the Secret spec.source.http.secretRef names`, false);
  const retryable = status >= 500 || status === 408 || status === 429;
  return new ImportError('HttpError', `Unable to connect to http data source: expected status code 200, got ${status}. Status: ${said} (${url})${retryable ? '; retrying' : ''}`, retryable);
}

function parseUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ImportError('Unsupported', `"${text}" is not a URL: fix spec.source.http.url`, false);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ImportError('Unsupported', `"${text}" is not an http or https URL: fix spec.source.http.url`, false);
  return url;
}

/** `Name: value` lines as a header record; a malformed line is an error, not silently dropped. */
export function headersOf(lines: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim();
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) {
      throw new ImportError('Unsupported', `extra header "${line}" is not "Name: value": fix spec.source.http.extraHeaders`, false);
    }
    out[name.toLowerCase()] = line.slice(colon + 1).trim();
  }
  return out;
}

function validatorOf(res: IncomingMessage): { etag?: string; lastModified?: string } {
  const etag = res.headers.etag;
  const lastModified = res.headers['last-modified'];
  // A weak ETag cannot validate a range (RFC 9110 13.1.5).
  return { ...(etag !== undefined && !etag.startsWith('W/') ? { etag } : {}), ...(lastModified === undefined ? {} : { lastModified }) };
}

function rangeStart(header: string | undefined): number | undefined {
  const match = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function rangeTotal(header: string | undefined): number | undefined {
  const match = /^bytes \d+-\d+\/(\d+)$/.exec(header ?? '');
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

function metaFile(file: string): string {
  return `${file}.meta.json`;
}

async function readValidator(file: string, url: string): Promise<Validator | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(metaFile(file), 'utf8'));
    if (!isPlainObject(parsed) || parsed.url !== url) return undefined;
    return {
      url,
      ...(typeof parsed.etag === 'string' ? { etag: parsed.etag } : {}),
      ...(typeof parsed.lastModified === 'string' ? { lastModified: parsed.lastModified } : {}),
      ...(typeof parsed.total === 'number' ? { total: parsed.total } : {}),
    };
  } catch {
    return undefined;
  }
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

/** Drops a partial download so the next attempt starts over. */
async function forget(file: string): Promise<void> {
  await rm(file, { force: true });
  await rm(metaFile(file), { force: true });
}

function describe(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
