/**
 * Pulling containerDisk and kernelBoot images from a real registry
 * (Debian's docker-registry on loopback): the test guest boots from a
 * pulled image; a missing tag shows ErrImagePull with the registry's words
 * and the VMI starts once the image is pushed; basic auth through an
 * imagePullSecret; gzip and plain layers, Docker and OCI manifests, an
 * index; a damaged blob is refused; pull policies; one download for
 * concurrent pulls.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { ImagePuller, ImagePullError, ImageStore, TEST_GUEST_READY_MARKER, ensureTestGuest } from '../../src/agent/images/index.js';
import type { ImageRequest, PullEvent } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { damageFile, htpasswdMissing, registryMissing, startTestRegistry } from '../../src/testing/registry.js';
import type { TestRegistry } from '../../src/testing/registry.js';
import { eventually } from '../../src/testing/wait.js';
import { condition, createBound, phase, startAgentFixture, vmiManifest, waitVmi } from './support.js';

const noRegistry = registryMissing();
const noQemu = existsSync('/usr/bin/qemu-system-x86_64') ? undefined : 'qemu-system-x86_64 is not installed';
const noAuth = noRegistry ?? htpasswdMissing();

async function scratchDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vireo-pull-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function registry(t: { after: (fn: () => Promise<void>) => void }, options: Parameters<typeof startTestRegistry>[0] = {}): Promise<TestRegistry> {
  const started = await startTestRegistry(options);
  t.after(() => started.stop());
  return started;
}

/** A small blank qcow2 (QEMU boots it into SeaBIOS), for VMIs that only need to run. */
function blankDisk(dir: string): string {
  const file = join(dir, 'blank.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '16M']);
  return file;
}

function request(image: string, more: Partial<ImageRequest> = {}): ImageRequest {
  return { image, needsDisk: true, needsKernel: false, signal: AbortSignal.timeout(60_000), ...more };
}

/** `manifest` with `imagePullSecret` on its root containerDisk. */
function withPullSecret(manifest: KObject, secret: string): KObject {
  const spec = manifest.spec as { volumes: { containerDisk?: Record<string, unknown> }[] };
  const root = spec.volumes[0]?.containerDisk;
  if (root === undefined) throw new Error('the manifest has no containerDisk');
  root.imagePullSecret = secret;
  return manifest;
}

function dockerConfigSecret(name: string, host: string, username: string, password: string): KObject {
  const config = JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': Buffer.from(config).toString('base64') } };
}

test('the test guest boots under TCG from a containerDisk pulled from a registry', { skip: noRegistry ?? noQemu }, async (t) => {
  const reg = await registry(t);
  const guest = await ensureTestGuest();
  const pushed = await reg.push('vireo/tiny', 'v1', [{ files: [{ path: 'disk/disk.qcow2', source: guest.disk }] }]);
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const image = `${reg.host}/vireo/tiny:v1`;
  const manifest = vmiManifest('pulled', { image, graceSeconds: 0 });
  (manifest.spec as { domain: { memory: { guest: string } } }).domain.memory.guest = '128Mi';
  await createBound(fixture, manifest);
  await waitVmi(fixture, 'pulled', (v) => phase(v) === 'Running', 'the VMI to run', 120_000);
  await eventually(async () => (await fixture.agent.serialLog('default', 'pulled')).includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: 90_000, intervalMs: 200 });
  const stored = await fixture.images.resolve(image);
  assert.deepEqual(await readFile(stored?.disk ?? ''), await readFile(guest.disk), 'the pulled disk is the pushed one, byte for byte');
  assert.deepEqual(await fixture.images.list(), [`${reg.host}/vireo/tiny:v1`, `${reg.host}/vireo/tiny@${pushed.digest}`].sort());
  // The kubelet's image events, on the VMI.
  await eventually(async () => {
    const events = await fixture.client.list(resources.events, { namespace: 'default', fieldSelector: 'involvedObject.name=pulled' });
    const reasons = events.items.map((e) => e.reason);
    return reasons.includes('Pulling') && reasons.includes('Pulled');
  }, { what: 'the Pulling and Pulled events' });
});

test('a missing tag shows ErrImagePull with the registry\'s message; the VMI starts once the image is pushed', { skip: noRegistry ?? noQemu }, async (t) => {
  const reg = await registry(t);
  const dir = await scratchDir(t);
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await createBound(fixture, vmiManifest('later', { image: `${reg.host}/vireo/blank:v1` }));
  const waiting = await waitVmi(fixture, 'later', (v) => ['ErrImagePull', 'ImagePullBackOff'].includes(condition(v, 'Synchronized')?.reason ?? ''), 'ErrImagePull');
  assert.equal(phase(waiting), 'Scheduled');
  assert.match(condition(waiting, 'Synchronized')?.message ?? '', /vireo\/blank:v1: not found in the registry: .*unknown/);
  await reg.push('vireo/blank', 'v1', [{ files: [{ path: 'disk/blank.qcow2', source: blankDisk(dir) }] }]);
  const running = await waitVmi(fixture, 'later', (v) => phase(v) === 'Running', 'the VMI to run once the image is pushed', 60_000);
  assert.equal(condition(running, 'Synchronized'), undefined);
});

