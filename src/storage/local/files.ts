/**
 * The files behind local volumes, made and grown with `qemu-img`: thin
 * (sparse raw, or qcow2 without preallocation) unless the class asks for
 * preallocation.
 */
import { mkdir, rm, statfs } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { runTool } from '../../agent/run-tool.js';
import type { Preallocation, VolumeFormat } from './parameters.js';

/** What one volume file is made of. */
export interface VolumeFileSpec {
  path: string;
  format: VolumeFormat;
  preallocation: Preallocation;
  bytes: number;
  signal: AbortSignal;
}

/** Creates the volume file (and its directory), replacing what an interrupted attempt left. */
export async function createVolumeFile(spec: VolumeFileSpec): Promise<void> {
  await mkdir(dirname(spec.path), { recursive: true, mode: 0o700 });
  const options = spec.preallocation === 'off' ? [] : ['-o', `preallocation=${spec.preallocation}`];
  // Preallocating a large file takes a while; a thin one is instant.
  await runTool('qemu-img', ['create', '-q', '-f', spec.format, ...options, spec.path, String(spec.bytes)], { signal: spec.signal, timeoutMs: 30 * 60_000 });
}

/** Grows a volume file no process has open (a running guest's disk grows through QMP instead). */
export async function resizeVolumeFile(spec: VolumeFileSpec): Promise<void> {
  const options = spec.preallocation === 'off' || spec.preallocation === 'metadata' ? [] : [`--preallocation=${spec.preallocation}`];
  await runTool('qemu-img', ['resize', '-q', '-f', spec.format, ...options, spec.path, String(spec.bytes)], { signal: spec.signal, timeoutMs: 30 * 60_000 });
}

/**
 * Removes the directory of volume `volumeName` under `root`; refuses any
 * other path, so a hand-written PersistentVolume cannot make the agent
 * delete what is not a volume.
 */
export async function removeVolumeDir(root: string, dir: string, volumeName: string): Promise<void> {
  if (dirname(dir) !== root || basename(dir) !== volumeName) {
    throw new Error(`refusing to remove ${dir}: the directory of local volume ${volumeName} must be ${root}/${volumeName}`);
  }
  await rm(dir, { recursive: true, force: true });
}

/** Bytes the node offers for volumes: the size of the filesystem holding `dir`, less 10 % kept for the host. */
export async function filesystemCapacity(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return Math.floor(fs.blocks * fs.bsize * 0.9);
}
