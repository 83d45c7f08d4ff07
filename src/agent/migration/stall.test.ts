import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { StallWatch, probeTarget } from './stall.js';

test('a stall is reported once no byte moved for the limit, and forgotten when bytes move again', () => {
  const watch = new StallWatch(10_000, 0);
  assert.equal(watch.observe(0, 0), undefined);
  assert.equal(watch.observe(100, 4_000), undefined);
  assert.equal(watch.observe(100, 13_000), undefined, '9 s without data is not yet a stall');
  assert.match(watch.observe(100, 14_000) ?? '', /no data reached the target for 10 s: the target node or the network to it is down/);
  assert.equal(watch.observe(200, 15_000), undefined);
  assert.equal(watch.observe(200, 24_000), undefined);
});

test('the NBD probe resolves on a listening port and says why on a closed one', async () => {
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const address = server.address();
  assert.ok(address !== null && typeof address !== 'string');
  const target = { address: '127.0.0.1', migrationPort: 1, nbdPort: address.port, exports: [] };
  await probeTarget(target);
  await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
  await assert.rejects(probeTarget(target), new RegExp(`the target's NBD server at 127.0.0.1:${address.port} refused the connection .*: the target node or the network to it is down`));
});
