/**
 * The host's view of a VMI's memory, from its cgroup's `memory.stat`:
 * `kubevirt_vmi_memory_{anon,anon_thp,shmem_thp,inactive_anon,active_anon}_bytes`.
 * KubeVirt reads them from the launcher pod's cgroup (cgroup v2 only); in
 * Vireo the VMI's cgroup holds its QEMU alone.
 *
 * cgroup v2 names them as the metrics do. On cgroup v1 the hierarchical
 * `total_*` fields stand in: `total_rss` (anonymous memory and swap cache)
 * for `anon`, `total_rss_huge` for `anon_thp`, `total_inactive_anon` and
 * `total_active_anon`; v1 does not count shared memory in huge pages, so
 * `shmem_thp` is left out there.
 */
import { join } from 'node:path';
import type { Exposition } from './exposition.js';
import { gaugeFamily as gauge } from './exposition.js';
import { keyedNumbers, readText } from './kernel-files.js';

/** KubeVirt's cgroup memory families, with KubeVirt's help texts in substance. */
export const cgroupMemoryFamilies = {
  anon: gauge('kubevirt_vmi_memory_anon_bytes', 'Anonymous memory usage of the container cgroup in bytes, from cgroup memory.stat.'),
  anonThp: gauge('kubevirt_vmi_memory_anon_thp_bytes', 'Anonymous memory backed by transparent huge pages in the container cgroup in bytes, from cgroup memory.stat.'),
  shmemThp: gauge('kubevirt_vmi_memory_shmem_thp_bytes', 'Shared memory backed by transparent huge pages in the container cgroup in bytes. Relevant when QEMU uses memfd-backed guest memory.'),
  inactiveAnon: gauge('kubevirt_vmi_memory_inactive_anon_bytes', 'Inactive anonymous memory in the container cgroup in bytes. High values indicate reclaim-eligible pages that may be swapped under pressure.'),
  activeAnon: gauge('kubevirt_vmi_memory_active_anon_bytes', 'Active anonymous memory in the container cgroup in bytes. Recently accessed pages are less likely to be reclaimed.'),
} as const;

/** The cgroup's anonymous memory in bytes; a field the kernel does not have is undefined. */
export interface CgroupMemory {
  anon?: number | undefined;
  anonThp?: number | undefined;
  shmemThp?: number | undefined;
  inactiveAnon?: number | undefined;
  activeAnon?: number | undefined;
}

/** How the scrape reads a file (through a descriptor it keeps, or plainly), and where it found `memory.stat` before. */
export interface MemoryStatReading {
  read: (file: string) => string | undefined;
  found?: { memoryStat?: string };
}

/** `memory.stat` of the VMI's cgroup (v2, or v1's memory controller), read from the first of `dirs` that has one. */
export function cgroupMemory(dirs: readonly string[], reading: MemoryStatReading = { read: readText }): CgroupMemory | undefined {
  const known = reading.found?.memoryStat;
  // Probing reads plainly: a file that is not there is not kept.
  const text = known !== undefined ? reading.read(known) : undefined;
  if (text !== undefined) return parseMemoryStat(text);
  for (const dir of dirs) {
    const path = join(dir, 'memory.stat');
    const probed = readText(path);
    if (probed === undefined) continue;
    if (reading.found !== undefined) reading.found.memoryStat = path;
    return parseMemoryStat(probed);
  }
  return undefined;
}

/** The families' fields of a `memory.stat` text, by v1's names when it has them (`total_rss`), else v2's. */
function parseMemoryStat(text: string): CgroupMemory {
  const stat = keyedNumbers(text);
  if (stat.has('total_rss')) {
    return { anon: stat.get('total_rss'), anonThp: stat.get('total_rss_huge'), inactiveAnon: stat.get('total_inactive_anon'), activeAnon: stat.get('total_active_anon') };
  }
  return { anon: stat.get('anon'), anonThp: stat.get('anon_thp'), shmemThp: stat.get('shmem_thp'), inactiveAnon: stat.get('inactive_anon'), activeAnon: stat.get('active_anon') };
}

/** Adds the VMI cgroup's memory to `out` under the VMI's labels (`base`: their text, as `labelText` writes it). */
export function writeCgroupMemory(out: Exposition, base: string, dirs: readonly string[], reading?: MemoryStatReading): void {
  const memory = cgroupMemory(dirs, reading);
  if (memory === undefined) return;
  const f = cgroupMemoryFamilies;
  out.addText(f.anon, base, memory.anon);
  out.addText(f.anonThp, base, memory.anonThp);
  out.addText(f.shmemThp, base, memory.shmemThp);
  out.addText(f.inactiveAnon, base, memory.inactiveAnon);
  out.addText(f.activeAnon, base, memory.activeAnon);
}
