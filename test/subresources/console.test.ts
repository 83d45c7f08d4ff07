/**
 * console and vnc over WebSocket (`plain.kubevirt.io`): 101 with the
 * subprotocol, raw bytes both ways in binary frames through a real guest
 * stream, several sessions at once, large transfers intact under
 * backpressure, and every refusal as a plain HTTP Status before the upgrade.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { WebSocket } from 'ws';
import type { IncomingMessage } from 'node:http';
import { dialStream, toBuffer } from '../../src/console/index.js';
import { ApiError } from '../../src/api/errors.js';
import { LocalAgentDirectory } from '../../src/agent/handle.js';
import { serveWithAgents } from '../../src/testing/agent-handle.js';
import { createVmi, runningVmi, startFixture, subresources } from './support.js';
import type { Fixture } from './support.js';

let fx: Fixture;
before(async () => { fx = await startFixture(); });
after(async () => { await fx.stop(); });

function path(name: string, kind = 'console'): string {
  return `${subresources}/default/virtualmachineinstances/${name}/${kind}`;
}

function dial(name: string, kind = 'console'): Promise<WebSocket> {
  return dialStream({ server: fx.door.url, token: fx.test.token, caCert: fx.test.pki.caCert, path: path(name, kind) });
}

/** Collects binary frames until `wanted` bytes have arrived. */
function receive(ws: WebSocket, wanted: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onMessage = (data: WebSocket.RawData, isBinary: boolean): void => {
      if (!isBinary) { reject(new Error('the server sent a text frame')); return; }
      const buf = toBuffer(data);
      chunks.push(buf);
      size += buf.length;
      if (size >= wanted) {
        ws.off('message', onMessage);
        resolve(Buffer.concat(chunks));
      }
    };
    ws.on('message', onMessage);
    ws.once('close', () => { reject(new Error(`the stream closed after ${size} of ${wanted} bytes`)); });
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) { resolve(ws.readyState); return; }
    ws.once('close', (code: number) => { resolve(code); });
    ws.close(1000);
  });
}

