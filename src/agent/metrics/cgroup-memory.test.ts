/**
 * The VMI cgroup's memory families from `memory.stat`, as cgroup v2 and v1
 * name its fields.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cgroupMemory, writeCgroupMemory } from './cgroup-memory.js';
import { Exposition, parseSamples } from './exposition.js';

/** A directory holding `files`, removed after `run`. */
function withDir(files: Record<string, string>, run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'vcgroup-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the VMI cgroup\'s memory', () => {
  it('reads cgroup v2\'s fields by their names', () => {
    withDir({ 'memory.stat': 'anon 1073741824\nfile 4096\nanon_thp 1006632960\nshmem_thp 134217728\ninactive_anon 805306368\nactive_anon 268435456\n' }, (dir) => {
      const out = new Exposition();
      writeCgroupMemory(out, 'name="web"', ['/nonexistent', dir]);
      assert.deepEqual(Object.fromEntries(parseSamples(out.text()).map((s) => [s.name, s.value])), {
        kubevirt_vmi_memory_anon_bytes: 1073741824,
        kubevirt_vmi_memory_anon_thp_bytes: 1006632960,
        kubevirt_vmi_memory_shmem_thp_bytes: 134217728,
        kubevirt_vmi_memory_inactive_anon_bytes: 805306368,
        kubevirt_vmi_memory_active_anon_bytes: 268435456,
      });
    });
  });

  it('reads cgroup v1\'s hierarchical totals and leaves out what v1 does not count', () => {
    withDir({ 'memory.stat': 'cache 9633792\nrss 7405568\nrss_huge 0\nshmem 9084928\ninactive_anon 1\nactive_anon 2\ntotal_rss 145428480\ntotal_rss_huge 10485760\ntotal_shmem 9084928\ntotal_inactive_anon 137797632\ntotal_active_anon 1581056\n' }, (dir) => {
      assert.deepEqual(cgroupMemory([dir]), { anon: 145428480, anonThp: 10485760, inactiveAnon: 137797632, activeAnon: 1581056 });
      const out = new Exposition();
      writeCgroupMemory(out, 'name="web"', [dir]);
      assert.ok(!out.text().includes('shmem_thp'), out.text());
    });
  });

  it('remembers which directory has memory.stat and reads it through the scrape\'s reader after', () => {
    withDir({ 'memory.stat': 'anon 4096\n' }, (dir) => {
      const found: { memoryStat?: string } = {};
      const reads: string[] = [];
      const read = (file: string): string | undefined => { reads.push(file); return 'anon 8192\n'; };
      assert.deepEqual(cgroupMemory(['/nonexistent', dir], { read, found })?.anon, 4096, 'found by probing');
      assert.equal(found.memoryStat, join(dir, 'memory.stat'));
      assert.deepEqual(reads, []);
      assert.deepEqual(cgroupMemory(['/nonexistent', dir], { read, found })?.anon, 8192, 'then read through the reader');
      assert.deepEqual(reads, [join(dir, 'memory.stat')]);
    });
  });

  it('writes nothing when no directory has a memory.stat (the memory controller is off)', () => {
    withDir({ 'cpu.stat': 'usage_usec 1\n' }, (dir) => {
      const out = new Exposition();
      writeCgroupMemory(out, 'name="web"', [dir]);
      assert.equal(out.text(), '');
    });
  });
});
