import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConvergenceMonitor } from './convergence.js';
import type { ConvergenceSettings } from './convergence.js';

const preCopyOnly: ConvergenceSettings = { allowAutoConverge: false, allowPostCopy: false, allowWorkloadDisruption: false, completionTimeoutPerGiB: 150, progressTimeoutSeconds: 150 };
const mib128 = 128 * 2 ** 20;
const s = 1000;

test('the completion timeout aborts a pre-copy migration with KubeVirt\'s reason, once more than the acceptable time passed', () => {
  const monitor = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 3 }, mib128, 0);
  assert.equal(monitor.completionTimeoutSeconds, 3);
  // Progress all along: only the clock counts.
  assert.deepEqual(monitor.observe(1 * s, 100, 'PreCopy'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(3 * s, 90, 'PreCopy'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(3999, 80, 'PreCopy'), { kind: 'wait' }, '3.999 s is 3 whole seconds: not more than 3');
  assert.deepEqual(monitor.observe(4 * s, 70, 'PreCopy'), { kind: 'abort', reason: 'Live migration is not completed after 3 sec and has been aborted' });
});

test('with post-copy allowed, the completion timeout switches to post-copy once, then nothing aborts it', () => {
  const monitor = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 2, allowPostCopy: true, allowWorkloadDisruption: true, progressTimeoutSeconds: 1 }, mib128, 0);
  assert.deepEqual(monitor.observe(1 * s, 100, 'PreCopy'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(3 * s, 100, 'PreCopy'), { kind: 'post-copy' });
  // Still pre-copy (the disks were mirroring): no second request, and the completion timeout no longer aborts; the progress timeout still does.
  assert.deepEqual(monitor.observe(3500, 90, 'PreCopy'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(6 * s, 90, 'PreCopy'), { kind: 'abort', reason: 'Live migration stuck for 2 sec and has been aborted' });
  assert.deepEqual(monitor.observe(60 * s, 90, 'PostCopy'), { kind: 'wait' }, 'in post-copy nothing is tracked');
});

test('post-copy allowed but workload disruption refused: the timeout aborts (KubeVirt\'s rule)', () => {
  const monitor = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 1, allowPostCopy: true, allowWorkloadDisruption: false }, mib128, 0);
  assert.equal(monitor.observe(2 * s, 1, 'PreCopy').kind, 'abort');
});

test('workload disruption without post-copy pauses the guest and doubles the time before an abort', () => {
  const monitor = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 2, allowWorkloadDisruption: true }, mib128, 0);
  let remaining = 1000;
  assert.deepEqual(monitor.observe(3 * s, remaining--, 'PreCopy'), { kind: 'pause' });
  assert.equal(monitor.completionTimeoutSeconds, 4);
  assert.deepEqual(monitor.observe(4 * s, remaining--, 'Paused'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(5 * s, remaining--, 'Paused'), { kind: 'abort', reason: 'Live migration is not completed after 4 sec and has been aborted' });
});

test('the progress timeout aborts when the data remaining has not shrunk for longer than it', () => {
  const monitor = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 0, progressTimeoutSeconds: 5 }, mib128, 0);
  assert.deepEqual(monitor.observe(1 * s, 500, 'PreCopy'), { kind: 'wait' });
  // A new pass grows the remaining data; then it shrinks again: progress.
  assert.deepEqual(monitor.observe(4 * s, 800, 'PreCopy'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(5 * s, 700, 'PreCopy'), { kind: 'wait' });
  assert.deepEqual(monitor.observe(10 * s, 700, 'PreCopy'), { kind: 'wait' }, 'stuck 5 s: not more than 5');
  assert.deepEqual(monitor.observe(11 * s, 700, 'PreCopy'), { kind: 'abort', reason: 'Live migration stuck for 6 sec and has been aborted' });
});

test('no samples from QEMU count as no progress; timeouts of 0 never fire', () => {
  const stuck = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 0, progressTimeoutSeconds: 2 }, mib128, 0);
  assert.equal(stuck.observe(3 * s, undefined, 'PreCopy').kind, 'abort');
  const patient = new ConvergenceMonitor({ ...preCopyOnly, completionTimeoutPerGiB: 0, progressTimeoutSeconds: 0 }, mib128, 0);
  assert.deepEqual(patient.observe(3600 * s, 1, 'PreCopy'), { kind: 'wait' });
});
