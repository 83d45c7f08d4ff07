import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSize, progressLine, summaryLine } from './progress.js';

test('sizes in binary units', () => {
  assert.equal(formatSize(512), '512 B');
  assert.equal(formatSize(1536), '1.5 KiB');
  assert.equal(formatSize(256 * 1024 * 1024), '256.0 MiB');
});

test('the progress line shows percent, bar, bytes and rate', () => {
  assert.equal(progressLine(0, 1024, 0, 10), '  0% [>         ] 0 B / 1.0 KiB  -');
  assert.equal(progressLine(512, 1024, 1000, 10), ' 50% [=====>    ] 512 B / 1.0 KiB  512 B/s');
  assert.equal(progressLine(1024, 1024, 500, 10), '100% [==========] 1.0 KiB / 1.0 KiB  2.0 KiB/s');
});

test('the summary line for a pipe', () => {
  assert.equal(summaryLine(10 * 1024 * 1024, 2000), '10.0 MiB sent in 2.0 s (5.0 MiB/s)');
});
