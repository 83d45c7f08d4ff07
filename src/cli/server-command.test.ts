import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGracePeriodFlag } from './server-command.js';

test('--node-monitor-grace-period takes Go durations of at least 6 s, Kubernetes\' 50 s by default', () => {
  assert.equal(parseGracePeriodFlag(undefined), 50_000);
  assert.equal(parseGracePeriodFlag('12s'), 12_000);
  assert.equal(parseGracePeriodFlag('1m30s'), 90_000);
  assert.throws(() => parseGracePeriodFlag('12'), /is not a duration: use e\.g\. 50s/);
  assert.throws(() => parseGracePeriodFlag('5s'), /too short: .* at least 6s/);
});
