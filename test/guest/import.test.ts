/** The test guest as the agent gets it: built (cached) and imported into a node image store. */
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { GUEST_CHECKED_ENV, TEST_GUEST_IMAGE, ensureTestGuest, importTestGuest } from '../../src/agent/images/guest.js';
import { ImageStore } from '../../src/agent/images/store.js';

const scratch = await mkdtemp(join(tmpdir(), 'vguest-import-'));
after(async () => { await rm(scratch, { recursive: true, force: true }); });

async function head(path: string, bytes: number): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(bytes);
    await handle.read(buffer, 0, bytes, 0);
    return buffer;
  } finally {
    await handle.close();
  }
}

describe('the test guest', { timeout: 600_000 }, () => {
  it('is built once and then answered from the cache', async () => {
    // The build script itself, not the test runner's word that it ran.
    delete process.env[GUEST_CHECKED_ENV];
    await ensureTestGuest();
    const lines: string[] = [];
    const guest = await ensureTestGuest({ onProgress: (line) => lines.push(line) });
    // The build script's own word that nothing was rebuilt (timing belongs in bench/, not in a test).
    assert.deepEqual(lines, [`build-guest: up to date in ${guest.dir}`]);
    assert.match(guest.kernelArgs, /(^| )console=ttyS0( |$)/);
    assert.deepEqual(await head(guest.kernel, 4), Buffer.from([0x7f, 0x45, 0x4c, 0x46]), 'vmlinux is an ELF');
    assert.equal((await head(guest.vmlinuz, 0x206)).subarray(0x202, 0x206).toString(), 'HdrS', 'vmlinuz is a bzImage');
    assert.equal((await head(guest.initrd, 2)).toString('hex'), '1f8b', 'the initrd is gzip');
  });

  it('is imported into an image store as localhost/vireo/tiny:latest', async () => {
    const store = new ImageStore(join(scratch, 'store'));
    const guest = await ensureTestGuest();
    const imported = await importTestGuest(store);
    assert.equal(imported.image, TEST_GUEST_IMAGE);
    assert.equal(imported.diskFormat, 'qcow2');
    assert.deepEqual(await store.resolve('localhost/vireo/tiny'), imported);
    assert.deepEqual(await store.list(), [TEST_GUEST_IMAGE]);
    for (const [stored, built] of [[imported.disk, guest.disk], [imported.kernel, guest.kernel], [imported.initrd, guest.initrd]] as const) {
      assert.equal((await stat(stored ?? '')).size, (await stat(built)).size);
    }
  });

  it('stops at once when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(ensureTestGuest({ signal: controller.signal, cacheDir: join(scratch, 'never') }), { name: 'AbortError' });
  });
});
