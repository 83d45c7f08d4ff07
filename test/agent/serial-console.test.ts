/**
 * The serial console hub against a real unix socket that behaves like
 * QEMU's socket chardev (one client; what it writes is the guest's output).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SerialConsole } from '../../src/agent/serial-console.js';
import { silentLogger } from '../../src/log/logger.js';
import { eventually } from '../../src/testing/wait.js';

function collect(stream: Readable): () => string {
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return () => text;
}

test('several sessions share one chardev connection; each sees output from when it opened; input from any reaches the guest; the log is bounded', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-serial-'));
  const socketPath = join(dir, 'serial.sock');
  let guest: Socket | undefined;
  let clients = 0;
  let fromSessions = '';
  const server = createServer((sock) => {
    clients++;
    guest = sock;
    sock.on('data', (d: Buffer) => (fromSessions += d.toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  const hub = new SerialConsole({ socketPath, logFile: join(dir, 'serial.log'), logger: silentLogger, maxLogBytes: 4096 });
  t.after(() => {
    hub.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await hub.open(AbortSignal.timeout(5000));
  const g = await eventually(() => guest, { what: 'the hub to connect' });
  g.write('boot line\n');
  await eventually(() => hub.readLog().includes('boot line'), { what: 'the boot line in the log' });

  const a = hub.subscribe();
  const b = hub.subscribe();
  const seenA = collect(a);
  const seenB = collect(b);
  g.write('login: ');
  await eventually(() => seenA().includes('login: ') && seenB().includes('login: '), { what: 'both sessions to see the prompt' });
  assert.ok(!seenA().includes('boot line'), 'a session sees output from when it opened, not before');
  a.write('root\n');
  b.write('ls\n');
  await eventually(() => fromSessions.includes('root\n') && fromSessions.includes('ls\n'), { what: 'input of both sessions at the guest' });
  assert.equal(clients, 1, 'one chardev connection for all sessions');

  a.end();
  await eventually(() => a.readableEnded || a.destroyed, { what: 'the ended session to close' });
  g.write('after a left\n');
  await eventually(() => seenB().includes('after a left'), { what: 'the other session to keep working' });

  g.write('x'.repeat(10_000));
  await eventually(() => hub.readLog().endsWith('x'.repeat(100)), { what: 'the flood in the log' });
  assert.ok(hub.readLog().length <= 4096, 'the kept log never exceeds its bound');
  assert.ok(statSync(join(dir, 'serial.log')).size <= 4096);

  hub.close();
  await eventually(() => b.readableEnded, { what: 'sessions to end when the console closes' });
});
