/**
 * The guest's own view of its memory: KubeVirt's
 * `kubevirt_vmi_memory_{available,usable,unused,cached,swap_in_traffic,swap_out_traffic}_bytes`
 * and `kubevirt_vmi_memory_{pgmajfault,pgminfault}_total`, from the
 * virtio-balloon driver's statistics.
 *
 * QEMU asks the guest's driver for them every `guest-stats-polling-interval`
 * seconds (set on the device's command line: KubeVirt's default period, 10 s)
 * and keeps the last ones; `qom-get … guest-stats` reads them without
 * reaching the guest. The mapping is libvirt's (whose `balloon.*` domain
 * stats KubeVirt reads): `stat-total-memory` is KubeVirt's `available`,
 * `stat-available-memory` its `usable` (MemAvailable), `stat-free-memory`
 * its `unused`, `stat-disk-caches` its `cached`. QEMU reports bytes where
 * libvirt reports KiB and KubeVirt multiplies back, so the bytes pass as
 * they are; the fault counts are counts. A statistic the guest does not
 * report is left out, and so is everything until the guest's first report
 * (or when there is no balloon, or QEMU does not poll it).
 */
import type { Machine } from '../machine.js';
import { balloonGuestStats } from '../qmp/index.js';
import type { BalloonGuestStats } from '../qmp/index.js';
import type { Exposition } from './exposition.js';
import { counterFamily as counter, gaugeFamily as gauge } from './exposition.js';

/** KubeVirt's families from the balloon's guest statistics, with KubeVirt's help texts in substance. */
export const balloonFamilies = {
  available: gauge('kubevirt_vmi_memory_available_bytes', 'Amount of usable memory as seen by the domain. This value may not be accurate if a balloon driver is in use or if the guest OS does not initialize all assigned pages'),
  usable: gauge('kubevirt_vmi_memory_usable_bytes', 'The amount of memory which can be reclaimed by balloon without pushing the guest system to swap, corresponds to \'Available\' in /proc/meminfo.'),
  unused: gauge('kubevirt_vmi_memory_unused_bytes', 'The amount of memory left completely unused by the system. Memory that is available but used for reclaimable caches should NOT be reported as free.'),
  cached: gauge('kubevirt_vmi_memory_cached_bytes', 'The amount of memory that is being used to cache I/O and is available to be reclaimed, corresponds to the sum of `Buffers` + `Cached` + `SwapCached` in `/proc/meminfo`.'),
  swapIn: gauge('kubevirt_vmi_memory_swap_in_traffic_bytes', 'The total amount of data read from swap space of the guest in bytes.'),
  swapOut: gauge('kubevirt_vmi_memory_swap_out_traffic_bytes', 'The total amount of memory written out to swap space of the guest in bytes.'),
  majorFaults: counter('kubevirt_vmi_memory_pgmajfault_total', 'The number of page faults when disk IO was required. Page faults occur when a process makes a valid access to virtual memory that is not available. When servicing the page fault, if disk IO is required, it is considered as major fault.'),
  minorFaults: counter('kubevirt_vmi_memory_pgminfault_total', 'The number of other page faults, when disk IO was not required. Page faults occur when a process makes a valid access to virtual memory that is not available. When servicing the page fault, if disk IO is NOT required, it is considered as minor fault.'),
} as const;

/** The balloon device's QOM path (`-device virtio-balloon-pci,id=balloon0`). */
const balloonPath = '/machine/peripheral/balloon0';

/** What QEMU said of one guest's balloon statistics. */
export interface GuestMemoryAnswer {
  /** QEMU's `guest-stats-polling-interval` in seconds; 0 when it does not poll the guest or there is no balloon (then nothing more is asked). */
  pollingSeconds: number;
  /** The statistics, when QEMU answered for them. */
  stats?: BalloonGuestStats | undefined;
  /** When they were asked for (ms since the epoch). */
  askedAtMs?: number | undefined;
}

/** A QMP command's promise bounded by the scrape's deadline: its value, or undefined when it failed or was late. */
export type Bounded = <T>(promise: Promise<T>) => Promise<T | undefined>;

/** How long after a report is due its arrival is waited for: `last-update` counts whole seconds, and a busy guest takes a moment to answer. */
const reportGraceMs = 2_000;

/**
 * When QEMU's copy of the statistics may next have changed: at the guest's
 * next report (its last one + the interval). A copy that was already that
 * old when it was asked (no report yet: a guest without the driver, still
 * booting, paused or silent) is asked for again an interval later.
 */
function nextAskMs(known: GuestMemoryAnswer & { askedAtMs: number }): number {
  const intervalMs = known.pollingSeconds * 1000;
  const lastUpdateMs = (known.stats?.['last-update'] ?? 0) * 1000;
  const dueMs = lastUpdateMs + intervalMs + reportGraceMs;
  return lastUpdateMs > 0 && dueMs > known.askedAtMs ? dueMs : known.askedAtMs + intervalMs;
}

/**
 * Asks QEMU for the guest's balloon statistics. The polling interval is
 * asked once per QEMU (`known` keeps it); the statistics only when QEMU's
 * copy may have changed ({@link nextAskMs}): most scrapes ask nothing.
 */
export async function askGuestMemory(machine: Pick<Machine, 'execute'>, bounded: Bounded, known: GuestMemoryAnswer | undefined, nowMs: number = Date.now()): Promise<GuestMemoryAnswer | undefined> {
  let pollingSeconds = known?.pollingSeconds;
  if (pollingSeconds === undefined) {
    // A QEMU without the device answers with an error: nothing to poll, for good.
    const interval = await bounded(machine.execute('qom-get', { path: balloonPath, property: 'guest-stats-polling-interval' }).catch(() => 0));
    if (interval === undefined) return undefined;
    pollingSeconds = typeof interval === 'number' && Number.isFinite(interval) ? interval : 0;
  }
  if (pollingSeconds <= 0) return { pollingSeconds };
  if (known?.askedAtMs !== undefined && nowMs < nextAskMs({ ...known, askedAtMs: known.askedAtMs })) return known;
  const raw = await bounded(machine.execute('qom-get', { path: balloonPath, property: 'guest-stats' }));
  // Failed or late: the previous statistics stay served, and are asked for again at the next asking.
  if (raw === undefined) return { pollingSeconds, stats: known?.stats };
  try {
    return { pollingSeconds, askedAtMs: nowMs, stats: balloonGuestStats(raw, 'qom-get guest-stats') };
  } catch {
    // Not the shape QEMU documents: leave the families out rather than guess.
    return { pollingSeconds, askedAtMs: nowMs };
  }
}

/** Adds the guest's memory statistics to `out` under the VMI's labels (`base`: their text, as `labelText` writes it). */
export function writeGuestMemory(out: Exposition, base: string, answer: GuestMemoryAnswer | undefined): void {
  const stats = answer?.stats;
  // last-update 0: the guest has not reported yet (every statistic is still QEMU's "not reported").
  if (stats === undefined || stats['last-update'] === 0) return;
  const f = balloonFamilies;
  const s = stats.stats;
  out.addText(f.available, base, s['stat-total-memory']);
  out.addText(f.usable, base, s['stat-available-memory']);
  out.addText(f.unused, base, s['stat-free-memory']);
  out.addText(f.cached, base, s['stat-disk-caches']);
  out.addText(f.swapIn, base, s['stat-swap-in']);
  out.addText(f.swapOut, base, s['stat-swap-out']);
  out.addText(f.majorFaults, base, s['stat-major-faults']);
  out.addText(f.minorFaults, base, s['stat-minor-faults']);
}
