/**
 * A real OCI registry for tests: Debian's `docker-registry` (the CNCF
 * distribution registry) on 127.0.0.1 with filesystem storage in a temp
 * directory, optionally behind htpasswd basic auth, and a pusher that
 * speaks its API as a client would (blob upload POST + PUT, manifest PUT).
 * Layers are real tar files, gzip-compressed or not.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import type { Readable, TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { stringify } from 'yaml';
import { freePort } from './process.js';

/** Where Debian installs the registry. */
export const dockerRegistryBinary = '/usr/bin/docker-registry';

/** Why registry tests cannot run here, or undefined when they can. */
export function registryMissing(): string | undefined {
  if (!existsSync(dockerRegistryBinary)) return `${dockerRegistryBinary} is not installed (apt-get install docker-registry)`;
  return undefined;
}

/** Why htpasswd tests cannot run here, or undefined when they can. */
export function htpasswdMissing(): string | undefined {
  try {
    execFileSync('htpasswd', ['-Bbn', 'probe', 'probe'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'htpasswd is not installed (apt-get install apache2-utils)';
  }
}

/** A file in a pushed layer: its path in the image and its bytes (from a file or given). */
export interface LayerFile {
  path: string;
  source?: string;
  content?: Buffer | string;
  /** A symlink to this target instead of a file. */
  symlink?: string;
}

/** A layer to push: its files in order, gzip-compressed unless `gzip` is false. */
export interface PushLayer {
  files: LayerFile[];
  gzip?: boolean;
}

/** A blob as a manifest describes it. */
export interface PushedBlob {
  mediaType: string;
  digest: string;
  size: number;
}

/** A running test registry. */
export interface TestRegistry {
  /** `127.0.0.1:PORT`: the registry part of image references. */
  host: string;
  /** The registry's storage root. */
  storageDir: string;
  /** Pushes an image of `layers` as `repository:tag`; returns its manifest digest and layers. */
  push(repository: string, tag: string, layers: PushLayer[], options?: { format?: 'oci' | 'docker' }): Promise<{ digest: string; size: number; layers: PushedBlob[] }>;
  /** Pushes an index (OCI) of already pushed manifests, by platform, as `repository:tag`; returns its digest. */
  pushIndex(repository: string, tag: string, entries: { digest: string; size: number; os: string; architecture: string }[]): Promise<string>;
  /** The file in the registry's storage that holds a blob, to damage it on purpose. */
  blobFile(digest: string): string;
  /** Everything the registry printed. */
  output(): string;
  stop(): Promise<void>;
}

/** Options of {@link startTestRegistry}. */
export interface TestRegistryOptions {
  /** Require these basic credentials (htpasswd, bcrypt). */
  auth?: { username: string; password: string };
  timeoutMs?: number;
}

/** Starts `docker-registry serve` on a free loopback port; resolves once it listens. */
export async function startTestRegistry(options: TestRegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'vireo-registry-'));
  const storageDir = join(dir, 'storage');
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'info', formatter: 'text', accesslog: { disabled: false } },
    storage: { filesystem: { rootdirectory: storageDir }, delete: { enabled: true } },
    http: { addr: host, secret: createHash('sha256').update(dir).digest('hex') },
  };
  if (options.auth !== undefined) {
    const line = execFileSync('htpasswd', ['-Bbn', options.auth.username, options.auth.password], { encoding: 'utf8' });
    await writeFile(join(dir, 'htpasswd'), line);
    config.auth = { htpasswd: { realm: 'vireo-test', path: join(dir, 'htpasswd') } };
  }
  await writeFile(join(dir, 'config.yml'), stringify(config));
  const child = spawn(dockerRegistryBinary, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  try {
    await listening(child, { host, timeoutMs: options.timeoutMs ?? 15_000, output: (c) => (output += c) });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const authorization = options.auth === undefined ? undefined : `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  const api = new RegistryApi(`http://${host}`, authorization, dir);
  return {
    host,
    storageDir,
    push: (repository, tag, layers, pushOptions) => api.pushImage(repository, tag, layers, pushOptions?.format ?? 'oci'),
    pushIndex: (repository, tag, entries) => api.pushIndex(repository, tag, entries),
    blobFile: (digest) => join(storageDir, 'docker', 'registry', 'v2', 'blobs', 'sha256', digest.slice(7, 9), digest.slice(7), 'data'),
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Resolves when the registry logs that it listens on `host`; rejects when it exits first or takes too long. */
function listening(child: ChildProcess, options: { host: string; timeoutMs: number; output: (chunk: string) => void }): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => { reject(new Error(`docker-registry did not listen on ${options.host} within ${options.timeoutMs} ms:\n${seen}`)); }, options.timeoutMs);
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      seen += text;
      options.output(text);
      if (seen.includes(`listening on ${options.host}`)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`docker-registry exited (${String(code ?? signal)}) before it listened:\n${seen}`));
    });
  });
}

