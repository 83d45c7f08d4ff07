/**
 * A Docker Registry HTTP API v2 / OCI distribution client for one
 * repository: manifests by tag or digest, blobs streamed to a file with
 * their digest checked. HTTPS with the system's CAs, plain HTTP only for a
 * registry on loopback (`localhost:5000`, `127.0.0.1:5000`, `[::1]:5000`).
 * A 401 is answered once per challenge: basic credentials, or a token
 * from the `Bearer` realm (with the credentials, if any), kept for the
 * rest of the pull.
 */
import { createHash } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { basicAuthorization, parseChallenge } from './registry-auth.js';
import type { AuthChallenge, RegistryCredentials } from './registry-auth.js';
import { manifestMediaTypes, sha256Digest } from './registry-manifest.js';
import type { Descriptor } from './registry-manifest.js';

/** Why a registry request failed, which decides what the VMI shows. */
export type RegistryFailure =
  /** The repository, tag or digest is not there (404). */
  | 'NotFound'
  /** The registry refused the credentials, or asked for some and there were none. */
  | 'Unauthorized'
  /** The registry could not be reached, or failed (5xx, 429, a timeout). */
  | 'Unavailable'
  /** What came back is not what was asked for (a digest or size mismatch, a malformed reply). */
  | 'Corrupt';

/** A failed registry request; the message says what, why, and what to do. */
export class RegistryError extends Error {
  constructor(
    readonly failure: RegistryFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RegistryError';
  }
}

/** What a client is for. */
export interface RegistryClientOptions {
  /** As in the image reference: `quay.io`, `127.0.0.1:5000`; `docker.io` is served by `registry-1.docker.io`. */
  registry: string;
  repository: string;
  credentials?: RegistryCredentials;
  signal: AbortSignal;
  /** A request idle this long fails as Unavailable; default 60 s. */
  idleTimeoutMs?: number;
}

/** A manifest as the registry served it. */
export interface FetchedManifest {
  body: Buffer;
  contentType: string | undefined;
  /** The sha256 of the body (checked against the requested digest and `Docker-Content-Digest`). */
  digest: string;
}

const maxManifestBytes = 4 * 1024 * 1024;
const maxErrorBytes = 64 * 1024;
const maxRedirects = 5;
const acceptManifests = Object.values(manifestMediaTypes).join(', ');

/** A client for one repository of one registry. */
export class RegistryClient {
  private readonly base: URL;
  private authorization: string | undefined;

  constructor(private readonly options: RegistryClientOptions) {
    this.base = registryBaseUrl(options.registry);
  }

  /** The manifest at `reference` (a tag, or `sha256:…`, which the body must hash to). */
  async manifest(reference: string): Promise<FetchedManifest> {
    const res = await this.get(`manifests/${reference}`, { accept: acceptManifests });
    const body = await readBody(res, maxManifestBytes, `the manifest of ${this.name(reference)}`);
    const digest = sha256Digest(body);
    const claimed = header(res, 'docker-content-digest');
    if (reference.startsWith('sha256:') && digest !== reference) {
      throw new RegistryError('Corrupt', `the registry served a manifest for ${this.name(reference)} whose digest is ${digest}: it does not match what was asked for`);
    }
    if (claimed !== undefined && claimed.startsWith('sha256:') && claimed !== digest) {
      throw new RegistryError('Corrupt', `the manifest of ${this.name(reference)} hashes to ${digest}, but the registry says ${claimed}: the registry or a proxy altered it`);
    }
    return { body, contentType: header(res, 'content-type'), digest };
  }

  /** Streams the blob of `descriptor` into `file` (new), checking its size and digest; removes nothing on failure. */
  async blob(descriptor: Descriptor, file: string): Promise<void> {
    const res = await this.get(`blobs/${descriptor.digest}`, { accept: '*/*' });
    const check = new DigestCheck(descriptor);
    try {
      await pipeline(res, check, createWriteStream(file, { flags: 'wx', mode: 0o600 }), { signal: this.options.signal });
    } catch (err) {
      if (err instanceof RegistryError || this.options.signal.aborted) throw err;
      throw new RegistryError('Unavailable', `downloading ${descriptor.digest} of ${this.name()} failed: ${errorText(err)}`, { cause: err });
    }
    check.verify(this.name());
  }

  private name(reference?: string): string {
    const at = reference === undefined ? '' : reference.startsWith('sha256:') ? `@${reference}` : `:${reference}`;
    return `${this.options.registry}/${this.options.repository}${at}`;
  }

