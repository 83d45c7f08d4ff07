import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarError, readTar } from './registry-tar.js';
import type { TarEntry } from './registry-tar.js';

let scratch = '';
const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
const longName = `${longDir}/${'f'.repeat(90)}.bin`;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vtar-'));
  const tree = join(scratch, 'tree');
  await mkdir(join(tree, 'disk'), { recursive: true });
  await mkdir(join(tree, longDir), { recursive: true });
  await writeFile(join(tree, 'disk', 'disk.qcow2'), Buffer.alloc(70_000, 7));
  await writeFile(join(tree, longName), 'long');
  await writeFile(join(tree, 'empty'), '');
  await symlink('disk/disk.qcow2', join(tree, 'link'));
  await link(join(tree, 'empty'), join(tree, 'hard'));
});
after(async () => { await rm(scratch, { recursive: true, force: true }); });

/** Every entry of `file` with its body as a string (a hash would hide less). */
async function entries(file: string): Promise<(TarEntry & { body: string })[]> {
  const out: (TarEntry & { body: string })[] = [];
  await readTar(createReadStream(file, { highWaterMark: 1000 }), async (entry, body) => {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk);
    out.push({ ...entry, body: Buffer.concat(chunks).toString('latin1') });
  });
  return out;
}

function gnuTar(format: string): string {
  const file = join(scratch, `${format}.tar`);
  execFileSync('tar', [`--format=${format}`, '-C', join(scratch, 'tree'), '-cf', file, '--sort=name', '.']);
  return file;
}

describe('readTar', () => {
  for (const format of ['gnu', 'pax', 'ustar']) {
    it(`reads what GNU tar writes as ${format}: files, long names, links, directories`, async () => {
      if (format === 'ustar') {
        // ustar cannot hold the long name; GNU tar refuses, so leave it out.
        await rm(join(scratch, 'tree', 'd'.repeat(60)), { recursive: true, force: true });
      }
      const found = await entries(gnuTar(format));
      const byPath = new Map(found.map((e) => [e.path.replace(/^\.\//, '').replace(/\/$/, ''), e]));
      assert.equal(byPath.get('disk/disk.qcow2')?.type, 'file');
      assert.equal(byPath.get('disk/disk.qcow2')?.body, Buffer.alloc(70_000, 7).toString('latin1'));
      assert.equal(byPath.get('link')?.type, 'symlink');
      assert.equal(byPath.get('link')?.linkTarget, 'disk/disk.qcow2');
      assert.equal(byPath.get('empty')?.body, '');
      const hard = byPath.get('hard') ?? byPath.get('empty');
      assert.ok(found.some((e) => e.type === 'hardlink'), 'one of the linked names is a hardlink entry');
      assert.ok(hard !== undefined);
      assert.equal(byPath.get('disk')?.type, 'directory');
      if (format !== 'ustar') assert.equal(byPath.get(longName)?.body, 'long');
    });
  }

  it('skips what a handler leaves unread, and reads base-256 sizes', async () => {
    const header = (name: string, size: number, base256: boolean): Buffer => {
      const h = Buffer.alloc(512);
      h.write(name, 0);
      h.write('0000644\0', 100);
      if (base256) {
        h[124] = 0x80;
        h.writeUInt32BE(size, 132);
      } else h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
      h.write('0', 156);
      h.write('ustar\x0000', 257);
      h.write('        ', 148);
      let sum = 0;
      for (const b of h) sum += b;
      h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
      return h;
    };
    const pad = (n: number): Buffer => Buffer.alloc((512 - (n % 512)) % 512);
    const archive = Buffer.concat([header('a', 600, true), Buffer.alloc(600, 1), pad(600), header('b', 3, false), Buffer.from('abc'), pad(3), Buffer.alloc(1024)]);
    const file = join(scratch, 'hand.tar');
    await writeFile(file, archive);
    const seen: string[] = [];
    await readTar(createReadStream(file, { highWaterMark: 100 }), async (entry, body) => {
      seen.push(`${entry.path}:${entry.size}`);
      if (entry.path === 'b') for await (const chunk of body) seen.push(chunk.toString());
    });
    assert.deepEqual(seen, ['a:600', 'b:3', 'abc']);
  });

  it('rejects a damaged header and a truncated archive with where', async () => {
    const good = await readFile(gnuTar('gnu'));
    const damaged = Buffer.from(good);
    damaged[10] = (damaged[10] ?? 0) ^ 0xff;
    await writeFile(join(scratch, 'damaged.tar'), damaged);
    await assert.rejects(entries(join(scratch, 'damaged.tar')), (err: unknown) => err instanceof TarError && /header at byte 0 has a bad checksum/.test(err.message));
    await writeFile(join(scratch, 'short.tar'), good.subarray(0, 2048 + 100));
    await assert.rejects(entries(join(scratch, 'short.tar')), /the layer is truncated/);
  });
});
