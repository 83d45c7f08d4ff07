/**
 * The per-VMI families of a node agent (virt-handler's `domainstats` in
 * KubeVirt), read from the real sources at scrape time:
 * - CPU: the VMI cgroup's `cpuacct.usage`/`cpuacct.stat` (cgroup v1) or
 *   `cpu.stat` (v2);
 * - vCPUs: QMP `query-cpus-fast` gives each vCPU's thread, whose
 *   `/proc/<pid>/task/<tid>/schedstat` holds its time on a CPU and its time
 *   waiting in the run queue (`state` is `running` for every vCPU QEMU
 *   reports, as libvirt's QEMU driver says); the wait, libvirt's
 *   `vcpu.<n>.wait`, is the scheduler's `wait_sum` in
 *   `/proc/<pid>/task/<tid>/sched`, which only a kernel with scheduler
 *   statistics on has (`CONFIG_SCHEDSTATS`, `kernel.sched_schedstats=1`):
 *   elsewhere the family is left out;
 * - memory: `/proc/<pid>/status` VmRSS, QMP `query-memory-size-summary`
 *   (the domain's memory) and `query-balloon` (the balloon's size); the
 *   guest's own view from the balloon's statistics (balloon.ts) and the
 *   cgroup's anonymous memory (cgroup-memory.ts);
 * - network: the taps' counters as QEMU's network namespace sees them
 *   (`/proc/<pid>/net/dev`), received and transmitted swapped to the
 *   guest's view, as libvirt reports them;
 * - storage: QMP `query-blockstats`, by the disk's name (its device is
 *   `ua-<disk>`);
 * - migration: QMP `query-migrate` while the VMI migrates away (data
 *   processed, remaining and total, dirty rate, transfer rate).
 * - the guest agent: filesystems and load (`guest-agent-stats.ts`), from
 *   the answers its monitor keeps.
 * A source that does not answer within the deadline is left out of that
 * scrape; the others still report.
 */
import { join } from 'node:path';
import type { KObject } from '../../api/object.js';
import type { SandboxState } from '../../net/pod/sandbox.js';
import type { Machine } from '../machine.js';
import type { Exposition, Labels } from './exposition.js';
import { counterFamily as counter, escapeLabelValue, gaugeFamily as gauge, labelText, vmiLabelName } from './exposition.js';
import type { KeptFiles } from './kept-files.js';
import type { QmpReturn } from '../qmp/index.js';
import { keyedNumbers, readText } from './kernel-files.js';
import { askGuestMemory, writeGuestMemory } from './balloon.js';
import type { GuestMemoryAnswer } from './balloon.js';
import { writeCgroupMemory } from './cgroup-memory.js';
import type { GuestAgentStats } from '../guest-agent/index.js';
import { guestAgentFamilies, writeGuestAgentStats } from './guest-agent-stats.js';

