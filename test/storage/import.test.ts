/**
 * DataVolume imports on real files: the test guest's disk served in every
 * format an import reads (qcow2, raw, gzip, xz, vmdk, vdi, vhd, vhdx) by a
 * local HTTP(S) server, converted into raw and qcow2 volumes and compared
 * with `qemu-img compare`; the faults (404, checksum, damaged image, an
 * image larger than its volume, a download cut half-way); a containerDisk
 * from Debian's docker-registry; and the node's import runner against the
 * real API server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { ensureTestGuest, ImagePuller, ImageStore } from '../../src/agent/images/index.js';
import { ensurePki } from '../../src/cli/pki.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { cdiAnnotations, ImportError, ImportRunner, importImage } from '../../src/storage/import/index.js';
import type { ImportProgress, ImportSource, ImportTarget } from '../../src/storage/import/index.js';
import type { KObject } from '../../src/api/object.js';
import { startImageServer } from '../../src/testing/image-server.js';
import type { ImageServer } from '../../src/testing/image-server.js';
import { registryMissing, startTestRegistry } from '../../src/testing/registry.js';
import { startTestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

let dir: string;
let disk: string;
let server: ImageServer;
const MiB = 1024 * 1024;
const signal = new AbortController().signal;

function qemuImg(...args: string[]): string {
  return execFileSync('qemu-img', args, { encoding: 'utf8' });
}

/** True when the guest-visible contents of `target` (as `format`) equal the test guest's disk, beyond which it is zero. */
function sameContent(target: string, format: 'raw' | 'qcow2'): boolean {
  try {
    qemuImg('compare', '-f', format, '-F', 'qcow2', target, disk);
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vireo-import-'));
  disk = (await ensureTestGuest()).disk;
  await copyFile(disk, join(dir, 'guest.qcow2'));
  qemuImg('convert', '-f', 'qcow2', '-O', 'raw', disk, join(dir, 'guest.raw'));
  for (const [format, name] of [['vmdk', 'guest.vmdk'], ['vdi', 'guest.vdi'], ['vhdx', 'guest.vhdx'], ['vpc', 'guest.vhd']] as const) {
    qemuImg('convert', '-f', 'qcow2', '-O', format, disk, join(dir, name));
  }
  await pipeline(createReadStream(disk), createGzip(), createWriteStream(join(dir, 'guest.qcow2.gz')));
  execFileSync('xz', ['-k', '-1', '-T2', join(dir, 'guest.raw')]);
  // Served under a misleading name: the format comes from the bytes.
  await copyFile(join(dir, 'guest.raw.xz'), join(dir, 'guest-xz.img'));
  const size = (await stat(disk)).size;
  await writeFile(join(dir, 'truncated.qcow2'), (await readFile(disk)).subarray(0, Math.floor(size / 3)));
  const broken = Buffer.from(await readFile(join(dir, 'guest.qcow2.gz')));
  await writeFile(join(dir, 'truncated.gz'), broken.subarray(0, Math.floor(broken.length / 2)));
  server = await startImageServer();
  for (const name of ['guest.qcow2', 'guest.raw', 'guest.vmdk', 'guest.vdi', 'guest.vhdx', 'guest.vhd', 'guest.qcow2.gz', 'guest-xz.img', 'truncated.qcow2', 'truncated.gz']) {
    server.serve(`/${name}`, { file: join(dir, name) });
  }
});
after(async () => {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
function newTarget(format: 'raw' | 'qcow2' = 'raw', sizeBytes = 64 * MiB): ImportTarget {
  counter++;
  return { path: join(dir, `volume-${counter}.${format}`), format, sizeBytes };
}

function http(path: string, extra: Partial<Extract<ImportSource, { kind: 'http' }>> = {}): ImportSource {
  return { kind: 'http', url: `${server.url}${path}`, ...extra };
}

async function importFails(source: ImportSource, target: ImportTarget, pattern: RegExp): Promise<ImportError> {
  const err = await importImage(source, target, { signal }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ImportError, `expected an ImportError, got ${String(err)}`);
  assert.match(err.message, pattern);
  return err;
}

for (const name of ['guest.qcow2', 'guest.raw', 'guest.vmdk', 'guest.vdi', 'guest.vhdx', 'guest.vhd', 'guest.qcow2.gz', 'guest-xz.img']) {
  test(`imports ${name} over HTTP into a raw volume with the same content, grown to the volume's size`, async () => {
    const target = newTarget('raw');
    await importImage(http(`/${name}`), target, { signal });
    assert.ok(sameContent(target.path, 'raw'), 'the volume differs from the source image');
    assert.equal((await stat(target.path)).size, target.sizeBytes);
    assert.equal(existsSync(`${target.path}.importing`), false);
  });
}

test('imports into a qcow2 volume of the requested virtual size', async () => {
  const target = newTarget('qcow2');
  await importImage(http('/guest.qcow2.gz'), target, { signal });
  assert.ok(sameContent(target.path, 'qcow2'));
  const info = JSON.parse(qemuImg('info', '--output=json', target.path)) as { 'virtual-size': number; format: string };
  assert.equal(info.format, 'qcow2');
  assert.equal(info['virtual-size'], target.sizeBytes);
});

test('a blank volume is an empty image of the size', async () => {
  const raw = newTarget('raw', 32 * MiB);
  await importImage({ kind: 'blank' }, raw, { signal });
  assert.equal((await stat(raw.path)).size, 32 * MiB);
  assert.ok((await stat(raw.path)).blocks < 64, 'a blank raw volume is sparse');
  const qcow = newTarget('qcow2', 32 * MiB);
  await importImage({ kind: 'blank' }, qcow, { signal });
  assert.equal((JSON.parse(qemuImg('info', '--output=json', qcow.path)) as { 'virtual-size': number })['virtual-size'], 32 * MiB);
});

test('a matching checksum imports; a wrong one fails without a volume', async () => {
  const sha256 = createHash('sha256').update(await readFile(disk)).digest('hex');
  const md5 = createHash('md5').update(await readFile(disk)).digest('hex');
  await importImage(http('/guest.qcow2', { checksum: `sha256:${sha256}` }), newTarget(), { signal });
  await importImage(http('/guest.qcow2', { checksum: `md5:${md5}` }), newTarget(), { signal });
  const target = newTarget();
  const err = await importFails(http('/guest.qcow2', { checksum: `sha256:${'0'.repeat(64)}` }), target, /sha256 .* not 0{64}/);
  assert.equal(err.failure, 'ChecksumMismatch');
  assert.equal(err.retryable, false);
  assert.equal(existsSync(target.path), false);
  await importFails(http('/guest.qcow2', { checksum: 'sha256:abc' }), newTarget(), /not "algorithm:hex"/);
});

test('a 404 fails for good and names the status', async () => {
  const err = await importFails(http('/missing.qcow2'), newTarget(), /got 404.*fix spec\.source\.http\.url/);
  assert.equal(err.failure, 'NotFound');
  assert.equal(err.retryable, false);
});

test('a 503 is retryable; one that passes is retried within the import', async () => {
  server.serve('/flaky.qcow2', { file: disk, failWith: { status: 503, times: 1 } });
  const target = newTarget();
  await importImage(http('/flaky.qcow2'), target, { signal });
  assert.ok(sameContent(target.path, 'raw'));
  server.serve('/down.qcow2', { file: disk, failWith: { status: 503, times: 100 } });
  const err = await importFails(http('/down.qcow2'), newTarget(), /got 503.*retrying/);
  assert.equal(err.retryable, true);
});

test('basic auth from the secretRef credentials', async () => {
  server.serve('/private.qcow2', { file: disk, basicAuth: { username: 'alice', password: 's3cret' } });
  const err = await importFails(http('/private.qcow2'), newTarget(), /got 401/);
  assert.equal(err.failure, 'Unauthorized');
  const target = newTarget();
  await importImage(http('/private.qcow2', { basicAuth: { username: 'alice', password: 's3cret' } }), target, { signal });
  assert.ok(sameContent(target.path, 'raw'));
});

test('extraHeaders are sent with the request', async () => {
  server.serve('/headers.qcow2', { file: disk, requireHeaders: { 'x-token': 'abc 123' } });
  await importFails(http('/headers.qcow2'), newTarget(), /got 403/);
  const target = newTarget();
  await importImage(http('/headers.qcow2', { extraHeaders: ['X-Token: abc 123'] }), target, { signal });
  assert.ok(sameContent(target.path, 'raw'));
});

test('a download cut half-way resumes with a Range request, not from the start', async () => {
  const size = (await stat(disk)).size;
  server.serve('/cut.qcow2', { file: disk, cutOnceAfter: Math.floor(size / 2) });
  const target = newTarget();
  await importImage(http('/cut.qcow2', { checksum: `sha256:${createHash('sha256').update(await readFile(disk)).digest('hex')}` }), target, { signal });
  assert.ok(sameContent(target.path, 'raw'));
  const requests = server.requests('/cut.qcow2');
  assert.equal(requests.length, 2, JSON.stringify(requests));
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1]?.range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= Math.floor(size / 2), `resumed at ${resumedAt}`);
  assert.equal(requests[1]?.status, 206);
  assert.ok(server.bytesServed('/cut.qcow2') < size * 1.5, `served ${server.bytesServed('/cut.qcow2')} bytes for a ${size}-byte file`);
});

