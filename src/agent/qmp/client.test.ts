/**
 * The QMP client against a real QEMU (no fake peer): greeting, commands,
 * replies, errors and events, and the connection's edges.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { startQemu } from '../../testing/qemu.js';
import type { QemuProcess } from '../../testing/qemu.js';
import { QmpClient } from './client.js';
import { QmpError } from './errors.js';
import type { QmpEvent } from './schema.js';

const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface TestQemu {
  qemu: QemuProcess;
  socket: string;
  dir: string;
}

/** A q35 guest held at `-S` (nothing runs until `cont`), or QEMU's empty `none` machine. */
function qemu(machine: 'q35' | 'none', extra: string[] = []): TestQemu {
  const dir = mkdtempSync(join(tmpdir(), 'vqmp-'));
  dirs.push(dir);
  const socket = join(dir, 'qmp.sock');
  const base = ['-nodefaults', '-no-user-config', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`];
  const machineArgs = machine === 'none' ? ['-machine', 'none'] : ['-machine', 'q35', '-accel', 'tcg', '-m', '32', '-smp', '2', '-S'];
  const process = startQemu({ binary: 'qemu-system-x86_64', args: [...base, ...machineArgs, ...extra], env: {}, warnings: [] }, { signal: AbortSignal.timeout(60_000) });
  return { qemu: process, socket, dir };
}

/** Resolves with the first event `accept` takes, or rejects after `timeoutMs`. */
function nextEvent<T extends QmpEvent>(client: QmpClient, accept: (e: QmpEvent) => e is T, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no matching event within ${timeoutMs} ms`)); }, timeoutMs);
    client.on('event', (e) => {
      if (accept(e)) {
        clearTimeout(timer);
        resolve(e);
      }
    });
  });
}

const named = <N extends QmpEvent['event']>(name: N) => (e: QmpEvent): e is Extract<QmpEvent, { event: N }> => e.event === name;