/** KubeVirt's per-VMI families that the agent reports, with KubeVirt's help texts in substance. */
export const vmiFamilies = {
  cpuUsage: counter('kubevirt_vmi_cpu_usage_seconds_total', 'Total CPU time spent in all modes (sum of both vcpu and hypervisor usage).'),
  cpuUser: counter('kubevirt_vmi_cpu_user_usage_seconds_total', 'Total CPU time spent in user mode.'),
  cpuSystem: counter('kubevirt_vmi_cpu_system_usage_seconds_total', 'Total CPU time spent in system mode.'),
  vcpuSeconds: counter('kubevirt_vmi_vcpu_seconds_total', 'Total amount of time spent in each state by each vcpu (cpu_time excluding hypervisor time).'),
  vcpuWait: counter('kubevirt_vmi_vcpu_wait_seconds_total', 'Amount of time spent by each vcpu while waiting on I/O.'),
  nodeCpuAffinity: gauge('kubevirt_vmi_node_cpu_affinity', 'Number of VMI CPU affinities to node physical cores.'),
  vcpuDelay: counter('kubevirt_vmi_vcpu_delay_seconds_total', 'Amount of time spent by each vcpu waiting in the queue instead of running.'),
  memoryResident: gauge('kubevirt_vmi_memory_resident_bytes', 'Resident set size of the process running the domain.'),
  memoryDomain: gauge('kubevirt_vmi_memory_domain_bytes', 'The amount of memory in bytes allocated to the domain.'),
  memoryBalloon: gauge('kubevirt_vmi_memory_actual_balloon_bytes', 'Current balloon size in bytes.'),
  rxBytes: counter('kubevirt_vmi_network_receive_bytes_total', 'Total network traffic received in bytes.'),
  txBytes: counter('kubevirt_vmi_network_transmit_bytes_total', 'Total network traffic transmitted in bytes.'),
  rxPackets: counter('kubevirt_vmi_network_receive_packets_total', 'Total network traffic received packets.'),
  txPackets: counter('kubevirt_vmi_network_transmit_packets_total', 'Total network traffic transmitted packets.'),
  rxErrors: counter('kubevirt_vmi_network_receive_errors_total', 'Total network received error packets.'),
  txErrors: counter('kubevirt_vmi_network_transmit_errors_total', 'Total network transmitted error packets.'),
  rxDropped: counter('kubevirt_vmi_network_receive_packets_dropped_total', 'The number of rx packets dropped on vNIC interfaces.'),
  txDropped: counter('kubevirt_vmi_network_transmit_packets_dropped_total', 'The number of tx packets dropped on vNIC interfaces.'),
  trafficBytes: counter('kubevirt_vmi_network_traffic_bytes_total', '[Deprecated] Total number of bytes sent and received.'),
  readOps: counter('kubevirt_vmi_storage_iops_read_total', 'Total number of I/O read operations.'),
  writeOps: counter('kubevirt_vmi_storage_iops_write_total', 'Total number of I/O write operations.'),
  readBytes: counter('kubevirt_vmi_storage_read_traffic_bytes_total', 'Total number of bytes read from storage.'),
  writeBytes: counter('kubevirt_vmi_storage_write_traffic_bytes_total', 'Total number of written bytes.'),
  readTimes: counter('kubevirt_vmi_storage_read_times_seconds_total', 'Total time spent on read operations.'),
  writeTimes: counter('kubevirt_vmi_storage_write_times_seconds_total', 'Total time spent on write operations.'),
  flushOps: counter('kubevirt_vmi_storage_flush_requests_total', 'Total storage flush requests.'),
  flushTimes: counter('kubevirt_vmi_storage_flush_times_seconds_total', 'Total time spent on cache flushing.'),
  migrationProcessed: gauge('kubevirt_vmi_migration_data_processed_bytes', 'The total Guest OS data processed and migrated to the new VM.'),
  migrationRemaining: gauge('kubevirt_vmi_migration_data_remaining_bytes', 'The remaining guest OS data to be migrated to the new VM.'),
  migrationTotal: counter('kubevirt_vmi_migration_data_bytes_total', 'The total Guest OS data to be migrated to the new VM.'),
  migrationDirtyRate: gauge('kubevirt_vmi_migration_dirty_memory_rate_bytes', 'The rate of memory being dirty in the Guest OS.'),
  migrationTransferRate: gauge('kubevirt_vmi_migration_memory_transfer_rate_bytes', 'The rate at which the memory is being transferred.'),
  ...guestAgentFamilies,
} as const;

/** One running guest of the node, as the scrape sees it. */
export interface ScrapedGuest {
  vmi: KObject;
  machine: Machine;
  /** The VMI's cgroup directories (`Cgroups.paths`). */
  cgroupDirs: readonly string[];
  sandbox?: SandboxState | undefined;
  /** Whether this node's QEMU is the source of a migration in flight (then `query-migrate` is read). */
  migrating: boolean;
}

/** `node`, `namespace`, `name` and the VMI's labels as `kubernetes_vmi_label_*`: every per-VMI series carries them. */
export function vmiBaseLabels(vmi: KObject, node: string): Labels {
  const labels: Labels = { node, namespace: vmi.metadata.namespace ?? '', name: vmi.metadata.name ?? '' };
  for (const [key, value] of Object.entries(vmi.metadata.labels ?? {})) labels[vmiLabelName(key)] = value;
  return labels;
}

/** `promise`'s value, or undefined when it fails or takes longer than `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => { timer = setTimeout(() => { resolve(undefined); }, ms); });
  try {
    return await Promise.race([promise.catch(() => undefined), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The scheduler's `wait_sum` of a task in ns, from its `/proc/.../sched`
 * (milliseconds with a fraction; `se.statistics.wait_sum` on older
 * kernels, `wait_sum` on newer), or undefined when the kernel keeps no
 * scheduler statistics.
 */
export function schedWaitNs(text: string | undefined): number | undefined {
  const match = /^(?:se\.statistics\.)?wait_sum\s*:\s*([\d.]+)$/m.exec(text ?? '');
  return match?.[1] === undefined ? undefined : Math.round(Number(match[1]) * 1e6);
}

