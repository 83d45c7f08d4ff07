/**
 * Import benchmark: HTTP import of a 1 GiB qcow2 (random data with some
 * zero runs, so neither all zeros nor all data) served from 127.0.0.1 into
 * a raw volume, by Vireo's importer (`importImage`) against the baseline
 * `curl -o tmp URL && qemu-img convert -f qcow2 -O raw tmp target` of the
 * same file, timed whole, alternating, side by side. Target: Vireo's speed
 * ≥ 0.9 of the baseline's (users report CDI as slower than wget).
 * Run: npm run bench:import (VIREO_BENCH_IMPORT_MIB for another size,
 * VIREO_BENCH_IMPORT_ROUNDS for more rounds, default 3).
 */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importImage } from '../src/storage/import/index.js';
import { startImageServer } from '../src/testing/image-server.js';

const MiB = 1024 * 1024;
/** Async: the image server runs in this process, so a blocking child would starve it. */
const run = promisify(execFile);
const sizeMiB = Number(process.env.VIREO_BENCH_IMPORT_MIB ?? 1024);
const rounds = Math.max(1, Number(process.env.VIREO_BENCH_IMPORT_ROUNDS ?? 3));

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-bench-import-'));
  const server = await startImageServer();
  try {
    const raw = join(dir, 'source.raw');
    const image = join(dir, 'source.qcow2');
    writeSource(raw, sizeMiB);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, image]);
    rmSync(raw);
    server.serve('/image.qcow2', { file: image });
    const url = `${server.url}/image.qcow2`;
    const bytes = sizeMiB * MiB;
    const vireo: number[] = [];
    const baseline: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const target = join(dir, 'vireo.raw');
      let started = performance.now();
      await importImage({ kind: 'http', url }, { path: target, format: 'raw', sizeBytes: bytes }, { signal: new AbortController().signal });
      vireo.push(performance.now() - started);
      rmSync(target, { force: true });
      const tmp = join(dir, 'curl.qcow2');
      const base = join(dir, 'baseline.raw');
      started = performance.now();
      await run('curl', ['-sS', '-f', '-o', tmp, url]);
      await run('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', tmp, base]);
      baseline.push(performance.now() - started);
      rmSync(tmp, { force: true });
      rmSync(base, { force: true });
    }
    const v = median(vireo);
    const b = median(baseline);
    const speed = (ms: number): string => `${((bytes / MiB) / (ms / 1000)).toFixed(0)} MiB/s`;
    console.log(`HTTP import of a ${sizeMiB} MiB qcow2 into a raw volume (median of ${rounds}):`);
    console.log(`  vireo importImage          ${(v / 1000).toFixed(2)} s  ${speed(v)}`);
    console.log(`  curl -o + qemu-img convert ${(b / 1000).toFixed(2)} s  ${speed(b)}`);
    console.log(`  speed ratio vireo/baseline ${(b / v).toFixed(2)} (target ≥ 0.90)`);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Random 1 MiB blocks, every eighth one zero: real data with holes, as an OS image has. */
function writeSource(file: string, mib: number): void {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(MiB);
  const zero = Buffer.alloc(MiB);
  try {
    for (let i = 0; i < mib; i++) {
      if (i % 8 === 7) {
        writeSync(fd, zero);
        continue;
      }
      randomFillSync(block);
      writeSync(fd, block);
    }
  } finally {
    closeSync(fd);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

await main();
