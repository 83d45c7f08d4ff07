import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { advertisedAddress } from './agent-command.js';
import { CliError } from './errors.js';

test('the advertised address is --address, else the --listen host, else a host IPv4', () => {
  assert.equal(advertisedAddress('10.1.2.3', '0.0.0.0'), '10.1.2.3');
  assert.equal(advertisedAddress(undefined, '127.0.0.1'), '127.0.0.1');
  assert.equal(advertisedAddress(undefined, '::1'), '::1');
  assert.equal(isIP(advertisedAddress(undefined, '0.0.0.0')), 4);
  assert.throws(() => advertisedAddress('node-b.example', '0.0.0.0'), (err: unknown) => err instanceof CliError && err.code === 'usage' && /is not an IP address/.test(err.message));
});