  /** GET `/v2/<repository>/<path>`, authenticating on a 401 and following redirects; throws unless 200. */
  private async get(path: string, headers: { accept: string }): Promise<IncomingMessage> {
    const url = new URL(`/v2/${this.options.repository}/${path}`, this.base);
    let res = await this.send(url, headers);
    if (res.statusCode === 401) {
      const challenge = parseChallenge(header(res, 'www-authenticate') ?? '');
      res.resume();
      await this.authenticate(challenge);
      res = await this.send(url, headers);
    }
    if (res.statusCode === 200) return res;
    throw await this.failure(res, path);
  }

  private async authenticate(challenge: AuthChallenge | undefined): Promise<void> {
    const credentials = this.options.credentials;
    if (challenge?.scheme === 'bearer') {
      this.authorization = `Bearer ${await this.token(challenge)}`;
      return;
    }
    if (challenge?.scheme === 'basic' && credentials !== undefined) {
      this.authorization = basicAuthorization(credentials);
      return;
    }
    throw this.unauthorized(credentials === undefined ? 'the registry wants credentials and none were given' : 'the registry asks for an authentication scheme this node does not speak');
  }

  /** A token from the challenge's realm, asked for with the credentials when there are some. */
  private async token(challenge: AuthChallenge & { scheme: 'bearer' }): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(challenge.realm);
    } catch (err) {
      throw new RegistryError('Corrupt', `the registry ${this.options.registry} named a token realm that is not a URL: ${JSON.stringify(challenge.realm)}`, { cause: err });
    }
    if (challenge.service !== undefined) realm.searchParams.set('service', challenge.service);
    realm.searchParams.set('scope', challenge.scope ?? `repository:${this.options.repository}:pull`);
    const credentials = this.options.credentials;
    const headers: OutgoingHttpHeaders = { accept: 'application/json' };
    if (credentials !== undefined) headers.authorization = basicAuthorization(credentials);
    const res = await this.request(realm, headers, 0);
    if (res.statusCode === 401 || res.statusCode === 403) {
      res.resume();
      throw this.unauthorized(credentials === undefined ? 'the token service wants credentials and none were given' : 'the token service refused the credentials');
    }
    if (res.statusCode !== 200) throw await this.failure(res, 'token');
    const body = await readBody(res, maxErrorBytes, 'the token reply');
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new RegistryError('Corrupt', `the token service of ${this.options.registry} answered with something that is not JSON`, { cause: err });
    }
    const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
    const token = typeof record.token === 'string' ? record.token : record.access_token;
    if (typeof token !== 'string' || token === '') throw new RegistryError('Corrupt', `the token service of ${this.options.registry} answered without a token`);
    return token;
  }

  private unauthorized(why: string): RegistryError {
    return new RegistryError('Unauthorized', `unauthorized: check imagePullSecret (pulling ${this.name()}: ${why})`);
  }

  private async send(url: URL, headers: { accept: string }): Promise<IncomingMessage> {
    const out: OutgoingHttpHeaders = { accept: headers.accept };
    if (this.authorization !== undefined) out.authorization = this.authorization;
    return this.request(url, out, 0);
  }

  /** One request, following redirects; credentials go only to the host they were meant for. */
  private async request(url: URL, headers: OutgoingHttpHeaders, hops: number): Promise<IncomingMessage> {
    assertTransport(url);
    const res = await sendRequest(url, headers, { signal: this.options.signal, idleTimeoutMs: this.options.idleTimeoutMs ?? 60_000 });
    const status = res.statusCode ?? 0;
    const location = header(res, 'location');
    if (status >= 300 && status < 400 && location !== undefined) {
      res.resume();
      if (hops >= maxRedirects) throw new RegistryError('Unavailable', `the registry ${this.options.registry} redirected more than ${maxRedirects} times`);
      const next = new URL(location, url);
      const rest: OutgoingHttpHeaders = { ...headers };
      if (next.host !== url.host) delete rest.authorization;
      return this.request(next, rest, hops + 1);
    }
    return res;
  }

  private async failure(res: IncomingMessage, path: string): Promise<RegistryError> {
    const status = res.statusCode ?? 0;
    const said = registryMessage(await readBody(res, maxErrorBytes, 'an error reply').catch(() => Buffer.alloc(0)));
    const what = path.startsWith('manifests/') ? this.name(path.slice('manifests/'.length)) : path.startsWith('blobs/') ? `${path.slice('blobs/'.length)} of ${this.name()}` : `${path} for ${this.name()}`;
    const reply = said === '' ? `HTTP ${status}` : `${said} (HTTP ${status})`;
    if (status === 404) return new RegistryError('NotFound', `${what}: not found in the registry: ${reply}; check the image name and tag, or push the image`);
    if (status === 401 || status === 403) return this.unauthorized(`the registry said ${reply}`);
    if (status === 429 || status >= 500) return new RegistryError('Unavailable', `${what}: the registry failed: ${reply}; retrying`);
    return new RegistryError('Corrupt', `${what}: the registry answered ${reply}`);
  }
}

