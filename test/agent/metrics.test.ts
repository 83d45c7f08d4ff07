/**
 * The node agent's metrics from a real TCG guest: KubeVirt's per-VMI
 * families with KubeVirt's names, types and label sets, and values that
 * follow what the guest does (CPU, a disk written, packets sent, a file
 * written to a filesystem the guest agent reports, memory the guest caches
 * and fills as its balloon driver reports it), and a guest OS panic
 * counted after the guest is gone.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { schedWaitNs } from '../../src/agent/metrics/index.js';
import { eventually } from '../../src/testing/wait.js';
import { createBound, phase, startAgentFixture, vmiManifest, waitVmi } from './support.js';

const bootTimeoutMs = 120_000;

/** One sample of a scrape. */
interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the text format: the samples, and each family's TYPE. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) types.set(type[1] ?? '', type[2] ?? '');
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match !== null, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] ?? ''] = (pair[2] ?? '').replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    samples.push({ name: match[1] ?? '', labels, value: Number(match[3]) });
  }
  return { samples, types };
}

/**
 * KubeVirt's catalogue for the families the agent serves (pkg/monitoring/metrics/virt-handler):
 * type and the labels beyond the VMI's own (node, namespace, name, kubernetes_vmi_label_*).
 */
const catalogue: Record<string, { type: string; extra: string[]; vmiLabels?: false }> = {
  kubevirt_vmi_cpu_usage_seconds_total: { type: 'counter', extra: [] },
  kubevirt_vmi_cpu_user_usage_seconds_total: { type: 'counter', extra: [] },
  kubevirt_vmi_cpu_system_usage_seconds_total: { type: 'counter', extra: [] },
  kubevirt_vmi_vcpu_seconds_total: { type: 'counter', extra: ['id', 'state'] },
  kubevirt_vmi_vcpu_delay_seconds_total: { type: 'counter', extra: ['id'] },
  kubevirt_vmi_node_cpu_affinity: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_resident_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_domain_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_actual_balloon_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_network_receive_bytes_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_transmit_bytes_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_receive_packets_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_transmit_packets_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_receive_errors_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_transmit_errors_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_receive_packets_dropped_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_transmit_packets_dropped_total: { type: 'counter', extra: ['interface'] },
  kubevirt_vmi_network_traffic_bytes_total: { type: 'counter', extra: ['interface', 'type'] },
  kubevirt_vmi_storage_iops_read_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_iops_write_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_read_traffic_bytes_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_write_traffic_bytes_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_read_times_seconds_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_write_times_seconds_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_flush_requests_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_storage_flush_times_seconds_total: { type: 'counter', extra: ['drive'] },
  kubevirt_vmi_filesystem_capacity_bytes: { type: 'gauge', extra: ['disk_name', 'mount_point', 'file_system_type'] },
  kubevirt_vmi_filesystem_used_bytes: { type: 'gauge', extra: ['disk_name', 'mount_point', 'file_system_type'] },
  kubevirt_vmi_memory_available_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_usable_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_unused_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_cached_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_swap_in_traffic_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_swap_out_traffic_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_pgmajfault_total: { type: 'counter', extra: [] },
  kubevirt_vmi_memory_pgminfault_total: { type: 'counter', extra: [] },
  kubevirt_vmi_memory_anon_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_anon_thp_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_inactive_anon_bytes: { type: 'gauge', extra: [] },
  kubevirt_vmi_memory_active_anon_bytes: { type: 'gauge', extra: [] },
  // cgroup v1's memory.stat has no shared-memory huge pages.
  ...(existsSync('/sys/fs/cgroup/cgroup.controllers') ? { kubevirt_vmi_memory_shmem_thp_bytes: { type: 'gauge', extra: [] } } : {}),
};