/** Whether this kernel keeps scheduler statistics per task (asked once: it is the kernel's build and a sysctl). */
let schedstats: boolean | undefined;
function kernelKeepsSchedstats(): boolean {
  schedstats ??= schedWaitNs(readText('/proc/self/sched')) !== undefined;
  return schedstats;
}

/** USER_HZ, the unit of cgroup v1's `cpuacct.stat`: 100 on every Linux architecture Vireo runs on. */
const userHz = 100;

/** Where a guest's files were found, kept between scrapes so that each scrape reads only those. */
export interface GuestFiles {
  /** The cgroup directory with the CPU accounting, and whether it is v2's `cpu.stat`. */
  cpu?: { dir: string; v2: boolean };
  /** The guest's files, read through descriptors kept open; without it each read opens its file. */
  kept?: KeptFiles;
  /** The cgroup's `memory.stat`, once found (`cgroup-memory.ts`). */
  memoryStat?: string;
}

/** How `files` reads a file: through its kept descriptors, or by opening it. */
function readerOf(files: GuestFiles): (file: string) => string | undefined {
  const kept = files.kept;
  return kept === undefined ? readText : (file) => kept.read(file);
}

/** The CPU time of the cgroup directory `dir` in seconds, from v2's `cpu.stat` or v1's `cpuacct`; undefined when those are not there. */
function cpuIn(dir: string, v2: boolean, read: (file: string) => string | undefined): { usage: number; user: number; system: number } | undefined {
  if (v2) {
    const text = read(join(dir, 'cpu.stat'));
    if (text === undefined || !text.includes('usage_usec')) return undefined;
    const stat = keyedNumbers(text);
    return { usage: (stat.get('usage_usec') ?? NaN) / 1e6, user: (stat.get('user_usec') ?? NaN) / 1e6, system: (stat.get('system_usec') ?? NaN) / 1e6 };
  }
  const usage = read(join(dir, 'cpuacct.usage'));
  if (usage === undefined) return undefined;
  const stat = keyedNumbers(read(join(dir, 'cpuacct.stat')));
  return { usage: Number(usage.trim()) / 1e9, user: (stat.get('user') ?? NaN) / userHz, system: (stat.get('system') ?? NaN) / userHz };
}

/** The VMI cgroup's CPU time in seconds: total, user, system. `files` keeps where it was found. */
export function cgroupCpu(dirs: readonly string[], files: GuestFiles = {}): { usage: number; user: number; system: number } | undefined {
  const read = readerOf(files);
  if (files.cpu !== undefined) {
    const known = cpuIn(files.cpu.dir, files.cpu.v2, read);
    if (known !== undefined) return known;
  }
  for (const dir of dirs) {
    for (const v2 of [true, false]) {
      // Probing reads plainly: a file that is not there is not kept.
      const cpu = cpuIn(dir, v2, readText);
      if (cpu !== undefined) {
        files.cpu = { dir, v2 };
        return cpu;
      }
    }
  }
  return undefined;
}

/** One interface's counters from `/proc/<pid>/net/dev`, as the host side (the tap) counts them. */
interface DevCounters { rxBytes: number; rxPackets: number; rxErrors: number; rxDropped: number; txBytes: number; txPackets: number; txErrors: number; txDropped: number }

/** `/proc/<pid>/net/dev` parsed: the interfaces of the process' network namespace. */
export function parseNetDev(text: string): Map<string, DevCounters> {
  const devices = new Map<string, DevCounters>();
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    devices.set(name, { rxBytes: f[0] ?? NaN, rxPackets: f[1] ?? NaN, rxErrors: f[2] ?? NaN, rxDropped: f[3] ?? NaN, txBytes: f[8] ?? NaN, txPackets: f[9] ?? NaN, txErrors: f[10] ?? NaN, txDropped: f[11] ?? NaN });
  }
  return devices;
}

/** The VMI's NICs with their taps: the pod network's interface and the Multus ones, by the interface names of the spec. */
function nicTaps(vmi: KObject, sandbox: SandboxState | undefined): { iface: string; tap: string }[] {
  if (sandbox === undefined) return [];
  const spec = vmi.spec as { networks?: { name?: string; pod?: unknown }[] } | undefined;
  const podNetwork = (spec?.networks ?? []).find((n) => n.pod !== undefined)?.name;
  const taps = sandbox.secondaries.map((link) => ({ iface: link.name, tap: link.tap }));
  if (podNetwork !== undefined && !taps.some((t) => t.tap === sandbox.tap)) taps.unshift({ iface: podNetwork, tap: sandbox.tap });
  return taps;
}

