import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodeError } from './decode.js';
import { decodeEvent, greeting, returnDecoder } from './schema.js';

const timestamp = { seconds: 1700000000, microseconds: 250000 };

function decodeFails(run: () => unknown, path: string, expected: RegExp): void {
  assert.throws(run, (err: unknown) => {
    assert.ok(err instanceof DecodeError, String(err));
    assert.equal(err.path, path);
    assert.match(err.message, expected);
    return true;
  });
}

describe('QMP schema', () => {
  it('types a good query-status reply and drops members it does not know', () => {
    assert.deepEqual(returnDecoder('query-status')({ running: true, status: 'running', singlestep: false, extra: 1 }, 'return'), { running: true, status: 'running', singlestep: false });
  });

  it('rejects a run state QEMU does not have', () => {
    decodeFails(() => returnDecoder('query-status')({ running: true, status: 'flying' }, 'return'), 'return.status', /expected one of debug\|.*got "flying"/);
  });

  it('rejects a missing member with its path', () => {
    decodeFails(() => returnDecoder('query-cpus-fast')([{ 'cpu-index': 0, 'qom-path': '/machine/unattached/device[0]', target: 'x86_64' }], 'return'), 'return[0].thread-id', /expected an integer, got nothing/);
  });

  it('rejects a wrongly typed return', () => {
    decodeFails(() => returnDecoder('human-monitor-command')({ text: 'hi' }, 'return'), 'return', /expected a string/);
    decodeFails(() => returnDecoder('query-block')({}, 'return'), 'return', /expected an array/);
  });

  it('checks the greeting', () => {
    const good = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: 'Debian' }, capabilities: ['oob'] } };
    assert.deepEqual(greeting(good, 'greeting'), good);
    decodeFails(() => greeting({ QMP: { version: { qemu: { major: '7' } } } }, 'greeting'), 'greeting.QMP.version.qemu.major', /integer/);
  });

  it('types known events, including those without data', () => {
    assert.deepEqual(decodeEvent({ event: 'STOP', timestamp }), { event: 'STOP', data: {}, timestamp: new Date(1700000000250) });
    const shutdown = decodeEvent({ event: 'SHUTDOWN', data: { guest: true, reason: 'guest-shutdown' }, timestamp });
    assert.equal(shutdown.event, 'SHUTDOWN');
    if (shutdown.event === 'SHUTDOWN') assert.equal(shutdown.data.reason, 'guest-shutdown');
  });

  it('passes unknown events on, unchecked and marked', () => {
    assert.deepEqual(decodeEvent({ event: 'NIC_RX_FILTER_CHANGED', data: { path: '/x' }, timestamp }), { event: 'unknown', name: 'NIC_RX_FILTER_CHANGED', data: { path: '/x' }, timestamp: new Date(1700000000250) });
  });

  it('rejects a malformed known event', () => {
    decodeFails(() => decodeEvent({ event: 'SHUTDOWN', data: { guest: 'yes', reason: 'guest-shutdown' }, timestamp }), 'SHUTDOWN.data.guest', /boolean/);
    decodeFails(() => decodeEvent({ event: 'GUEST_PANICKED', data: { action: 'explode' }, timestamp }), 'GUEST_PANICKED.data.action', /pause\|poweroff\|run/);
    decodeFails(() => decodeEvent({ event: 'RESUME' }), 'event.timestamp', /object/);
  });
});
