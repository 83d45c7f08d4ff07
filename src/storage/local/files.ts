/**
 * The files behind local volumes, made and grown with `qemu-img`: thin
 * (sparse raw, or qcow2 without preallocation) unless the class asks for
 * preallocation.
 */
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { runTool } from '../../host/run-tool.js';
import type { Preallocation, VolumeFormat } from './parameters.js';

/** What one volume file is made of. */
export interface VolumeFileSpec {
  path: string;
  format: VolumeFormat;
  preallocation: Preallocation;
  bytes: number;
  signal: AbortSignal;
}

/**
 * Creates the volume file (and its directory), replacing what an
 * interrupted attempt left. With `encryptionKey` the volume is LUKS: a
 * qcow2 with LUKS payload encryption, or a raw LUKS container. The key
 * reaches `qemu-img` through a 0600 file in a private temporary directory
 * (never the volume's), removed as soon as the file is made.
 */
export async function createVolumeFile(spec: VolumeFileSpec & { encryptionKey?: Buffer }): Promise<void> {
  await mkdir(dirname(spec.path), { recursive: true, mode: 0o700 });
  const settings = spec.preallocation === 'off' ? [] : [`preallocation=${spec.preallocation}`];
  const key = spec.encryptionKey;
  if (key === undefined) {
    // Preallocating a large file takes a while; a thin one is instant.
    await runTool('qemu-img', ['create', '-q', '-f', spec.format, ...optionArgs(settings), spec.path, String(spec.bytes)], { signal: spec.signal, timeoutMs: 30 * 60_000 });
    return;
  }
  const keyDir = await mkdtemp(join(tmpdir(), 'vireo-volume-key-'));
  try {
    const keyFile = join(keyDir, 'key');
    await writeFile(keyFile, key, { mode: 0o600 });
    const format = spec.format === 'qcow2' ? 'qcow2' : 'luks';
    const encryption = spec.format === 'qcow2' ? ['encrypt.format=luks', 'encrypt.key-secret=sec0'] : ['key-secret=sec0'];
    await runTool('qemu-img', ['create', '-q', '--object', `secret,id=sec0,format=raw,file=${keyFile.replaceAll(',', ',,')}`, '-f', format, ...optionArgs([...encryption, ...settings]), spec.path, String(spec.bytes)], { signal: spec.signal, timeoutMs: 30 * 60_000 });
  } finally {
    await rm(keyDir, { recursive: true, force: true });
  }
}

function optionArgs(settings: string[]): string[] {
  return settings.length === 0 ? [] : ['-o', settings.join(',')];
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
