import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startQemu } from './qemu.js';

const dir = mkdtempSync(join(tmpdir(), 'vproc-'));
after(() => { rmSync(dir, { recursive: true, force: true }); });

const badMachine = { binary: 'qemu-system-x86_64', args: ['-machine', 'no-such-machine', '-display', 'none'], env: {}, warnings: [] };

describe('startQemu', () => {
  it('keeps QEMU\'s own error from a failed start', async () => {
    const qemu = startQemu(badMachine);
    const exit = await qemu.exited;
    assert.equal(exit.code, 1);
    assert.match(qemu.stderr(), /unsupported machine type/);
  });

  it('reports a binary that does not exist', async () => {
    const exit = await startQemu({ ...badMachine, binary: join(dir, 'no-qemu') }).exited;
    assert.equal(exit.code, null);
    assert.match(exit.error?.message ?? '', /ENOENT/);
  });

  it('kills QEMU when its signal aborts', async () => {
    const controller = new AbortController();
    const qemu = startQemu({ binary: 'qemu-system-x86_64', args: ['-machine', 'none', '-display', 'none', '-nodefaults'], env: {}, warnings: [] }, { signal: controller.signal });
    controller.abort();
    assert.equal((await qemu.exited).signal, 'SIGKILL');
  });
});
