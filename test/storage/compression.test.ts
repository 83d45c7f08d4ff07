/**
 * StorageClass `compression: "true"`: an import into such a volume writes
 * qcow2 compressed clusters (`qemu-img convert -c`), so a compressible
 * image takes a fraction of the room it takes uncompressed, and reads back
 * the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importImage } from '../../src/storage/import/index.js';
import type { ImportTarget } from '../../src/storage/import/index.js';
import { parseClassParameters } from '../../src/storage/local/index.js';
import { startImageServer } from '../../src/testing/image-server.js';

const mi = 2 ** 20;

function allocated(file: string): number {
  return (JSON.parse(execFileSync('qemu-img', ['info', '--output=json', file], { encoding: 'utf8' })) as { 'actual-size': number })['actual-size'];
}

test('imports into a compression class write compressed qcow2 clusters that read back the same', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vireo-compression-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const parsed = parseClassParameters('packed', { format: 'qcow2', compression: 'true' });
  assert.ok('parameters' in parsed && parsed.parameters.compression === true);
  // 8 MiB of text: it compresses well and has no zero runs, which would stay holes either way.
  const image = join(dir, 'image.raw');
  const line = 'vireo compression: a line of guest data\n';
  await writeFile(image, Buffer.from(line.repeat(Math.ceil((8 * mi) / line.length))).subarray(0, 8 * mi));
  const server = await startImageServer();
  t.after(() => server.stop());
  server.serve('/image.raw', { file: image });
  const imported = async (name: string, compress: boolean): Promise<string> => {
    const target: ImportTarget = { path: join(dir, `${name}.qcow2`), format: 'qcow2', sizeBytes: 16 * mi, ...(compress ? { compress } : {}) };
    await importImage({ kind: 'http', url: `${server.url}/image.raw` }, target, { signal: AbortSignal.timeout(60_000) });
    return target.path;
  };
  const plain = await imported('plain', false);
  const packed = await imported('packed', true);
  assert.ok(allocated(packed) * 4 < allocated(plain), `compressed ${allocated(packed)} bytes vs ${allocated(plain)} bytes uncompressed`);
  const map = execFileSync('qemu-img', ['check', '--output=json', packed], { encoding: 'utf8' });
  assert.ok(((JSON.parse(map) as { 'compressed-clusters'?: number })['compressed-clusters'] ?? 0) > 0, 'the volume has compressed clusters');
  execFileSync('qemu-img', ['compare', '-f', 'raw', '-F', 'qcow2', image, packed]);
});