test('a registry with basic auth: an imagePullSecret lets the VMI start; without one it says unauthorized', { skip: noAuth ?? noQemu }, async (t) => {
  const reg = await registry(t, { auth: { username: 'vireo', password: 'pull-me' } });
  const dir = await scratchDir(t);
  await reg.push('vireo/private', 'v1', [{ files: [{ path: 'disk/blank.qcow2', source: blankDisk(dir) }] }]);
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const image = `${reg.host}/vireo/private:v1`;

  await createBound(fixture, vmiManifest('anonymous', { image }));
  const refused = await waitVmi(fixture, 'anonymous', (v) => ['ErrImagePull', 'ImagePullBackOff'].includes(condition(v, 'Synchronized')?.reason ?? ''), 'ErrImagePull');
  assert.match(condition(refused, 'Synchronized')?.message ?? '', /unauthorized: check imagePullSecret/);

  await fixture.client.create(resources.secrets, dockerConfigSecret('wrong', reg.host, 'vireo', 'nope'));
  await createBound(fixture, withPullSecret(vmiManifest('wrong', { image }), 'wrong'));
  const denied = await waitVmi(fixture, 'wrong', (v) => ['ErrImagePull', 'ImagePullBackOff'].includes(condition(v, 'Synchronized')?.reason ?? ''), 'ErrImagePull with wrong credentials');
  assert.match(condition(denied, 'Synchronized')?.message ?? '', /unauthorized: check imagePullSecret/);

  await fixture.client.create(resources.secrets, dockerConfigSecret('pull', `http://${reg.host}/v2/`, 'vireo', 'pull-me'));
  await createBound(fixture, withPullSecret(vmiManifest('allowed', { image }), 'pull'));
  await waitVmi(fixture, 'allowed', (v) => phase(v) === 'Running', 'the VMI with the secret to run', 60_000);
});