/** Where a registry's API is: HTTPS, except plain HTTP on loopback with a port. */
export function registryBaseUrl(registry: string): URL {
  const host = registry === 'docker.io' ? 'registry-1.docker.io' : registry;
  return new URL(`${isLoopbackRegistry(host) ? 'http' : 'https'}://${host}/`);
}

/** `localhost:PORT`, `127.0.0.1:PORT`, `[::1]:PORT`: registries a node may reach without TLS. */
export function isLoopbackRegistry(registry: string): boolean {
  return /^(?:localhost|127\.0\.0\.1|\[::1\]):[0-9]+$/.test(registry);
}

function assertTransport(url: URL): void {
  if (url.protocol === 'https:') return;
  if (url.protocol === 'http:' && isLoopbackRegistry(url.host)) return;
  throw new RegistryError('Unavailable', `refusing to send a registry request to ${url.origin}: plain HTTP is only for a registry on loopback with a port; serve the registry over HTTPS`);
}

/** The registry's own words from an error body: `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`. */
export function registryMessage(body: Buffer): string {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const errors = typeof parsed === 'object' && parsed !== null && 'errors' in parsed && Array.isArray(parsed.errors) ? (parsed.errors as unknown[]) : [];
    const parts = errors.map((e) => {
      const record = typeof e === 'object' && e !== null ? (e as Record<string, unknown>) : {};
      const message = typeof record.message === 'string' ? record.message : '';
      const code = typeof record.code === 'string' ? record.code : '';
      return code === '' ? message : `${message} (${code})`;
    });
    return parts.filter((p) => p !== '').join('; ');
  } catch {
    return body.toString('utf8').trim().slice(0, 200);
  }
}

let systemCa: string | undefined | null = null;

/** Debian's CA bundle (the system's trust store), or undefined to use Node's own. */
function caBundle(): string | undefined {
  if (systemCa === null) {
    try {
      systemCa = readFileSync('/etc/ssl/certs/ca-certificates.crt', 'utf8');
    } catch {
      systemCa = undefined;
    }
  }
  return systemCa;
}

function sendRequest(url: URL, headers: OutgoingHttpHeaders, options: { signal: AbortSignal; idleTimeoutMs: number }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const common = { method: 'GET', headers: { ...headers, 'user-agent': 'vireo-agent' }, signal: options.signal };
    const ca = caBundle();
    const req = url.protocol === 'https:' ? httpsRequest(url, ca === undefined ? common : { ...common, ca }) : httpRequest(url, common);
    req.setTimeout(options.idleTimeoutMs, () => {
      req.destroy(new RegistryError('Unavailable', `the registry at ${url.host} did not answer within ${options.idleTimeoutMs / 1000} s`));
    });
    req.once('response', (res) => {
      res.on('error', () => undefined);
      resolve(res);
    });
    req.once('error', (err) => {
      if (err instanceof RegistryError || options.signal.aborted) reject(err);
      else reject(new RegistryError('Unavailable', `cannot reach the registry at ${url.host}: ${errorText(err)}`, { cause: err }));
    });
    req.end();
  });
}

async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) {
      res.destroy();
      throw new RegistryError('Corrupt', `${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function header(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return 'code' in err && typeof err.code === 'string' ? `${err.code} (${err.message})` : err.message;
  return String(err);
}

/** Hashes and counts a blob as it streams, failing early when it grows past its size. */
class DigestCheck extends Transform {
  private readonly hash = createHash('sha256');
  private bytes = 0;

  constructor(private readonly descriptor: Descriptor) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.descriptor.size) {
      callback(new RegistryError('Corrupt', `blob ${this.descriptor.digest} is larger than the ${this.descriptor.size} bytes its manifest says: the registry served something else`));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  verify(image: string): void {
    const digest = `sha256:${this.hash.digest('hex')}`;
    if (this.bytes !== this.descriptor.size) {
      throw new RegistryError('Corrupt', `blob ${this.descriptor.digest} of ${image} has ${this.bytes} bytes, not the ${this.descriptor.size} its manifest says: the download was cut short or the registry's copy is damaged`);
    }
    if (digest !== this.descriptor.digest) {
      throw new RegistryError('Corrupt', `blob ${this.descriptor.digest} of ${image} hashes to ${digest}: digest mismatch, the registry's copy is damaged or was altered; it was not used`);
    }
  }
}