test('a file that changed on the server since the partial download starts over', async () => {
  const size = (await stat(disk)).size;
  const scratchDir = join(dir, 'scratch-changed');
  // First call: cut half-way, one attempt, so the partial file and its ETag stay.
  server.serve('/changing.qcow2', { file: join(dir, 'guest.raw'), cutOnceAfter: Math.floor(size / 2), etag: '"v1"' });
  const target = newTarget();
  const err = await importImage(http('/changing.qcow2'), target, { signal, scratchDir, downloadAttempts: 1 }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ImportError && err.retryable, String(err));
  assert.ok(existsSync(join(scratchDir, 'download')), 'the partial download is kept for the next attempt');
  server.serve('/changing.qcow2', { file: disk, etag: '"v2"' });
  await importImage(http('/changing.qcow2'), target, { signal, scratchDir });
  assert.ok(sameContent(target.path, 'raw'));
  const last = server.requests('/changing.qcow2').at(-1);
  assert.ok(last?.range !== undefined, 'the second call asked for the rest');
  assert.equal(last.status, 200, 'the changed file is downloaded whole');
});

test('a truncated or damaged image fails and leaves the volume as it was', async () => {
  for (const [path, pattern] of [['/truncated.qcow2', /damaged|truncated/], ['/truncated.gz', /gzip stream of the image is damaged or truncated/]] as const) {
    const target = newTarget();
    await writeFile(target.path, 'the volume before');
    const err = await importFails(http(path), target, pattern);
    assert.equal(err.failure, 'BadImage');
    assert.equal(err.retryable, false);
    assert.equal(await readFile(target.path, 'utf8'), 'the volume before');
    assert.equal(existsSync(`${target.path}.importing`), false);
  }
});