test('gzip and plain layers, Docker and OCI manifests, and an index all pull to the same disk', { skip: noRegistry }, async (t) => {
  const reg = await registry(t);
  const dir = await scratchDir(t);
  const disk = join(dir, 'disk.raw');
  await writeFile(disk, Buffer.alloc(300_000, 'v'));
  const gz = await reg.push('vireo/formats', 'gzip', [{ files: [{ path: 'disk/disk.raw', source: disk }] }]);
  await reg.push('vireo/formats', 'plain', [{ files: [{ path: 'disk/disk.raw', source: disk }], gzip: false }], { format: 'docker' });
  // An image for another platform, then an index that offers both.
  const arm = await reg.push('vireo/formats', 'arm', [{ files: [{ path: 'disk/disk.raw', content: 'not for this node' }] }]);
  await reg.pushIndex('vireo/formats', 'multi', [
    { digest: arm.digest, size: arm.size, os: 'linux', architecture: 'arm64' },
    { digest: gz.digest, size: gz.size, os: 'linux', architecture: 'amd64' },
  ]);
  assert.equal(gz.layers[0]?.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
  const store = new ImageStore(join(dir, 'store'));
  const puller = new ImagePuller(store);
  const expected = await readFile(disk);
  for (const tag of ['gzip', 'plain', 'multi']) {
    const got = await puller.ensure(request(`${reg.host}/vireo/formats:${tag}`));
    assert.equal(got.diskFormat, 'raw', tag);
    assert.deepEqual(await readFile(got.disk ?? ''), expected, `${tag}: the disk is the pushed one`);
  }
  assert.equal((await store.resolve(`${reg.host}/vireo/formats@${gz.digest}`))?.disk, (await store.resolve(`${reg.host}/vireo/formats:gzip`))?.disk);
});

test('a blob whose content does not match its digest is refused, and nothing is imported', { skip: noRegistry }, async (t) => {
  const reg = await registry(t);
  const dir = await scratchDir(t);
  const pushed = await reg.push('vireo/damaged', 'v1', [{ files: [{ path: 'disk/disk.raw', content: Buffer.alloc(10_000, 'd') }], gzip: false }]);
  await damageFile(reg.blobFile(pushed.layers[0]?.digest ?? ''));
  const store = new ImageStore(join(dir, 'store'));
  await assert.rejects(new ImagePuller(store).ensure(request(`${reg.host}/vireo/damaged:v1`)), (err: unknown) => err instanceof ImagePullError && err.failure === 'Corrupt' && /digest mismatch/.test(err.message));
  assert.deepEqual(await store.list(), []);
});

test('unknown tags, images without /disk/, and kernelBoot images say what is wrong or give the kernel', { skip: noRegistry }, async (t) => {
  const reg = await registry(t);
  const dir = await scratchDir(t);
  const puller = new ImagePuller(new ImageStore(join(dir, 'store')));
  await assert.rejects(puller.ensure(request(`${reg.host}/vireo/none:v9`)), (err: unknown) => err instanceof ImagePullError && err.failure === 'NotFound' && /vireo\/none:v9: not found in the registry: .*(manifest|name) unknown/.test(err.message));

  await reg.push('vireo/kernel', 'v1', [{ files: [{ path: 'boot/vmlinuz-6.1', content: 'kernel!' }, { path: 'boot/vmlinuz', symlink: 'vmlinuz-6.1' }, { path: 'boot/initrd.img', content: 'initrd!' }] }]);
  await assert.rejects(puller.ensure(request(`${reg.host}/vireo/kernel:v1`)), (err: unknown) => err instanceof ImagePullError && err.failure === 'BadImage' && /has no file in \/disk\/, so it is not a containerDisk: KubeVirt's containerDisk layout/.test(err.message));
  const kernel = await puller.ensure(request(`${reg.host}/vireo/kernel:v1`, { needsDisk: false, needsKernel: true, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' }));
  assert.equal(await readFile(kernel.kernel ?? '', 'utf8'), 'kernel!');
  assert.equal(await readFile(kernel.initrd ?? '', 'utf8'), 'initrd!');
  assert.equal(kernel.disk, undefined);
  const fresh = new ImagePuller(new ImageStore(join(dir, 'fresh')));
  await assert.rejects(fresh.ensure(request(`${reg.host}/vireo/kernel:v1`, { needsDisk: false, needsKernel: true, kernelPath: '/vmlinuz' })), /has no file at \/vmlinuz, the kernelBoot kernelPath/);
});

test('pull policies: Never stays local, IfNotPresent keeps a tag, Always reuses an unchanged digest and follows a moved tag', { skip: noRegistry }, async (t) => {
  const reg = await registry(t);
  const dir = await scratchDir(t);
  const store = new ImageStore(join(dir, 'store'));
  const puller = new ImagePuller(store);
  const image = `${reg.host}/vireo/policy:v1`;
  await reg.push('vireo/policy', 'v1', [{ files: [{ path: 'disk/disk.raw', content: 'first' }] }]);
  await assert.rejects(puller.ensure(request(image, { pullPolicy: 'Never' })), (err: unknown) => err instanceof ImagePullError && err.failure === 'NotPresent' && /imagePullPolicy is Never/.test(err.message));
  const events: PullEvent[] = [];
  const first = await puller.ensure(request(image, { onEvent: (e) => events.push(e) }));
  assert.deepEqual(events.map((e) => e.reason), ['Pulling', 'Pulled']);
  assert.match(events[1]?.message ?? '', /^Successfully pulled image ".*" in [0-9.]+s\. Image size: \d+ bytes\.$/);
  assert.equal((await puller.ensure(request(image, { pullPolicy: 'Never' }))).disk, first.disk);

  await reg.push('vireo/policy', 'v1', [{ files: [{ path: 'disk/disk.raw', content: 'second' }] }]);
  assert.equal((await puller.ensure(request(image))).disk, first.disk, 'IfNotPresent (the default for v1) keeps what the store has');
  events.length = 0;
  const moved = await puller.ensure(request(image, { pullPolicy: 'Always', onEvent: (e) => events.push(e) }));
  assert.equal(await readFile(moved.disk ?? '', 'utf8'), 'second', 'Always follows the moved tag');
  assert.equal(await readFile(first.disk ?? '', 'utf8'), 'first', 'the old blob stays for the VMIs using it');
  events.length = 0;
  const again = await puller.ensure(request(image, { pullPolicy: 'Always', onEvent: (e) => events.push(e) }));
  assert.equal(again.disk, moved.disk);
  assert.match(events[1]?.message ?? '', /already present on machine/, 'an unchanged digest downloads nothing');

  const local = new ImagePuller(store);
  await assert.rejects(local.ensure(request('localhost/vireo/nothing:latest')), /images on "localhost\/" are local to the node and never pulled/);
});

test('concurrent pulls of one image share one download; one waiter giving up does not stop the others', { skip: noRegistry }, async (t) => {
  const reg = await registry(t);
  const dir = await scratchDir(t);
  const pushed = await reg.push('vireo/shared', 'v1', [{ files: [{ path: 'disk/disk.raw', content: Buffer.alloc(2_000_000, 's') }] }]);
  const puller = new ImagePuller(new ImageStore(join(dir, 'store')));
  const image = `${reg.host}/vireo/shared:v1`;
  const quitter = new AbortController();
  const gaveUp = puller.ensure(request(image, { signal: quitter.signal }));
  const results = Promise.all([1, 2, 3].map(() => puller.ensure(request(image))));
  quitter.abort(new Error('VMI deleted'));
  await assert.rejects(gaveUp, /VMI deleted/);
  const [a, b, c] = await results;
  assert.ok(a?.disk !== undefined && a.disk === b?.disk && a.disk === c?.disk);
  const layer = pushed.layers[0]?.digest ?? '';
  const downloads = reg.output().split('\n').filter((line) => line.includes(`GET /v2/vireo/shared/blobs/${layer}`));
  assert.equal(downloads.length, 1, `one download of the layer:\n${downloads.join('\n')}`);
});