/** The disk name of a `query-blockstats` entry: its guest device is `ua-<disk>` (`qdev` may be a QOM path around it). */
function driveOf(qdev: string | undefined): string | undefined {
  const match = /(?:^|\/)ua-([^/]+)/.exec(qdev ?? '');
  return match?.[1];
}

/** What QEMU answered for one guest's families; a command that failed or was late is missing. */
export interface QmpAnswers {
  cpus?: QmpReturn<'query-cpus-fast'> | undefined;
  blocks?: QmpReturn<'query-blockstats'> | undefined;
  balloon?: QmpReturn<'query-balloon'> | undefined;
  memory?: QmpReturn<'query-memory-size-summary'> | undefined;
  migration?: QmpReturn<'query-migrate'> | undefined;
  /** How many (vCPU, host CPU) pairs the vCPU threads may run on, read from their `Cpus_allowed_list` when the threads were learned. */
  affinity?: number | undefined;
  /** Not QMP: what the guest agent monitor holds, read with the rest (it asks the guest on its own schedule). */
  guestAgent?: GuestAgentStats | undefined;
  /** The balloon's guest statistics (asked only when QEMU may have new ones). */
  guestMemory?: GuestMemoryAnswer | undefined;
}

/**
 * Asks `machine` for the answers its families need, each command waited
 * for at most `deadlineMs`. `known` holds the vCPU threads and the
 * domain's memory from before: they change only when devices are
 * hotplugged, so they are asked again only when missing.
 */
export async function queryGuest(machine: Machine, migrating: boolean, deadlineMs: number, known: QmpAnswers = {}): Promise<QmpAnswers> {
  const [cpus, blocks, balloon, memory, migration, guestMemory] = await Promise.all([
    known.cpus ?? within(machine.execute('query-cpus-fast'), deadlineMs),
    within(machine.execute('query-blockstats'), deadlineMs),
    within(machine.execute('query-balloon'), deadlineMs),
    known.memory ?? within(machine.execute('query-memory-size-summary'), deadlineMs),
    migrating ? within(machine.execute('query-migrate'), deadlineMs) : Promise.resolve(undefined),
    askGuestMemory(machine, (promise) => within(promise, deadlineMs), known.guestMemory),
  ]);
  const affinity = known.cpus !== undefined ? known.affinity : cpuAffinity(machine.pid, cpus);
  return { cpus, blocks, balloon, memory, migration, affinity, guestAgent: machine.guestAgent.stats, guestMemory };
}

/** The number of host CPUs in a `Cpus_allowed_list` (`0-3,8,10-11`). */
export function cpuListSize(list: string): number {
  let count = 0;
  for (const part of list.split(',')) {
    const [from, to] = part.trim().split('-').map(Number);
    if (from === undefined || Number.isNaN(from)) continue;
    count += to === undefined ? 1 : Math.max(0, to - from + 1);
  }
  return count;
}

/** KubeVirt's CPU affinity count: for every vCPU thread, the host CPUs it may run on. */
function cpuAffinity(pid: number, cpus: QmpAnswers['cpus']): number | undefined {
  if (cpus === undefined) return undefined;
  let count = 0;
  for (const vcpu of cpus) {
    const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readText(`/proc/${pid}/task/${vcpu['thread-id']}/status`) ?? '')?.[1];
    if (list === undefined) return undefined;
    count += cpuListSize(list);
  }
  return count;
}