test('an image larger than its volume is refused with the sizes', async () => {
  const err = await importFails(http('/guest.qcow2'), newTarget('raw', 4 * MiB), /virtual size \(\d+ bytes\) is larger than the volume \(4194304 bytes\)/);
  assert.equal(err.failure, 'TooLarge');
});

test('an image with a backing file is refused', async () => {
  const overlay = join(dir, 'overlay.qcow2');
  qemuImg('create', '-f', 'qcow2', '-F', 'qcow2', '-b', disk, overlay);
  server.serve('/overlay.qcow2', { file: overlay });
  await importFails(http('/overlay.qcow2'), newTarget(), /has a backing file/);
});

test('HTTPS with the CA from certConfigMap; without it the certificate is not trusted', async () => {
  await mkdir(join(dir, 'pki'), { recursive: true });
  const pki = await ensurePki(join(dir, 'pki'), ['127.0.0.1']);
  const tls = await startImageServer({ tls: { key: pki.serverKey, cert: pki.serverCert } });
  try {
    tls.serve('/guest.qcow2', { file: disk });
    const err = await importFails({ kind: 'http', url: `${tls.url}/guest.qcow2` }, newTarget(), /not trusted.*certConfigMap/);
    assert.equal(err.retryable, false);
    const target = newTarget();
    await importImage({ kind: 'http', url: `${tls.url}/guest.qcow2`, caBundle: pki.caCert }, target, { signal });
    assert.ok(sameContent(target.path, 'raw'));
  } finally {
    await tls.stop();
  }
});

