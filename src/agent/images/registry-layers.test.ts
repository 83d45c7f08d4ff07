import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LayerError, extractLayers, normalizePath } from './registry-layers.js';

let scratch = '';
let count = 0;
before(async () => { scratch = await mkdtemp(join(tmpdir(), 'vlayers-')); });
after(async () => { await rm(scratch, { recursive: true, force: true }); });

/** A layer made by GNU tar from `files` (content, or `-> target` for a symlink); gzip unless told not. */
async function layer(files: Record<string, string>, gzip = true): Promise<string> {
  const tree = join(scratch, `tree-${++count}`);
  await mkdir(tree, { recursive: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(tree, path)), { recursive: true });
    if (content.startsWith('-> ')) await symlink(content.slice(3), join(tree, path));
    else await writeFile(join(tree, path), content);
  }
  const out = join(scratch, `layer-${count}.tar${gzip ? '.gz' : ''}`);
  execFileSync('tar', [gzip ? '-czf' : '-cf', out, '-C', tree, '.']);
  return out;
}

async function staging(): Promise<string> {
  return mkdtemp(join(scratch, 'staging-'));
}

describe('extractLayers', () => {
  it('finds the disk under /disk/ and the kernel through a symlink, across gzip and plain layers', async () => {
    const base = await layer({ 'disk/disk.qcow2': 'A', 'boot/vmlinuz-6.1': 'kernel', 'boot/vmlinuz': '-> vmlinuz-6.1', 'boot/initrd.img': 'initrd', 'etc/passwd': 'root' });
    const top = await layer({ 'boot/initrd.img': 'initrd v2' }, false);
    const found = await extractLayers([base, top], { staging: await staging(), paths: ['/boot/vmlinuz', '/boot/initrd.img'] });
    assert.deepEqual(found.diskNames, ['disk.qcow2']);
    assert.equal(await readFile(found.file('/disk/disk.qcow2') ?? '', 'utf8'), 'A');
    assert.equal(await readFile(found.file('/boot/vmlinuz') ?? '', 'utf8'), 'kernel');
    assert.equal(await readFile(found.file('boot/initrd.img') ?? '', 'utf8'), 'initrd v2', 'a later layer replaces a file');
    assert.equal(found.file('/etc/passwd'), undefined, 'files nobody asked for are not kept');
  });

  it('applies whiteouts and opaque directories from later layers', async () => {
    const base = await layer({ 'disk/old.qcow2': 'old', 'boot/vmlinuz': 'k' });
    const replace = await layer({ 'disk/.wh.old.qcow2': '', 'disk/new.raw': 'new', 'boot/.wh.vmlinuz': '' });
    const found = await extractLayers([base, replace], { staging: await staging(), paths: ['/boot/vmlinuz'] });
    assert.deepEqual(found.diskNames, ['new.raw']);
    assert.equal(found.file('/boot/vmlinuz'), undefined);
    const opaque = await layer({ 'disk/.wh..wh..opq': '', 'disk/only.img': 'only' });
    const again = await extractLayers([base, replace, opaque], { staging: await staging(), paths: [] });
    assert.deepEqual(again.diskNames, ['only.img']);
  });

  it('reports every file under /disk/ (KubeVirt wants one) and ignores deeper ones', async () => {
    const found = await extractLayers([await layer({ 'disk/a.img': 'a', 'disk/b.qcow2': 'b', 'disk/sub/c.img': 'c' })], { staging: await staging(), paths: [] });
    assert.deepEqual(found.diskNames, ['a.img', 'b.qcow2']);
  });

  it('says why a layer cannot be unpacked', async () => {
    const zstd = join(scratch, 'zstd');
    await writeFile(zstd, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]));
    await assert.rejects(extractLayers([zstd], { staging: await staging(), paths: [] }), (err: unknown) => err instanceof LayerError && /zstd-compressed/.test(err.message));
    const junk = join(scratch, 'junk');
    await writeFile(junk, Buffer.alloc(1024, 'x'));
    await assert.rejects(extractLayers([junk], { staging: await staging(), paths: [] }), /layer 1 cannot be unpacked: tar header at byte 0 has a bad checksum/);
    const badGzip = join(scratch, 'bad.gz');
    await writeFile(badGzip, Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(100, 0xff)]));
    await assert.rejects(extractLayers([badGzip], { staging: await staging(), paths: [] }), /layer 1 cannot be unpacked/);
  });
});

describe('normalizePath', () => {
  it('makes image paths comparable and refuses ones that leave the root', () => {
    assert.equal(normalizePath('./disk//x.img'), 'disk/x.img');
    assert.equal(normalizePath('/boot/vmlinuz/'), 'boot/vmlinuz');
    assert.equal(normalizePath('a/../../etc'), 'etc');
    assert.equal(normalizePath('/'), '');
  });
});
