import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fenceTimeoutMs, leaseRenewIntervalMs, parseDurationMs } from '../api/kinds/node-lifecycle.js';
import { silentLogger } from '../log/logger.js';
import { eventually } from '../testing/wait.js';
import type { FencedGuest } from './node-fence.js';
import { NodeFence } from './node-fence.js';

test('the fencing timeout leaves a margin below the grace period, and renews fit in it four times', () => {
  assert.equal(fenceTimeoutMs(50_000), 40_000);
  assert.equal(leaseRenewIntervalMs(50_000), 10_000);
  assert.equal(fenceTimeoutMs(12_000), 8_000);
  assert.equal(leaseRenewIntervalMs(12_000), 2_000);
  assert.equal(parseDurationMs('1m30s'), 90_000);
  assert.equal(parseDurationMs('12'), undefined);
});

test('an agent fences (kills its guests, records it) only once its Lease is older than the timeout, and recovers on a renew', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-fence-'));
  let now = 0;
  const kills: number[] = [];
  const recovered: FencedGuest[][] = [];
  const guest = { namespace: 'default', name: 'g', uid: 'u1' };
  const fence = new NodeFence({ dataDir: dir, logger: silentLogger, now: () => now, checkEveryMs: 5, killGuests: () => { kills.push(now); return Promise.resolve([guest]); }, onRecovered: (g) => recovered.push(g) });
  fence.start();
  try {
    // No grace period learned: never fences.
    now = 1_000_000;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(kills, []);
    fence.renewed(1_000_000);
    fence.setGracePeriod(12_000);
    now = 1_000_000 + 7_999;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(kills, []);
    assert.equal(fence.mayStartGuests(), true);
    now = 1_000_000 + 8_001;
    await eventually(() => kills.length === 1 || undefined, { what: 'the fence to fire' });
    assert.equal(fence.mayStartGuests(), false);
    const record = await eventually(() => { try { return JSON.parse(readFileSync(join(dir, 'fenced.json'), 'utf8')) as { guests: FencedGuest[] }; } catch { return undefined; } }, { what: 'fenced.json' });
    assert.deepEqual(record.guests, [guest]);
    now += 5_000;
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(kills.length, 1, 'fences once');
    fence.renewed(now);
    assert.deepEqual(recovered, [[guest]]);
    assert.equal(fence.mayStartGuests(), true);
  } finally {
    await fence.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