test('progress moves from 0 to 100 through the stages', async () => {
  const seen: ImportProgress[] = [];
  await importImage(http('/guest.qcow2.gz'), newTarget(), { signal, onProgress: (p) => seen.push(p) });
  const percents = seen.map((p) => p.percent);
  assert.deepEqual(percents, [...percents].sort((a, b) => a - b), 'progress never goes back');
  assert.equal(percents.at(-1), 100);
  assert.ok(percents.some((p) => p > 0 && p < 100), 'progress has steps between 0 and 100');
  assert.deepEqual([...new Set(seen.map((p) => p.stage))], ['download', 'decompress', 'convert']);
});

test('an abort stops the import and leaves no volume', async () => {
  const abort = new AbortController();
  const target = newTarget();
  const running = importImage(http('/guest.qcow2.gz'), target, { signal: abort.signal, onProgress: () => { abort.abort(new Error('stop')); } });
  await assert.rejects(running);
  assert.equal(existsSync(target.path), false);
});

test('registry: a containerDisk from a local docker-registry', { skip: registryMissing() }, async () => {
  const registry = await startTestRegistry();
  try {
    await registry.push('vireo/disk', 'v1', [{ files: [{ path: 'disk/disk.qcow2', source: disk }] }]);
    const puller = new ImagePuller(new ImageStore(join(dir, 'images')));
    const target = newTarget();
    await importImage({ kind: 'registry', image: `docker://${registry.host}/vireo/disk:v1`, puller }, target, { signal });
    assert.ok(sameContent(target.path, 'raw'));
    const err = await importFails({ kind: 'registry', image: `docker://${registry.host}/vireo/missing:v1`, puller }, newTarget(), /Unable to pull image/);
    assert.equal(err.retryable, false);
  } finally {
    await registry.stop();
  }
});