/** Attempts an upgrade and returns the HTTP answer when it is refused. */
function refusedUpgrade(target: string, options: { token?: string; protocols?: string[] } = {}): Promise<{ status: number; body: { message: string; code: number; kind: string } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${fx.door.url.replace(/^https/, 'wss')}${target}`, options.protocols ?? ['plain.kubevirt.io'], {
      headers: { authorization: `Bearer ${options.token ?? fx.test.token}` },
      ca: fx.test.pki.caCert,
    });
    ws.on('error', () => undefined);
    ws.once('open', () => { ws.terminate(); reject(new Error('the upgrade was accepted')); });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message: string; code: number; kind: string } });
      });
    });
  });
}

test('console upgrades with plain.kubevirt.io and echoes bytes through the guest stream in binary frames', async () => {
  await runningVmi(fx, 'echo-1');
  const ws = new WebSocket(`${fx.door.url.replace(/^https/, 'wss')}${path('echo-1')}`, ['plain.kubevirt.io'], {
    headers: { authorization: `Bearer ${fx.test.token}` },
    ca: fx.test.pki.caCert,
  });
  const upgrade = new Promise<IncomingMessage>((resolve) => ws.once('upgrade', resolve));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  const res = await upgrade;
  assert.equal(res.statusCode, 101);
  assert.equal(res.headers['sec-websocket-protocol'], 'plain.kubevirt.io');
  const echoed = receive(ws, 11);
  ws.send(Buffer.from('hello guest'), { binary: true });
  assert.equal((await echoed).toString('utf8'), 'hello guest');
  await closed(ws);
});

test('two console sessions at once each see the serial line, like two terminals on one tty', async () => {
  await runningVmi(fx, 'shared');
  const a = await dial('shared');
  const b = await dial('shared');
  const seenByA = receive(a, 8);
  const seenByB = receive(b, 8);
  a.send(Buffer.from('from-a\r\n'));
  assert.equal((await seenByA).toString(), 'from-a\r\n');
  assert.equal((await seenByB).toString(), 'from-a\r\n');
  const again = receive(a, 8);
  b.send(Buffer.from('from-b\r\n'));
  assert.equal((await again).toString(), 'from-b\r\n');
  await Promise.all([closed(a), closed(b)]);
});

test('vnc is a byte stream too, and megabytes pass intact under backpressure', async () => {
  await runningVmi(fx, 'bulk');
  const ws = await dial('bulk', 'vnc');
  const payload = randomBytes(8 * 1024 * 1024);
  const echoed = receive(ws, payload.length);
  for (let at = 0; at < payload.length; at += 64 * 1024) ws.send(payload.subarray(at, at + 64 * 1024));
  assert.ok((await echoed).equals(payload), 'the echoed bytes differ from the sent ones');
  await closed(ws);
});

test('refusals come before the upgrade as Status answers: 404, 400 not running, 401, 400 subprotocol, 503', async () => {
  const missing = await refusedUpgrade(path('nobody'));
  assert.equal(missing.status, 404);
  assert.equal(missing.body.kind, 'Status');
  assert.equal(missing.body.message, 'virtualmachineinstances.kubevirt.io "nobody" not found');

  await createVmi(fx.test, 'stopped', { phase: 'Succeeded', nodeName: 'node-a' });
  const stopped = await refusedUpgrade(path('stopped'));
  assert.equal(stopped.status, 400);
  assert.match(stopped.body.message, /^VMI is not running \(phase Succeeded\)/);

  await runningVmi(fx, 'guarded');
  assert.equal((await refusedUpgrade(path('guarded'), { token: 'wrong' })).status, 401);
  const protocol = await refusedUpgrade(path('guarded'), { protocols: ['v4.channel.k8s.io'] });
  assert.equal(protocol.status, 400);
  assert.match(protocol.body.message, /speaks plain\.kubevirt\.io/);
  assert.equal((await refusedUpgrade(path('guarded', 'pause'))).status, 400);
  assert.equal((await refusedUpgrade('/api/v1/namespaces/default/pods/p/exec')).status, 400);

  await createVmi(fx.test, 'far-away', { phase: 'Running', nodeName: 'node-q' });
  const noAgent = await refusedUpgrade(path('far-away'));
  assert.equal(noAgent.status, 503);
  assert.match(noAgent.body.message, /node node-q has no agent connected/);
});

test('the dialer turns a refused upgrade into the server\'s ApiError', async () => {
  await assert.rejects(dial('nobody-either'), (err: unknown) => err instanceof ApiError && err.reason === 'NotFound' && err.message.includes('"nobody-either" not found'));
});

test('a plain GET of console (no upgrade) is a 400 that says how to connect', async () => {
  await runningVmi(fx, 'plain-get');
  const res = await fx.client.raw('GET', path('plain-get'));
  assert.equal(res.status, 400);
  assert.match(res.body, /is a WebSocket endpoint/);
});

test('stopping the server ends open console sessions instead of waiting for them', async () => {
  await runningVmi(fx, 'at-shutdown');
  const agents = new LocalAgentDirectory();
  agents.register(fx.agent);
  const door = await serveWithAgents(fx.test, agents);
  const ws = await dialStream({ server: door.url, token: fx.test.token, caCert: fx.test.pki.caCert, path: path('at-shutdown') });
  const gone = new Promise<number>((resolve) => ws.once('close', (code: number) => { resolve(code); }));
  await door.stop();
  assert.equal(await gone, 1006);
});

test('portforward refusals: a bad port or UDP is a 400, a missing VM a 404, a plain GET says how to connect', async () => {
  await runningVmi(fx, 'pf-guest');
  const badPort = await refusedUpgrade(path('pf-guest', 'portforward/70000'));
  assert.equal(badPort.status, 400);
  assert.match(badPort.body.message, /portforward needs a port from 1 to 65535, not "70000"/);
  const udp = await refusedUpgrade(path('pf-guest', 'portforward/53/udp'));
  assert.equal(udp.status, 400);
  assert.match(udp.body.message, /UDP port forwarding is not supported/);
  const plain = await fx.client.raw('GET', path('pf-guest', 'portforward/22'));
  assert.equal(plain.status, 400);
  assert.match(plain.body, /vireo port-forward vmi\/pf-guest 22/);
  const missing = await refusedUpgrade(`${subresources}/default/virtualmachines/no-vm/portforward/22`);
  assert.equal(missing.status, 404);
});