describe('QmpClient against QEMU', () => {
  it('waits for the socket to appear, then reads the greeting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vqmp-'));
    dirs.push(dir);
    const socket = join(dir, 'qmp.sock');
    const connecting = QmpClient.connect(socket, { timeoutMs: 20_000 });
    const process = startQemu({ binary: 'qemu-system-x86_64', args: ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`], env: {}, warnings: [] });
    const client = await connecting;
    try {
      const version = await client.execute('query-version');
      assert.deepEqual(version.qemu, client.greeting.QMP.version.qemu);
      assert.ok(version.qemu.major >= 7, `QEMU ${version.qemu.major}`);
      assert.match(version.package, /\S/);
      const status = await client.execute('query-status');
      assert.equal(status.status, 'running');
    } finally {
      client.close();
      process.kill('SIGKILL');
      await process.exited;
    }
  });

  it('runs commands and reports their events on a q35 guest', async () => {
    const disk = join(tmpdir(), `vqmp-disk-${globalThis.process.pid}.qcow2`);
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '8M']);
    const t = qemu('q35', ['-blockdev', `driver=file,filename=${disk},node-name=f0`, '-blockdev', 'driver=qcow2,file=f0,node-name=d0', '-device', 'virtio-blk-pci,drive=d0,id=ua-root']);
    const client = await QmpClient.connect(t.socket, { timeoutMs: 20_000 });
    try {
      assert.deepEqual(await client.execute('query-status'), { running: false, status: 'prelaunch', singlestep: false });

      const cpus = await client.execute('query-cpus-fast');
      assert.equal(cpus.length, 2);
      assert.deepEqual(cpus.map((cpu) => cpu['cpu-index']), [0, 1]);
      assert.ok(cpus.every((cpu) => cpu.target === 'x86_64' && cpu['thread-id'] > 0));

      const block = await client.execute('query-block');
      const root = block.find((info) => info.qdev?.includes('ua-root') === true);
      assert.ok(root !== undefined, JSON.stringify(block));
      assert.equal(root.inserted?.image.format, 'qcow2');
      assert.equal(root.inserted?.image['virtual-size'], 8 * 1024 * 1024);

      const resumed = nextEvent(client, named('RESUME'));
      await client.execute('cont');
      await resumed;
      assert.equal((await client.execute('query-status')).status, 'running');

      const stopped = nextEvent(client, named('STOP'));
      await client.execute('stop');
      await stopped;
      assert.equal((await client.execute('query-status')).status, 'paused');

      const reset = nextEvent(client, named('RESET'));
      await client.execute('system_reset');
      assert.deepEqual((await reset).data, { guest: false, reason: 'host-qmp-system-reset' });

      const powerdown = nextEvent(client, named('POWERDOWN'));
      await client.execute('system_powerdown');
      await powerdown;

      assert.match(await client.execute('human-monitor-command', { 'command-line': 'info status' }), /VM status: paused/);
      assert.deepEqual(await client.execute('query-kvm'), { enabled: false, present: true });

      const shutdown = nextEvent(client, named('SHUTDOWN'));
      const closed = new Promise<Error | undefined>((resolve) => { client.on('close', resolve); });
      await client.execute('quit');
      assert.deepEqual((await shutdown).data, { guest: false, reason: 'host-qmp-quit' });
      assert.equal(await closed, undefined);
      assert.equal((await t.qemu.exited).code, 0);
      assert.equal(client.closed, true);
    } finally {
      client.close();
      t.qemu.kill('SIGKILL');
      rmSync(disk, { force: true });
    }
  });

  it('rejects with QEMU\'s error class when a command fails', async () => {
    const t = qemu('none');
    const client = await QmpClient.connect(t.socket, { timeoutMs: 20_000 });
    try {
      await assert.rejects(client.execute('balloon', { value: 1 << 20 }), (err: unknown) => {
        assert.ok(err instanceof QmpError);
        assert.equal(err.code, 'QmpCommandFailed');
        assert.equal(err.errorClass, 'DeviceNotActive');
        assert.match(err.message, /^balloon failed: .*balloon/i);
        return true;
      });
      // The session is still usable after a failed command.
      assert.equal((await client.execute('query-status')).running, true);
    } finally {
      client.close();
      t.qemu.kill('SIGKILL');
    }
  });

  it('reports the close when QEMU dies and refuses commands afterwards', async () => {
    const t = qemu('none');
    const client = await QmpClient.connect(t.socket, { timeoutMs: 20_000 });
    const closed = new Promise<void>((resolve) => { client.on('close', () => { resolve(); }); });
    t.qemu.kill('SIGKILL');
    await closed;
    await assert.rejects(client.execute('query-status'), (err: unknown) => err instanceof QmpError && err.code === 'QmpClosed');
  });

  it('times out a second client, since QEMU greets one client at a time', async () => {
    const t = qemu('none');
    const first = await QmpClient.connect(t.socket, { timeoutMs: 20_000 });
    try {
      await assert.rejects(QmpClient.connect(t.socket, { timeoutMs: 300 }), (err: unknown) => {
        assert.ok(err instanceof QmpError);
        assert.equal(err.code, 'QmpTimeout');
        assert.match(err.message, /one QMP client at a time/);
        return true;
      });
      first.close();
      const second = await QmpClient.connect(t.socket, { timeoutMs: 20_000 });
      assert.equal((await second.execute('query-status')).running, true);
      second.close();
    } finally {
      first.close();
      t.qemu.kill('SIGKILL');
    }
  });
});

describe('QmpClient connecting', () => {
  it('gives up when no socket appears within the timeout', async () => {
    const started = Date.now();
    await assert.rejects(QmpClient.connect(join(tmpdir(), `vqmp-missing-${process.pid}.sock`), { timeoutMs: 200 }), (err: unknown) => {
      assert.ok(err instanceof QmpError);
      assert.equal(err.code, 'QmpConnectFailed');
      assert.match(err.message, /ENOENT/);
      return true;
    });
    assert.ok(Date.now() - started < 5_000);
  });

  it('stops when its signal aborts', async () => {
    const controller = new AbortController();
    const connecting = QmpClient.connect(join(tmpdir(), `vqmp-never-${process.pid}.sock`), { timeoutMs: 60_000, signal: controller.signal });
    controller.abort();
    await assert.rejects(connecting, (err: unknown) => err instanceof Error && err.name === 'AbortError');
  });
});
