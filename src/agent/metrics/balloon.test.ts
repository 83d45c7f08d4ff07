/**
 * The balloon's guest statistics: QEMU's answer mapped to KubeVirt's
 * families, and the asking against a real QEMU (its polling interval, its
 * "not reported" values, a QEMU without a balloon, answers kept until the
 * guest's next report). The guest's side is in test/agent/metrics.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startQemu } from '../../testing/qemu.js';
import { QmpClient, balloonGuestStats } from '../qmp/index.js';
import { askGuestMemory, writeGuestMemory } from './balloon.js';
import type { Bounded } from './balloon.js';
import { Exposition, parseSamples } from './exposition.js';

const bounded: Bounded = (promise) => promise.catch(() => undefined);

/** A real QEMU, stopped before its guest starts (`-S`), with `devices` and QMP on a socket. */
async function withQemu(devices: string[], run: (qmp: QmpClient) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vballoon-'));
  const socket = join(dir, 'qmp.sock');
  const qemu = startQemu({ binary: 'qemu-system-x86_64', args: ['-machine', 'q35', '-accel', 'tcg', '-S', '-nodefaults', '-display', 'none', ...devices, '-qmp', `unix:${socket},server=on,wait=off`], env: {}, warnings: [] }, { signal: AbortSignal.timeout(60_000) });
  try {
    const qmp = await QmpClient.connect(socket, { timeoutMs: 20_000 });
    try {
      await run(qmp);
    } finally {
      qmp.close();
    }
  } finally {
    qemu.kill('SIGKILL');
    await qemu.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/** QEMU's -1 ("not reported") as QEMU 7.2 prints it: 2^64 - 1, which a double cannot hold exactly. */
const notReported = Number('18446744073709551615');

/** QEMU 7.2's answer to `qom-get guest-stats` from a guest that does not report huge page allocations. */
const reported = {
  stats: {
    'stat-swap-in': 0, 'stat-swap-out': 4096, 'stat-major-faults': 12, 'stat-minor-faults': 34567,
    'stat-free-memory': 26_000_000, 'stat-total-memory': 81_793_024, 'stat-available-memory': 33_000_000, 'stat-disk-caches': 16_000_000,
    'stat-htlb-pgalloc': notReported, 'stat-htlb-pgfail': notReported,
  },
  'last-update': 1_795_861_283,
};

describe('the balloon\'s guest memory statistics', () => {
  it('maps QEMU\'s statistics to KubeVirt\'s families the way libvirt does, in bytes, leaving out what the guest does not report', () => {
    const stats = balloonGuestStats({ ...reported, stats: { ...reported.stats, 'stat-swap-in': notReported } }, 'return');
    const out = new Exposition();
    writeGuestMemory(out, 'name="web"', { pollingSeconds: 10, stats });
    const samples = Object.fromEntries(parseSamples(out.text()).map((s) => [s.name, s.value]));
    assert.deepEqual(samples, {
      kubevirt_vmi_memory_available_bytes: 81_793_024,
      kubevirt_vmi_memory_usable_bytes: 33_000_000,
      kubevirt_vmi_memory_unused_bytes: 26_000_000,
      kubevirt_vmi_memory_cached_bytes: 16_000_000,
      kubevirt_vmi_memory_swap_out_traffic_bytes: 4096,
      kubevirt_vmi_memory_pgmajfault_total: 12,
      kubevirt_vmi_memory_pgminfault_total: 34567,
    });
  });

  it('rejects an answer that is not QEMU\'s shape', () => {
    assert.throws(() => balloonGuestStats({ stats: { 'stat-free-memory': 'lots' }, 'last-update': 1 }, 'return'), /return\.stats\.stat-free-memory: expected a number/);
  });

  it('reads the polling interval from a real QEMU and writes nothing before the guest reports', async () => {
    await withQemu(['-device', 'virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=10'], async (qmp) => {
      const answer = await askGuestMemory(qmp, bounded, undefined);
      assert.equal(answer?.pollingSeconds, 10);
      assert.equal(answer.stats?.['last-update'], 0);
      // QEMU holds -1 (printed as 2^64 - 1) for every statistic until the guest's first report.
      assert.deepEqual(Object.values(answer.stats?.stats ?? {}).filter((v) => v !== undefined), []);
      const out = new Exposition();
      writeGuestMemory(out, 'name="web"', answer);
      assert.equal(out.text(), '');
    });
  });

  it('asks a QEMU without a balloon once, then never again', async () => {
    await withQemu([], async (qmp) => {
      const answer = await askGuestMemory(qmp, bounded, undefined);
      assert.deepEqual(answer, { pollingSeconds: 0 });
      qmp.close();
      assert.deepEqual(await askGuestMemory(qmp, bounded, answer), { pollingSeconds: 0 });
    });
  });

  it('keeps the statistics it has until the guest\'s next report is due, then asks again', async () => {
    await withQemu(['-device', 'virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=10'], async (qmp) => {
      const lastUpdateMs = reported['last-update'] * 1000;
      const known = { pollingSeconds: 10, askedAtMs: lastUpdateMs + 3_000, stats: balloonGuestStats(reported, 'return') };
      assert.equal(await askGuestMemory(qmp, bounded, known, lastUpdateMs + 11_000), known, 'nothing new before the next report');
      const asked = await askGuestMemory(qmp, bounded, known, lastUpdateMs + 12_500);
      assert.equal(asked?.stats?.['last-update'], 0, 'QEMU\'s own answer, asked again');
      assert.equal(asked.askedAtMs, lastUpdateMs + 12_500);
      // Before the guest's first report, QEMU is asked once an interval.
      assert.equal(await askGuestMemory(qmp, bounded, asked, lastUpdateMs + 20_000), asked, 'no report yet: not asked again within the interval');
      assert.notEqual(await askGuestMemory(qmp, bounded, asked, lastUpdateMs + 23_000), asked, 'asked again an interval later');
    });
  });

  it('keeps serving the statistics it has when QEMU\'s answer comes too late, and asks again next time', async () => {
    await withQemu(['-device', 'virtio-balloon-pci,id=balloon0,guest-stats-polling-interval=10'], async (qmp) => {
      const lastUpdateMs = reported['last-update'] * 1000;
      const known = { pollingSeconds: 10, askedAtMs: lastUpdateMs + 3_000, stats: balloonGuestStats(reported, 'return') };
      // The QMP answer misses the scrape's deadline.
      const late: Bounded = async (promise) => { await promise.catch(() => undefined); return undefined; };
      const answer = await askGuestMemory(qmp, late, known, lastUpdateMs + 12_500);
      assert.equal(answer?.stats, known.stats, 'the previous statistics stay');
      assert.equal(answer.askedAtMs, undefined, 'not marked as asked: the next asking asks QEMU');
      const next = await askGuestMemory(qmp, bounded, answer, lastUpdateMs + 12_600);
      assert.equal(next?.stats?.['last-update'], 0, 'QEMU\'s own answer this time');
    });
  });
});
