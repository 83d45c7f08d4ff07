import { test } from 'node:test';
import assert from 'node:assert/strict';
import { guestTopology } from './preference.js';

test('guest CPU topology follows the preference', () => {
  assert.deepEqual(guestTopology(4, undefined), { sockets: 4, cores: 1, threads: 1 });
  assert.deepEqual(guestTopology(4, { cpu: { preferredCPUTopology: 'preferCores' } }), { sockets: 1, cores: 4, threads: 1 });
  assert.deepEqual(guestTopology(4, { cpu: { preferredCPUTopology: 'threads' } }), { sockets: 1, cores: 1, threads: 4 });
  assert.deepEqual(guestTopology(8, { cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'SocketsCoresThreads', ratio: 2 } } }), { sockets: 2, cores: 2, threads: 2 });
  assert.deepEqual(guestTopology(1, { cpu: { preferredCPUTopology: 'cores' } }), { sockets: 1, cores: 1, threads: 1 });
});