// The vCPUs' wait (libvirt's vcpu.N.wait) exists only on a kernel that keeps scheduler statistics; elsewhere it must be absent.
if (schedWaitNs(readFileSync('/proc/self/sched', 'utf8')) !== undefined) catalogue.kubevirt_vmi_vcpu_wait_seconds_total = { type: 'counter', extra: ['id'] };
/** KubeVirt's families that need qemu-ga 10.0 (`guest-get-load`): the test guest's 7.2 lacks the command, so they must be left out, not written as 0. */
const newerAgentOnly = ['kubevirt_vmi_guest_load_1m', 'kubevirt_vmi_guest_load_5m', 'kubevirt_vmi_guest_load_15m'];

function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

test('a running guest\'s metrics carry KubeVirt\'s names, types and labels, and follow its CPU, disk writes and packets', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importTestGuest(fixture.images);
  const manifest = vmiManifest('metered', {
    image: TEST_GUEST_IMAGE,
    volumes: [{ name: 'scratch', emptyDisk: { capacity: '16Mi' } }, { name: 'data', emptyDisk: { capacity: '32Mi' } }],
    disks: [{ name: 'scratch', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }],
    spec: { networks: [{ name: 'default', pod: {} }] },
  });
  manifest.metadata.labels = { 'app.kubernetes.io/name': 'meter', tier: 'test' };
  const spec = manifest.spec as { domain: { memory: { guest: string }; devices: Record<string, unknown> } };
  spec.domain.memory.guest = '128Mi';
  spec.domain.devices.interfaces = [{ name: 'default', masquerade: {} }];
  spec.domain.devices.panicDevices = [{ model: 'isa' }];
  await createBound(fixture, manifest);
  await waitVmi(fixture, 'metered', (v) => phase(v) === 'Running', 'the VMI to run', 60_000);
  await eventually(async () => (await fixture.agent.serialLog('default', 'metered')).includes(TEST_GUEST_READY_MARKER) || undefined, { what: 'the guest to be ready', timeoutMs: bootTimeoutMs, intervalMs: 250 });

  // A filesystem on the data disk (vdc), for the guest agent's guest-get-fsinfo.
  const console = await fixture.agent.openStream('default', 'metered', 'console');
  t.after(() => { console.destroy(); });
  let seen = '';
  console.on('data', (chunk: Buffer) => { seen += chunk.toString('utf8'); });
  console.write('\nmke2fs /dev/vdc >/dev/null 2>&1 && mkdir -p /mnt/data && mount /dev/vdc /mnt/data && echo fs-$((40+2))-mounted\n');
  await eventually(() => seen.includes('fs-42-mounted') || undefined, { what: 'the guest to mount its data disk', timeoutMs: 30_000 });

  // QEMU's answers come with the scrape after they arrived (a scrape waits for them only briefly);
  // the guest agent's filesystems with its next asking (every 10 s).
  const first = parse(await eventually(async () => {
    const text = await fixture.agent.metrics();
    const names = new Set(parse(text).samples.map((s) => s.name));
    return Object.keys(catalogue).every((name) => names.has(name)) ? text : undefined;
  }, { what: 'every family to be served', timeoutMs: 30_000, intervalMs: 200 }));
  const base = { node: fixture.nodeName, namespace: 'default', name: 'metered' };
  for (const sample of first.samples) {
    const known = catalogue[sample.name];
    assert.ok(known !== undefined, `${sample.name} is not a family the agent should serve${newerAgentOnly.includes(sample.name) ? ' with qemu-ga 7.2' : ''}`);
    assert.equal(first.types.get(sample.name), known.type, `${sample.name}'s type`);
    const expected = [...Object.keys(base), 'kubernetes_vmi_label_app_kubernetes_io_name', 'kubernetes_vmi_label_tier', ...known.extra].sort();
    assert.deepEqual(Object.keys(sample.labels).sort(), expected, `${sample.name}'s labels`);
    assert.equal(sample.labels.kubernetes_vmi_label_app_kubernetes_io_name, 'meter');
  }
  const served = new Set(first.samples.map((s) => s.name));
  for (const name of Object.keys(catalogue)) assert.ok(served.has(name), `${name} is served`);
  assert.equal(value(first.samples, 'kubevirt_vmi_memory_domain_bytes', base), 128 * 1024 * 1024);
  assert.ok((value(first.samples, 'kubevirt_vmi_memory_resident_bytes', base) ?? 0) > 16 * 1024 * 1024, 'QEMU holds memory');
  assert.ok((value(first.samples, 'kubevirt_vmi_cpu_usage_seconds_total', base) ?? 0) > 0.5, 'booting took CPU');
  const affinity = value(first.samples, 'kubevirt_vmi_node_cpu_affinity', base) ?? 0;
  assert.ok(affinity >= 1 && affinity <= availableParallelism(), `one vCPU may run on 1 to ${availableParallelism()} host CPUs (${affinity})`);
  const dataFs = { ...base, disk_name: 'vdc', mount_point: '/mnt/data', file_system_type: 'ext2' };
  const capacity = value(first.samples, 'kubevirt_vmi_filesystem_capacity_bytes', dataFs) ?? NaN;
  assert.ok(capacity > 24 * 1024 * 1024 && capacity <= 32 * 1024 * 1024, `the data filesystem's capacity is most of its 32 MiB disk: ${capacity}`);
  assert.ok((value(first.samples, 'kubevirt_vmi_filesystem_used_bytes', dataFs) ?? NaN) < capacity, 'the data filesystem is not full');

  // 4 MiB written to the scratch disk, past the page cache; packets to the sandbox's gateway; a 4 MiB file on the data filesystem.
  console.write('\ndd if=/dev/zero of=/dev/vdb bs=1M count=4 oflag=direct 2>/dev/null; ping -c 5 -W 1 10.0.2.1 >/dev/null 2>&1; dd if=/dev/zero of=/mnt/data/fill bs=1M count=4 conv=fsync 2>/dev/null; echo work-$((40+2))-done\n');
  await eventually(() => seen.includes('work-42-done') || undefined, { what: 'the guest to write and ping', timeoutMs: 60_000 });

  const expected: [string, Record<string, string>, number][] = [
    ['kubevirt_vmi_vcpu_seconds_total', { ...base, id: '0', state: 'running' }, 0.01],
    ['kubevirt_vmi_cpu_usage_seconds_total', base, 0.01],
    ['kubevirt_vmi_storage_write_traffic_bytes_total', { ...base, drive: 'scratch' }, 4 * 1024 * 1024],
    ['kubevirt_vmi_storage_iops_write_total', { ...base, drive: 'scratch' }, 4],
    ['kubevirt_vmi_network_transmit_packets_total', { ...base, interface: 'default' }, 5],
    ['kubevirt_vmi_network_transmit_bytes_total', { ...base, interface: 'default' }, 5 * 84],
    ['kubevirt_vmi_network_receive_packets_total', { ...base, interface: 'default' }, 1],
    ['kubevirt_vmi_filesystem_used_bytes', dataFs, 4 * 1024 * 1024],
  ];
  let short: string[] = [];
  await eventually(async () => {
    const second = parse(await fixture.agent.metrics());
    short = expected.flatMap(([name, labels, by]) => {
      const before = value(first.samples, name, labels) ?? NaN;
      const after = value(second.samples, name, labels) ?? NaN;
      return after - before >= by ? [] : [`${name} ${JSON.stringify(labels)} did not grow by ${by}: ${before} → ${after}`];
    });
    return short.length === 0 || undefined;
  }, { what: 'the counters to follow the work', timeoutMs: 30_000, intervalMs: 200 }).catch(() => undefined);
  assert.deepEqual(short, []);

  // The guest's memory, as its balloon driver reports it (QEMU polls it every 10 s): 8 MiB read
  // from the scratch disk stay in the page cache (cached, still usable; the shell holds the disk
  // open, as the kernel drops a block device's cache at its last close), 8 MiB written to a
  // tmpfs cannot be reclaimed without swap (cached, not usable); neither is unused any more.
  // The guest has ~25 MiB free: more would make it reclaim the cache it is asked to keep.
  const mib = 1024 * 1024;
  const before = parse(await fixture.agent.metrics()).samples;
  const memoryBefore = (name: string): number => value(before, `kubevirt_vmi_memory_${name}`, base) ?? NaN;
  console.write('\nexec 3</dev/vdb; dd if=/dev/vdb of=/dev/null bs=1M count=8 2>/dev/null; dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>/dev/null; echo memtotal-$(sed -n "s/^MemTotal: *\\([0-9]*\\) kB/\\1/p" /proc/meminfo)-kb\n');
  const memTotalKib = Number((await eventually(() => /memtotal-(\d+)-kb/.exec(seen) ?? undefined, { what: 'the guest to cache and fill memory', timeoutMs: 60_000 }))[1]);
  let memoryShort: string[] = [];
  await eventually(async () => {
    const after = parse(await fixture.agent.metrics()).samples;
    const memory = (name: string): number => value(after, `kubevirt_vmi_memory_${name}`, base) ?? NaN;
    const cachedGrew = memory('cached_bytes') - memoryBefore('cached_bytes');
    const unusedFell = memoryBefore('unused_bytes') - memory('unused_bytes');
    const usableFell = memoryBefore('usable_bytes') - memory('usable_bytes');
    memoryShort = [
      ...(memory('available_bytes') === memTotalKib * 1024 ? [] : [`available_bytes ${memory('available_bytes')} is not the guest's MemTotal ${memTotalKib} KiB`]),
      ...(cachedGrew >= 12 * mib ? [] : [`cached_bytes grew by ${cachedGrew / mib} MiB, not ≥ 12`]),
      ...(unusedFell >= 12 * mib ? [] : [`unused_bytes fell by ${unusedFell / mib} MiB, not ≥ 12`]),
      ...(usableFell >= 6 * mib ? [] : [`usable_bytes fell by ${usableFell / mib} MiB, not ≥ 6 (the tmpfs)`]),
      ...(unusedFell - usableFell >= 4 * mib ? [] : [`usable_bytes fell by ${usableFell / mib} MiB, nearly as much as unused_bytes (${unusedFell / mib} MiB): the page cache should stay usable`]),
      ...(memory('pgminfault_total') > memoryBefore('pgminfault_total') ? [] : [`pgminfault_total did not grow: ${memoryBefore('pgminfault_total')} → ${memory('pgminfault_total')}`]),
      ...(memory('usable_bytes') < memory('available_bytes') && memory('unused_bytes') < memory('usable_bytes') ? [] : ['unused ≤ usable ≤ available does not hold']),
    ];
    return memoryShort.length === 0 || undefined;
  }, { what: 'the guest memory statistics to follow', timeoutMs: 30_000, intervalMs: 500 }).catch(() => undefined);
  assert.deepEqual(memoryShort, []);
  // The VMI's cgroup holds QEMU, whose guest RAM is anonymous memory.
  assert.ok((value(before, 'kubevirt_vmi_memory_anon_bytes', base) ?? 0) > 16 * mib, 'the cgroup holds QEMU\'s anonymous memory');

  // A kernel panic, told to QEMU by the pvpanic device (no crash info: type and code unknown); the count outlives the guest.
  assert.equal(parse(await fixture.agent.metrics()).samples.some((s) => s.name === 'kubevirt_vmi_guest_os_panic_total'), false, 'no panic counted before one');
  console.write('\necho c > /proc/sysrq-trigger\n');
  await waitVmi(fixture, 'metered', (v) => phase(v) === 'Failed' || phase(v) === 'Succeeded', 'the panicked guest to end', 60_000);
  const after = parse(await fixture.agent.metrics());
  const panics = after.samples.filter((s) => s.name === 'kubevirt_vmi_guest_os_panic_total');
  assert.deepEqual(panics.map((s) => s.labels), [{ node: fixture.nodeName, namespace: 'default', name: 'metered', type: 'unknown', bugcheck_code: 'unknown' }]);
  assert.equal(panics[0]?.value, 1);
  assert.equal(after.types.get('kubevirt_vmi_guest_os_panic_total'), 'counter');
});