/** Adds one guest's samples to `out`: the kernel's counters read now (where `files` says they are), QEMU's from `answers`. */
export function writeGuest(guest: Omit<ScrapedGuest, 'migrating'>, answers: QmpAnswers, node: string, out: Exposition, files: GuestFiles = {}): void {
  const { machine, vmi } = guest;
  const baseLabels = vmiBaseLabels(vmi, node);
  const base = labelText(baseLabels);
  const f = vmiFamilies;
  const { cpus, blocks, balloon, memory, migration, affinity } = answers;
  const pid = machine.pid;
  const read = readerOf(files);

  const cpu = cgroupCpu(guest.cgroupDirs, files);
  if (cpu !== undefined) {
    out.addText(f.cpuUsage, base, cpu.usage);
    out.addText(f.cpuUser, base, cpu.user);
    out.addText(f.cpuSystem, base, cpu.system);
  }
  out.addText(f.nodeCpuAffinity, base, affinity);
  for (const vcpu of cpus ?? []) {
    // schedstat: ns on a CPU, ns waiting in the run queue, time slices.
    const [runNs, waitNs] = (read(`/proc/${pid}/task/${vcpu['thread-id']}/schedstat`) ?? '').trim().split(/\s+/).map(Number);
    const id = `id="${vcpu['cpu-index']}"`;
    out.addText(f.vcpuSeconds, `${base},${id},state="running"`, runNs === undefined ? undefined : runNs / 1e9);
    out.addText(f.vcpuDelay, `${base},${id}`, waitNs === undefined ? undefined : waitNs / 1e9);
    if (kernelKeepsSchedstats()) {
      const schedWait = schedWaitNs(read(`/proc/${pid}/task/${vcpu['thread-id']}/sched`));
      out.addText(f.vcpuWait, `${base},${id}`, schedWait === undefined ? undefined : schedWait / 1e9);
    }
  }

  const rss = /^VmRSS:\s+(\d+) kB/m.exec(read(`/proc/${pid}/status`) ?? '');
  out.addText(f.memoryResident, base, rss?.[1] === undefined ? undefined : Number(rss[1]) * 1024);
  if (memory !== undefined) out.addText(f.memoryDomain, base, memory['base-memory'] + (memory['plugged-memory'] ?? 0));
  if (balloon !== undefined) out.addText(f.memoryBalloon, base, balloon.actual);
  writeGuestMemory(out, base, answers.guestMemory);
  writeCgroupMemory(out, base, guest.cgroupDirs, { read, found: files });

  const taps = nicTaps(vmi, guest.sandbox);
  if (taps.length > 0) {
    const devices = parseNetDev(read(`/proc/${pid}/net/dev`) ?? '');
    for (const { iface, tap } of taps) {
      const d = devices.get(tap);
      if (d === undefined) continue;
      const labels = `${base},interface="${escapeLabelValue(iface)}"`;
      // What the tap received, the guest transmitted, and the other way round.
      out.addText(f.rxBytes, labels, d.txBytes);
      out.addText(f.txBytes, labels, d.rxBytes);
      out.addText(f.rxPackets, labels, d.txPackets);
      out.addText(f.txPackets, labels, d.rxPackets);
      out.addText(f.rxErrors, labels, d.txErrors);
      out.addText(f.txErrors, labels, d.rxErrors);
      out.addText(f.rxDropped, labels, d.txDropped);
      out.addText(f.txDropped, labels, d.rxDropped);
      out.addText(f.trafficBytes, `${labels},type="rx"`, d.txBytes);
      out.addText(f.trafficBytes, `${labels},type="tx"`, d.rxBytes);
    }
  }

  for (const block of blocks ?? []) {
    const drive = driveOf(block.qdev);
    if (drive === undefined) continue;
    const labels = `${base},drive="${escapeLabelValue(drive)}"`;
    const st = block.stats;
    out.addText(f.readOps, labels, st.rd_operations);
    out.addText(f.writeOps, labels, st.wr_operations);
    out.addText(f.readBytes, labels, st.rd_bytes);
    out.addText(f.writeBytes, labels, st.wr_bytes);
    out.addText(f.readTimes, labels, st.rd_total_time_ns / 1e9);
    out.addText(f.writeTimes, labels, st.wr_total_time_ns / 1e9);
    out.addText(f.flushOps, labels, st.flush_operations);
    out.addText(f.flushTimes, labels, st.flush_total_time_ns / 1e9);
  }

  writeGuestAgentStats(answers.guestAgent, base, out);

  const ram = migration?.ram;
  if (ram !== undefined) {
    // KubeVirt labels the migration families with the VMI alone, without its labels.
    const labels = labelText({ node, namespace: baseLabels.namespace ?? '', name: baseLabels.name ?? '' });
    out.addText(f.migrationProcessed, labels, ram.transferred);
    out.addText(f.migrationRemaining, labels, ram.remaining);
    out.addText(f.migrationTotal, labels, ram.total);
    // QEMU counts dirty pages per second; KubeVirt reports bytes per second (4 KiB pages on x86).
    out.addText(f.migrationDirtyRate, labels, ram['dirty-pages-rate'] === undefined ? undefined : ram['dirty-pages-rate'] * 4096);
    // QEMU says megabits per second, KubeVirt bytes per second.
    out.addText(f.migrationTransferRate, labels, ram.mbps === undefined ? undefined : (ram.mbps * 1e6) / 8);
  }
}