const media = {
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar',
    layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar',
    layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
} as const;

/** The registry's HTTP API, as a pushing client uses it. */
class RegistryApi {
  constructor(
    private readonly base: string,
    private readonly authorization: string | undefined,
    private readonly scratch: string,
  ) {}

  async pushImage(repository: string, tag: string, layers: PushLayer[], format: 'oci' | 'docker'): Promise<{ digest: string; size: number; layers: PushedBlob[] }> {
    const types = media[format];
    const pushed: PushedBlob[] = [];
    const diffIds: string[] = [];
    for (const [index, layer] of layers.entries()) {
      const file = join(this.scratch, `layer-${index}-${Date.now()}`);
      const built = await writeLayer(layer, file);
      const gzip = layer.gzip ?? true;
      pushed.push({ mediaType: gzip ? types.layerGzip : types.layer, digest: built.digest, size: built.size });
      diffIds.push(built.diffId);
      await this.uploadBlob(repository, built.digest, () => createReadStream(file), built.size);
      await rm(file, { force: true });
    }
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }));
    const configDigest = digestOf(config);
    await this.uploadBlob(repository, configDigest, () => bufferStream(config), config.length);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: types.manifest,
      config: { mediaType: types.config, digest: configDigest, size: config.length },
      layers: pushed,
    }));
    await this.putManifest(repository, tag, manifest, types.manifest);
    return { digest: digestOf(manifest), size: manifest.length, layers: pushed };
  }

  async pushIndex(repository: string, tag: string, entries: { digest: string; size: number; os: string; architecture: string }[]): Promise<string> {
    const mediaType = 'application/vnd.oci.image.index.v1+json';
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: entries.map((e) => ({ mediaType: media.oci.manifest, digest: e.digest, size: e.size, platform: { os: e.os, architecture: e.architecture } })),
    }));
    await this.putManifest(repository, tag, index, mediaType);
    return digestOf(index);
  }

  private async uploadBlob(repository: string, digest: string, body: () => Readable, size: number): Promise<void> {
    const started = await this.send('POST', `/v2/${repository}/blobs/uploads/`, { 'content-length': '0' });
    await expectStatus(started, 202, 'starting a blob upload');
    const location = started.headers.location;
    if (location === undefined) throw new Error('the registry started an upload without a Location');
    const target = new URL(location, this.base);
    target.searchParams.set('digest', digest);
    const done = await this.send('PUT', `${target.pathname}${target.search}`, { 'content-type': 'application/octet-stream', 'content-length': String(size) }, body());
    await expectStatus(done, 201, `uploading blob ${digest}`);
  }

  private async putManifest(repository: string, tag: string, body: Buffer, mediaType: string): Promise<void> {
    const res = await this.send('PUT', `/v2/${repository}/manifests/${tag}`, { 'content-type': mediaType, 'content-length': String(body.length) }, bufferStream(body));
    await expectStatus(res, 201, `putting the manifest of ${repository}:${tag}`);
  }

  private send(method: string, path: string, headers: Record<string, string>, body?: Readable): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const all = this.authorization === undefined ? headers : { ...headers, authorization: this.authorization };
      const req = request(new URL(path, this.base), { method, headers: all }, resolve);
      req.once('error', reject);
      if (body === undefined) req.end();
      else body.once('error', reject).pipe(req);
    });
  }
}

