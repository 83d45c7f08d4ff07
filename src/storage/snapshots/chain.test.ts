import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeFile, freezeTop, layerName, overlayChain, readChain } from './chain.js';

const signal = new AbortController().signal;
const skip = (() => {
  try {
    execFileSync('qemu-img', ['--version']);
    return false;
  } catch {
    return 'qemu-img is not installed';
  }
})();

test('freezing a top is resumable and a clone links the frozen layers', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-chain-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const volume = join(dir, 'volume');
  execFileSync('mkdir', [volume]);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(volume, activeFile), String(2 ** 24)]);
  // An attempt that stopped right after linking the layer: the next run finishes it.
  execFileSync('ln', [join(volume, activeFile), join(volume, layerName('a'))]);
  const chain = await freezeTop(volume, 'a', { guest: undefined, signal });
  assert.deepEqual(chain.map((i) => i.file), [layerName('a')]);
  assert.equal((await readChain(volume, activeFile, signal))[0]?.backing, layerName('a'));
  // Again: nothing to do, the same chain.
  assert.deepEqual(await freezeTop(volume, 'a', { guest: undefined, signal }), chain);
  const second = await freezeTop(volume, 'b', { guest: undefined, signal });
  assert.deepEqual(second.map((i) => i.file), [layerName('b'), layerName('a')]);
  const clone = join(dir, 'clone');
  await overlayChain(volume, second, { toDir: clone, bytes: 2 ** 25, signal });
  assert.equal(statSync(join(clone, layerName('a'))).ino, statSync(join(volume, layerName('a'))).ino);
  const top = await readChain(clone, activeFile, signal);
  assert.deepEqual(top.map((i) => [i.file, i.virtualSize]), [[activeFile, 2 ** 25], [layerName('b'), 2 ** 24], [layerName('a'), 2 ** 24]]);
  assert.ok(!existsSync(join(volume, `next-b.qcow2`)), 'no pending top is left');
});
