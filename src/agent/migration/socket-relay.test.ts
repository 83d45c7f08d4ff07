import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocketRelay, closeRelays } from './socket-relay.js';

function echoServer(): Server {
  return createServer((socket) => { socket.pipe(socket); });
}

function listening(server: Server, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve) => { start(resolve); });
}

/** Sends `text` on a new connection made by `open` and resolves with what comes back. */
function roundTrip(open: () => Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = open();
    let got = '';
    socket.on('data', (data: Buffer) => {
      got += data.toString('utf8');
      if (got.length >= text.length) {
        socket.destroy();
        resolve(got);
      }
    });
    socket.on('error', reject);
    socket.write(text);
  });
}

test('TCP on a node address → a unix socket, and a unix socket → TCP, chained: bytes go both ways; closing cuts the connections', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vireo-relay-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const qemuSide = join(dir, 'in.sock');
  const echo = echoServer();
  await listening(echo, (done) => { echo.listen(qemuSide, done); });
  t.after(() => { echo.close(); });
  const inbound = await SocketRelay.tcpToUnix('127.0.0.1', qemuSide);
  const outbound = await SocketRelay.unixToTcp(join(dir, 'out.sock'), '127.0.0.1', inbound.port);
  assert.equal(await roundTrip(() => connect({ path: join(dir, 'out.sock') }), 'migration stream'), 'migration stream');
  assert.equal(await roundTrip(() => connect({ host: '127.0.0.1', port: inbound.port }), 'nbd'), 'nbd');
  await closeRelays([outbound, inbound]);
  await assert.rejects(roundTrip(() => connect({ path: join(dir, 'out.sock') }), 'gone'), /ENOENT|ECONNREFUSED/);
});