async function expectStatus(res: IncomingMessage, status: number, what: string): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) chunks.push(chunk);
  if (res.statusCode !== status) throw new Error(`${what}: the registry answered ${res.statusCode ?? 0}: ${Buffer.concat(chunks).toString('utf8')}`);
}

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function bufferStream(bytes: Buffer): Readable {
  const stream = new PassThrough();
  stream.end(bytes);
  return stream;
}

/** Writes `layer` as a tar (gzip unless told otherwise) to `file`; returns its digest, size and diff id (the digest of the tar). */
async function writeLayer(layer: PushLayer, file: string): Promise<{ digest: string; size: number; diffId: string }> {
  const tarHash = createHash('sha256');
  const fileHash = createHash('sha256');
  const hashing = (hash: ReturnType<typeof createHash>): Transform =>
    new Transform({ transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) { hash.update(chunk); callback(null, chunk); } });
  const stages: (Readable | Transform)[] = [tarStream(layer.files), hashing(tarHash)];
  if (layer.gzip ?? true) stages.push(createGzip());
  stages.push(hashing(fileHash));
  await pipeline([...stages, createWriteStream(file)]);
  return { digest: `sha256:${fileHash.digest('hex')}`, size: (await stat(file)).size, diffId: `sha256:${tarHash.digest('hex')}` };
}

/** A ustar archive of `files` (paths up to 100 bytes), streamed from their sources. */
function tarStream(files: LayerFile[]): Readable {
  const out = new PassThrough();
  void (async () => {
    for (const entry of files) {
      if (entry.symlink !== undefined) {
        out.write(tarHeader(entry.path, { size: 0, type: '2', linkTarget: entry.symlink }));
        continue;
      }
      const content = entry.content === undefined ? undefined : Buffer.from(entry.content);
      const size = content?.length ?? (await stat(entry.source ?? '')).size;
      out.write(tarHeader(entry.path, { size, type: '0', linkTarget: '' }));
      if (content !== undefined) out.write(content);
      else await pipeline(createReadStream(entry.source ?? ''), out, { end: false });
      out.write(Buffer.alloc((512 - (size % 512)) % 512));
    }
    out.end(Buffer.alloc(1024));
  })().catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  return out;
}

function tarHeader(path: string, entry: { size: number; type: string; linkTarget: string }): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`test tar: path ${path} is longer than 100 bytes`);
  const header = Buffer.alloc(512);
  header.write(path, 0, 100, 'utf8');
  header.write('0000644\0', 100, 8, 'latin1');
  header.write('0000000\0', 108, 8, 'latin1');
  header.write('0000000\0', 116, 8, 'latin1');
  header.write(`${entry.size.toString(8).padStart(11, '0')}\0`, 124, 12, 'latin1');
  header.write(`${Math.floor(Date.now() / 1000).toString(8).padStart(11, '0')}\0`, 136, 12, 'latin1');
  header.write('        ', 148, 8, 'latin1');
  header.write(entry.type, 156, 1, 'latin1');
  header.write(entry.linkTarget, 157, 100, 'utf8');
  header.write('ustar\0', 257, 6, 'latin1');
  header.write('00', 263, 2, 'latin1');
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return header;
}

/** Overwrites the first bytes of `file` (a stored blob), so its content no longer matches its digest. */
export async function damageFile(file: string): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    await handle.write(Buffer.from('damaged!'), 0, 8, 64);
  } finally {
    await handle.close();
  }
}
