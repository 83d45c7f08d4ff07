import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError } from '../../api/errors.js';
import { ImageStore } from './store.js';
import type { ContainerDiskImage } from './store.js';

let scratch = '';
let src = '';
const qcow2Header = Buffer.concat([Buffer.from([0x51, 0x46, 0x49, 0xfb, 0, 0, 0, 3]), Buffer.alloc(504)]);

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vimages-'));
  src = join(scratch, 'src');
  await mkdir(src);
  await writeFile(join(src, 'disk.qcow2'), qcow2Header);
  await writeFile(join(src, 'disk.img'), 'raw disk bytes');
  await writeFile(join(src, 'vmlinux'), 'kernel bytes');
  await writeFile(join(src, 'initrd.img'), 'initrd bytes');
});
after(async () => { await rm(scratch, { recursive: true, force: true }); });

/** The disk of an image that must have one. */
function diskOf(image: ContainerDiskImage | undefined): string {
  if (image?.disk === undefined) assert.fail(`${image?.image ?? 'the image'} has no disk`);
  return image.disk;
}

function freshStore(name: string): ImageStore {
  return new ImageStore(join(scratch, name));
}

describe('ImageStore', () => {
  it('imports files and resolves them by any spelling of the reference', async () => {
    const store = freshStore('s1');
    const imported = await store.importFiles('localhost/vireo/tiny', {
      disk: join(src, 'disk.qcow2'), kernel: join(src, 'vmlinux'), initrd: join(src, 'initrd.img'),
    });
    assert.equal(imported.image, 'localhost/vireo/tiny:latest');
    assert.equal(imported.diskFormat, 'qcow2');
    assert.match(diskOf(imported), /\/blobs\/[0-9a-f]{64}\/disk\.qcow2$/);
    assert.deepEqual(await readFile(diskOf(imported)), qcow2Header);
    assert.equal(await readFile(imported.kernel ?? '', 'utf8'), 'kernel bytes');
    assert.equal(await readFile(imported.initrd ?? '', 'utf8'), 'initrd bytes');
    assert.equal((await stat(diskOf(imported))).mode & 0o777, 0o444, 'base files are read-only');

    assert.deepEqual(await store.resolve('localhost/vireo/tiny:latest'), imported);
    assert.deepEqual(await store.resolve('localhost/vireo/tiny'), imported);
    assert.deepEqual(await store.list(), ['localhost/vireo/tiny:latest']);
  });

  it('keeps working when its root directory moves', async () => {
    const original = freshStore('s9');
    await original.importFiles('localhost/vireo/tiny', { disk: join(src, 'disk.qcow2') });
    await rename(original.root, join(scratch, 's9-moved'));
    const store = new ImageStore(join(scratch, 's9-moved'));
    const moved = await store.resolve('localhost/vireo/tiny');
    assert.ok(diskOf(moved).startsWith(`${store.root}/blobs/`), moved?.disk);
    assert.equal((await stat(dirname(diskOf(moved)))).mode & 0o777, 0o755, 'a blob directory is readable by all');
  });

  it('answers undefined for images it does not have', async () => {
    const store = freshStore('s2');
    assert.equal(await store.resolve('localhost/vireo/tiny:latest'), undefined);
    assert.deepEqual(await store.list(), []);
    await store.importFiles('quay.io/x/y:1', { disk: join(src, 'disk.img') });
    assert.equal(await store.resolve('quay.io/x/y:2'), undefined);
    assert.equal(await store.resolve('quay.io/x/y/z:1'), undefined);
  });

  it('rejects invalid references with what is wrong', async () => {
    const store = freshStore('s3');
    await assert.rejects(store.resolve('localhost/Not/valid'), (err: unknown) => err instanceof ApiError && /repository component "Not"/.test(err.message));
    await assert.rejects(store.importFiles('x:', { disk: join(src, 'disk.img') }), /invalid image reference "x:": tag "" must be/);
  });

  it('stores raw disks, disk-only images, digests and nested repositories side by side', async () => {
    const store = freshStore('s4');
    const digest = `sha256:${'0f'.repeat(32)}`;
    const raw = await store.importFiles('busybox', { disk: join(src, 'disk.img') });
    assert.equal(raw.image, 'docker.io/library/busybox:latest');
    assert.equal(raw.diskFormat, 'raw');
    assert.match(diskOf(raw), /\/disk\.raw$/);
    assert.equal(raw.kernel, undefined);
    assert.equal(raw.initrd, undefined);
    await store.importFiles(`localhost/a@${digest}`, { disk: join(src, 'disk.img') });
    await store.importFiles('localhost/a:v1', { disk: join(src, 'disk.img') });
    await store.importFiles('localhost/a/v1:v2', { disk: join(src, 'disk.qcow2') });
    assert.deepEqual(await store.list(), ['docker.io/library/busybox:latest', `localhost/a:v1`, `localhost/a@${digest}`, 'localhost/a/v1:v2'].sort());
    assert.equal((await store.resolve('localhost/a/v1:v2'))?.diskFormat, 'qcow2');
    assert.equal((await store.resolve(`localhost/a@${digest}`))?.disk, diskOf(raw), 'the same content is stored once');
  });

  it('moves a tag to new content without touching the files a running VMI uses', async () => {
    const store = freshStore('s5');
    const first = await store.importFiles('localhost/vireo/tiny', { disk: join(src, 'disk.img') });
    const again = await store.importFiles('localhost/vireo/tiny', { disk: join(src, 'disk.img') });
    assert.deepEqual(again, first, 'importing the same files again changes nothing');
    const second = await store.importFiles('localhost/vireo/tiny', { disk: join(src, 'disk.qcow2') });
    assert.notEqual(diskOf(second), diskOf(first));
    assert.deepEqual(await store.resolve('localhost/vireo/tiny'), second);
    assert.equal(await readFile(diskOf(first), 'utf8'), 'raw disk bytes', 'the old blob is still there');
    const leftovers = (await readdir(join(store.root, 'refs', 'localhost', 'vireo', 'tiny'))).filter((n) => n.startsWith('.'));
    assert.deepEqual(leftovers, []);
    assert.deepEqual(await readdir(join(store.root, 'tmp')), [], 'no staging directory is left');
  });

  it('imports concurrently without losing or mixing images', async () => {
    const store = freshStore('s6');
    const tags = Array.from({ length: 8 }, (_, i) => `localhost/c:t${i}`);
    await Promise.all(tags.map((t, i) => store.importFiles(t, { disk: join(src, i % 2 === 0 ? 'disk.img' : 'disk.qcow2') })));
    assert.deepEqual(await store.list(), [...tags].sort());
    for (const [i, t] of tags.entries()) assert.equal((await store.resolve(t))?.diskFormat, i % 2 === 0 ? 'raw' : 'qcow2');
    assert.equal((await readdir(join(store.root, 'blobs'))).length, 2);
  });

  it('keeps a sparse disk sparse', async () => {
    const store = freshStore('s8');
    const sparse = join(scratch, 'sparse.raw');
    const handle = await open(sparse, 'w');
    await handle.write('boot sector', 0);
    await handle.write('data at 40 MiB', 40 * 1024 * 1024);
    await handle.truncate(64 * 1024 * 1024);
    await handle.close();
    const stored = await store.importFiles('localhost/sparse', { disk: sparse });
    const info = await stat(diskOf(stored));
    assert.equal(info.size, 64 * 1024 * 1024);
    assert.ok(info.blocks * 512 < 4 * 1024 * 1024, `${info.blocks} blocks allocated`);
    const copy = await readFile(diskOf(stored));
    assert.equal(copy.subarray(0, 11).toString(), 'boot sector');
    assert.equal(copy.subarray(40 * 1024 * 1024, 40 * 1024 * 1024 + 14).toString(), 'data at 40 MiB');
    assert.deepEqual(copy, await readFile(sparse));
  });

  it('says which source file cannot be imported, and leaves the store as it was', async () => {
    const store = freshStore('s7');
    await assert.rejects(store.importFiles('localhost/x', { disk: join(src, 'disk.img'), kernel: join(src, 'missing') }), /cannot import the kernel .*missing: ENOENT/);
    await assert.rejects(store.importFiles('localhost/x', { disk: src }), /cannot import the disk .*: not a regular file/);
    assert.equal(await store.resolve('localhost/x'), undefined);
    await assert.rejects(lstat(join(store.root, 'refs', 'localhost', 'x', ':latest')), /ENOENT/);
    await assert.rejects(store.importFiles('localhost/x', {}), /it has neither a disk nor a kernel/);
  });

  it('stores kernel-only images, and aliases one reference to another\'s content', async () => {
    const store = freshStore('s10');
    const digest = `sha256:${'ab'.repeat(32)}`;
    const kernelOnly = await store.importFiles(`quay.io/k/boot@${digest}`, { kernel: join(src, 'vmlinux'), initrd: join(src, 'initrd.img') });
    assert.equal(kernelOnly.disk, undefined);
    assert.equal(await readFile(kernelOnly.kernel ?? '', 'utf8'), 'kernel bytes');
    const tagged = await store.alias('quay.io/k/boot:v1', `quay.io/k/boot@${digest}`);
    assert.deepEqual(tagged, { ...kernelOnly, image: 'quay.io/k/boot:v1' });
    assert.deepEqual(await store.resolve('quay.io/k/boot:v1'), tagged);
    assert.equal(await store.alias('quay.io/k/boot:v2', 'quay.io/k/boot:missing'), undefined);
    assert.equal(await store.resolve('quay.io/k/boot:v2'), undefined);
  });
});