test('the import runner fills a bound PVC on its node and reports on it as CDI does', async () => {
  const api = await startTestServer();
  const client = new HttpClient({ server: api.url, token: api.token, caCert: api.pki.caCert, userAgent: 'vireo-import-test' });
  const targets = new Map<string, ImportTarget>();
  const runner = new ImportRunner({ client, logger: silentLogger, puller: undefined, resolveTarget: (pvc) => targets.get(pvc.metadata.name ?? ''), retryBaseMs: 200, progressIntervalMs: 50 });
  await runner.start();
  try {
    server.serve('/runner-flaky.qcow2', { file: disk, failWith: { status: 503, times: 3 } });
    const pvc = (name: string, url: string): Record<string, unknown> => ({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace: 'default', annotations: { [cdiAnnotations.source]: 'http', [cdiAnnotations.endpoint]: url, [cdiAnnotations.podRestarts]: '0' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    });
    for (const [name, path] of [['good', '/guest.qcow2.gz'], ['missing', '/nothing.qcow2'], ['flaky', '/runner-flaky.qcow2']] as const) {
      targets.set(name, newTarget());
      const created = await client.create(resources.persistentVolumeClaims, pvc(name, `${server.url}${path}`) as never);
      await client.patch(resources.persistentVolumeClaims, 'default', name, 'merge', { status: { phase: 'Bound' } }, { subresource: 'status' });
      assert.ok(created.metadata.uid !== undefined);
    }
    const annotationsOf = async (name: string): Promise<Record<string, string>> => (await client.get(resources.persistentVolumeClaims, 'default', name)).metadata.annotations ?? {};
    const good = await eventually(async () => { const a = await annotationsOf('good'); return a[cdiAnnotations.podPhase] === 'Succeeded' ? a : undefined; }, { timeoutMs: 30_000, what: 'the import of good to succeed' });
    assert.equal(good[cdiAnnotations.runningReason], 'Completed');
    assert.equal(good[cdiAnnotations.runningMessage], 'Import Complete');
    assert.equal(good[cdiAnnotations.progress], '100.0');
    assert.ok(sameContent(targets.get('good')?.path ?? '', 'raw'));
    const missing = await eventually(async () => { const a = await annotationsOf('missing'); return a[cdiAnnotations.podPhase] === 'Failed' ? a : undefined; }, { timeoutMs: 30_000, what: 'the import of missing to fail' });
    assert.equal(missing[cdiAnnotations.runningReason], 'Error');
    assert.match(missing[cdiAnnotations.runningMessage] ?? '', /got 404/);
    // Three 503s within one attempt's retries fail the attempt: one restart, then success.
    const flaky = await eventually(async () => { const a = await annotationsOf('flaky'); return a[cdiAnnotations.podPhase] === 'Succeeded' ? a : undefined; }, { timeoutMs: 30_000, what: 'the flaky import to succeed after a restart' });
    assert.equal(flaky[cdiAnnotations.podRestarts], '1');
    assert.ok(sameContent(targets.get('flaky')?.path ?? '', 'raw'));
  } finally {
    await runner.stop();
    client.close();
    await api.stop();
  }
});

test('an agent restart in the middle of an import resumes the download where it broke off', async () => {
  const api = await startTestServer();
  const client = new HttpClient({ server: api.url, token: api.token, caCert: api.pki.caCert, userAgent: 'vireo-import-test' });
  const target = newTarget();
  const resolveTarget = (pvc: KObject): ImportTarget | undefined => (pvc.metadata.name === 'restarted' ? target : undefined);
  const size = (await stat(disk)).size;
  // Half the image, then the download stalls: the agent stops while it is in progress.
  server.serve('/restarted.qcow2', { file: disk, holdOnceAfter: Math.floor(size / 2) });
  let runner = new ImportRunner({ client, logger: silentLogger, puller: undefined, resolveTarget, retryBaseMs: 200, progressIntervalMs: 50 });
  await runner.start();
  try {
    await client.create(resources.persistentVolumeClaims, {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'restarted', namespace: 'default', annotations: { [cdiAnnotations.source]: 'http', [cdiAnnotations.endpoint]: `${server.url}/restarted.qcow2`, [cdiAnnotations.podRestarts]: '0' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    });
    await client.patch(resources.persistentVolumeClaims, 'default', 'restarted', 'merge', { status: { phase: 'Bound' } }, { subresource: 'status' });
    const annotationsOf = async (): Promise<Record<string, string>> => (await client.get(resources.persistentVolumeClaims, 'default', 'restarted')).metadata.annotations ?? {};
    await eventually(async () => (await annotationsOf())[cdiAnnotations.podPhase] === 'Running' && server.bytesServed('/restarted.qcow2') >= Math.floor(size / 2), { timeoutMs: 30_000, what: 'half the image to be downloaded' });
    await runner.stop();
    assert.notEqual((await annotationsOf())[cdiAnnotations.podPhase], 'Succeeded', 'the import is not over when the agent stops');
    runner = new ImportRunner({ client, logger: silentLogger, puller: undefined, resolveTarget, retryBaseMs: 200, progressIntervalMs: 50 });
    await runner.start();
    await eventually(async () => (await annotationsOf())[cdiAnnotations.podPhase] === 'Succeeded', { timeoutMs: 30_000, what: 'the import to finish after the restart' });
    assert.ok(sameContent(target.path, 'raw'));
    const requests = server.requests('/restarted.qcow2');
    assert.equal(requests.length, 2, JSON.stringify(requests));
    assert.ok(Number(/^bytes=(\d+)-$/.exec(requests[1]?.range ?? '')?.[1]) > 0, `the new runner resumed with a Range request: ${JSON.stringify(requests[1])}`);
    assert.ok(server.bytesServed('/restarted.qcow2') < size * 1.5, `served ${server.bytesServed('/restarted.qcow2')} bytes for a ${size}-byte file`);
  } finally {
    await runner.stop();
    client.close();
    await api.stop();
  }
});

const canMount = process.getuid?.() === 0 ? false : 'needs root to mount a small tmpfs';

test('a full disk fails the import with the cause, retryably, and leaves no volume', { skip: canMount }, async (t) => {
  const small = join(dir, 'small-fs');
  await mkdir(small, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', small]);
  t.after(() => { execFileSync('umount', ['-l', small]); });
  const target: ImportTarget = { path: join(small, 'disk.img'), format: 'raw', sizeBytes: 64 * MiB };
  const err = await importFails(http('/guest.qcow2'), target, /the node's disk is full: the download of .* stopped after \d+ bytes \(ENOSPC/);
  assert.equal(err.failure, 'NoSpace');
  assert.equal(err.retryable, true, 'space may be freed: a retry can help');
  assert.equal(existsSync(target.path), false, 'no volume is left half-written');
});
