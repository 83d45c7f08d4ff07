/**
 * Storage benchmark: instant snapshots and clones of local qcow2 volumes,
 * run on the agent's own code (`src/storage/snapshots`) against files in
 * a temporary directory, side by side with the baseline a user would
 * otherwise run. Printed with ratios:
 *
 * 1. clone of a 10 GiB qcow2 volume holding 1 GiB of written data
 *    (freeze the source's top, hard-link the layers, new top on each side)
 *    vs `cp --sparse=always` of the same file; target ≤ 100 ms, and a
 *    time that does not grow with the data;
 * 2. snapshot of the same volume (freeze and hard-link) vs the same copy;
 * 3. through the API (real server, controllers and node agent, a TCG
 *    guest running on a volume of the same shape, `bench/storage-vm.ts`),
 *    from the create to `readyToUse`: a CSI VolumeSnapshot of the claim,
 *    and a KubeVirt VirtualMachineSnapshot of the VM, vs the same copy.
 *
 * Medians of alternating rounds. Disk use: about 3 GiB at the peak (the
 * two volumes' data and the baseline's copy), removed at the end.
 * Run: npm run bench:storage (VIREO_BENCH_ROUNDS for more rounds, default 5).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { activeFile, copySparse, freezeTop, overlayChain, linkChain } from '../src/storage/snapshots/chain.js';
import { timeVmSnapshots } from './storage-vm.js';

const rounds = Number(process.env.VIREO_BENCH_ROUNDS ?? '5');
const gib = 2 ** 30;
const volumeBytes = 10 * gib;
const writtenBytes = gib;
const cloneTargetMs = 100;

const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-storage-'));
const signal = new AbortController().signal;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

async function timed(work: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await work();
  return performance.now() - start;
}

function row(name: string, ms: number, baselineName: string, baselineMs: number, target: string): void {
  const ratio = baselineMs / ms;
  // Below 1 the figure is the slower one: say so, rather than round it to "1x faster".
  const compared = ratio >= 1 ? `${ratio.toFixed(ratio < 10 ? 1 : 0)}x faster` : `${(1 / ratio).toFixed(1)}x slower`;
  console.log(`${name.padEnd(40)} ${`${ms.toFixed(1)} ms`.padStart(11)}   ${baselineName.padEnd(34)} ${`${baselineMs.toFixed(0)} ms`.padStart(10)}   ${compared.padStart(14)}   ${target}`);
}

async function main(): Promise<void> {
  const source = join(dir, 'source');
  execFileSync('mkdir', ['-p', source]);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(source, activeFile), String(volumeBytes)]);
  // 1 GiB of data spread over the volume, so the copy has something to copy.
  const chunk = writtenBytes / 16;
  const writes = Array.from({ length: 16 }, (_, i) => ['-c', `write -P ${(i % 250) + 1} ${i * (volumeBytes / 16)} ${chunk}`]).flat();
  execFileSync('qemu-io', ['-f', 'qcow2', ...writes, join(source, activeFile)], { stdio: 'ignore' });
  // The baseline copies the volume as it is before any freeze (a hard link to it: no data copied here).
  execFileSync('ln', [join(source, activeFile), join(dir, 'baseline.qcow2')]);
  console.log(`storage benchmark: a ${volumeBytes / gib} GiB qcow2 volume with ${writtenBytes / gib} GiB written, ${rounds} rounds, medians`);

  const clones: number[] = [];
  const snapshots: number[] = [];
  const copies: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const id = `r${round}`;
    clones.push(await timed(async () => {
      const chain = await freezeTop(source, `clone-${id}`, { guest: undefined, signal });
      await overlayChain(source, chain, { toDir: join(dir, `clone-${id}`), bytes: volumeBytes, signal });
    }));
    snapshots.push(await timed(async () => {
      const chain = await freezeTop(source, `snap-${id}`, { guest: undefined, signal });
      await linkChain(source, chain, join(dir, `snap-${id}`));
    }));
    // The baseline copies the data the volume holds; one copy at a time keeps the disk use down.
    const copy = join(dir, 'copy.qcow2');
    copies.push(await timed(() => copySparse(join(dir, 'baseline.qcow2'), copy, signal)));
    rmSync(copy, { force: true });
  }
  const clone = median(clones);
  const snapshot = median(snapshots);
  const copy = median(copies);
  console.log('');
  row('clone (freeze + hard links + new top)', clone, 'cp --sparse=always of the volume', copy, `target ≤ ${cloneTargetMs} ms: ${clone <= cloneTargetMs ? 'met' : 'NOT met'}`);
  row('snapshot (freeze + hard links)', snapshot, 'cp --sparse=always of the volume', copy, '');
  console.log(`\nclone rounds (ms): ${clones.map((ms) => ms.toFixed(1)).join(', ')}; the chain grows by one layer per round and the time stays flat; the copy reads from the page cache (a cold copy is slower)`);

  console.log(`\nthrough the API: a running VM (TCG) with a ${volumeBytes / gib} GiB qcow2 claim holding ${writtenBytes / gib} GiB, create → readyToUse`);
  const api = await timeVmSnapshots({ rounds, volumeBytes, writtenBytes });
  row('CSI VolumeSnapshot of the claim', median(api.volumeSnapshots), 'cp --sparse=always of the volume', copy, '');
  row('VirtualMachineSnapshot of the VM', median(api.vmSnapshots), 'cp --sparse=always of the volume', copy, '');
  console.log(`VirtualMachineSnapshot indications: ${(api.indications ?? []).join(', ')} (GuestAgent: the guest's filesystems were frozen around each cut)`);
  console.log(`\nVolumeSnapshot rounds (ms): ${api.volumeSnapshots.map((ms) => ms.toFixed(1)).join(', ')}`);
  console.log(`VirtualMachineSnapshot rounds (ms): ${api.vmSnapshots.map((ms) => ms.toFixed(1)).join(', ')}`);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
