/**
 * Snapshot, restore and clone of one local volume, on the node holding it:
 * qcow2 volumes by their backing chain (O(1): the top is frozen into a
 * layer and the new volume or snapshot links to it), raw ones by a sparse
 * copy. A running guest keeps running: its qcow2 disk moves onto the new
 * top through QMP; a raw disk is copied with the guest paused, so the copy
 * is crash-consistent. A guest that is starting or stopping makes the
 * operation wait, since QEMU might open the files while they change.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runTool } from '../../host/run-tool.js';
import type { LocalVolume, VolumeFormat, VolumeMode } from '../local/index.js';
import { volumeFile } from '../local/index.js';
import { copySparse, freezeTop, layerName, linkChain, overlayChain, readChain, readSnapshotMeta, writeSnapshotMeta } from './chain.js';
import type { SnapshotMeta } from './chain.js';
import type { LiveGuest, LiveGuests } from './live.js';

/** A claim, by namespace and name. */
export interface ClaimKey {
  namespace: string;
  name: string;
}

/** An operation that cannot run yet, and why. */
export interface Wait {
  wait: string;
}

const locks = new Map<string, Promise<unknown>>();

/**
 * Runs `work` alone on the volume in `dir`: the provisioner (clones) and
 * the sidecar (snapshots) of one agent must not freeze one top twice at once.
 */
async function exclusive<T>(dir: string, work: () => Promise<T>): Promise<T> {
  const run = (locks.get(dir) ?? Promise.resolve()).then(work, work);
  const tail = run.catch(() => undefined);
  locks.set(dir, tail);
  try {
    return await run;
  } finally {
    if (locks.get(dir) === tail) locks.delete(dir);
  }
}

/** The guest using `claim`, undefined when none; a wait while one starts or stops. */
async function guestOf(claim: ClaimKey, live: LiveGuests | undefined): Promise<{ guest: LiveGuest | undefined } | Wait> {
  const use = live === undefined ? { kind: 'idle' as const } : await live(claim);
  switch (use.kind) {
    case 'idle':
      return { guest: undefined };
    case 'busy':
      return { wait: use.reason };
    case 'running':
      return { guest: use.guest };
  }
}

/** Copies a raw volume, with its guest (if any) paused for the copy. */
async function copyRaw(from: string, to: string, options: { guest: LiveGuest | undefined; signal: AbortSignal }): Promise<void> {
  const copy = (): Promise<void> => copySparse(from, to, options.signal);
  await (options.guest === undefined ? copy() : options.guest.whilePaused(copy));
}

/** What cutting a snapshot needs. */
export interface CutOptions {
  /** The snapshot's directory; its name is the snapshot's id (and layer name). */
  dir: string;
  live: LiveGuests | undefined;
  signal: AbortSignal;
}

/**
 * Cuts a snapshot of `volume` (the claim `claim`'s) into `options.dir`:
 * for qcow2, the frozen chain as hard links; for raw, a sparse copy. A
 * snapshot already complete there is returned as it is.
 */
export async function cutSnapshot(volume: LocalVolume, claim: ClaimKey, options: CutOptions): Promise<SnapshotMeta | Wait> {
  return exclusive(dirname(volume.path), () => cutSnapshotAlone(volume, claim, options));
}

async function cutSnapshotAlone(volume: LocalVolume, claim: ClaimKey, options: CutOptions): Promise<SnapshotMeta | Wait> {
  const done = await readSnapshotMeta(options.dir);
  if (done !== undefined) return done;
  const use = await guestOf(claim, options.live);
  if ('wait' in use) return use;
  const id = basename(options.dir);
  const volumeDir = dirname(volume.path);
  const createdMs = Date.now();
  let meta: SnapshotMeta;
  if (volume.format === 'qcow2') {
    const chain = await freezeTop(volumeDir, id, { guest: use.guest, signal: options.signal });
    await linkChain(volumeDir, chain, options.dir);
    meta = { format: 'qcow2', top: layerName(id), bytes: chain[0]?.virtualSize ?? volume.bytes, volumeMode: volume.volumeMode, createdMs };
  } else {
    const top = basename(volume.path);
    await copyRaw(volume.path, join(options.dir, top), { guest: use.guest, signal: options.signal });
    meta = { format: 'raw', top, bytes: (await stat(join(options.dir, top))).size, volumeMode: volume.volumeMode, createdMs };
  }
  await writeSnapshotMeta(options.dir, meta);
  return meta;
}

/** The volume a restore or clone makes. */
export interface TargetVolume {
  /** Its directory (`volumes/pvc-<uid>/`). */
  dir: string;
  mode: VolumeMode;
  bytes: number;
  signal: AbortSignal;
}

async function growRaw(file: string, bytes: number, signal: AbortSignal): Promise<void> {
  if ((await stat(file)).size < bytes) await runTool('qemu-img', ['resize', '-q', '-f', 'raw', file, String(bytes)], { signal });
}

/** Makes `target` from the complete snapshot in `snapshotDir`; resolves with the new volume's format. */
export async function restoreSnapshot(snapshotDir: string, meta: SnapshotMeta, target: TargetVolume): Promise<VolumeFormat> {
  if (meta.format === 'qcow2') {
    const chain = await readChain(snapshotDir, meta.top, target.signal);
    await overlayChain(snapshotDir, chain, { toDir: target.dir, bytes: target.bytes, signal: target.signal });
    return 'qcow2';
  }
  const file = volumeFile(target.dir, target.mode);
  await copySparse(join(snapshotDir, meta.top), file, target.signal);
  await growRaw(file, target.bytes, target.signal);
  return 'raw';
}

/**
 * Makes `target` a clone of `source` (claim `claim`'s volume, on this
 * node), the clone's id naming the source layer it freezes: qcow2 by a
 * frozen layer and a new top on each side, raw by a sparse copy.
 */
export async function cloneVolume(source: LocalVolume, claim: ClaimKey, target: TargetVolume & { id: string; live: LiveGuests | undefined }): Promise<VolumeFormat | Wait> {
  return exclusive(dirname(source.path), () => cloneVolumeAlone(source, claim, target));
}

async function cloneVolumeAlone(source: LocalVolume, claim: ClaimKey, target: TargetVolume & { id: string; live: LiveGuests | undefined }): Promise<VolumeFormat | Wait> {
  const use = await guestOf(claim, target.live);
  if ('wait' in use) return use;
  const sourceDir = dirname(source.path);
  if (source.format === 'qcow2') {
    const chain = await freezeTop(sourceDir, target.id, { guest: use.guest, signal: target.signal });
    await overlayChain(sourceDir, chain, { toDir: target.dir, bytes: target.bytes, signal: target.signal });
    return 'qcow2';
  }
  const file = volumeFile(target.dir, target.mode);
  await copyRaw(source.path, file, { guest: use.guest, signal: target.signal });
  await growRaw(file, target.bytes, target.signal);
  return 'raw';
}

/** What exporting a volume for a copy to another node needs. */
export interface ExportOptions {
  /** The copy's id (the target claim's uid): it names the frozen layer, as a same-node clone's does. */
  id: string;
  /** The file the export is written to (a qcow2 image with no backing file), complete or absent. */
  to: string;
  live: LiveGuests | undefined;
  signal: AbortSignal;
}

/**
 * Writes a self-contained qcow2 image of `source` (claim `claim`'s volume,
 * on this node) to `options.to`, for a copy to another node. A qcow2
 * volume's top is frozen as a same-node clone's is (instant; a running
 * guest moves onto the new top and runs on), and the frozen chain is
 * flattened from there, so the export is the volume at one instant while
 * the guest keeps writing above it. A raw volume is read with its guest
 * paused. Only allocated clusters are written: holes stay holes.
 */
export async function exportVolume(source: LocalVolume, claim: ClaimKey, options: ExportOptions): Promise<Wait | undefined> {
  return exclusive(dirname(source.path), async () => {
    const use = await guestOf(claim, options.live);
    if ('wait' in use) return use;
    const temporary = `${options.to}.partial`;
    const convert = async (from: string, format: VolumeFormat): Promise<void> => {
      await runTool('qemu-img', ['convert', '-U', '-f', format, '-O', 'qcow2', from, temporary], { signal: options.signal, timeoutMs: 6 * 60 * 60_000 });
    };
    if (source.format === 'qcow2') {
      const sourceDir = dirname(source.path);
      await freezeTop(sourceDir, options.id, { guest: use.guest, signal: options.signal });
      await convert(join(sourceDir, layerName(options.id)), 'qcow2');
    } else {
      const guest = use.guest;
      await (guest === undefined ? convert(source.path, 'raw') : guest.whilePaused(() => convert(source.path, 'raw')));
    }
    await rename(temporary, options.to);
    return undefined;
  });
}

/** Writes the complete snapshot in `snapshotDir` as a self-contained qcow2 image at `to`, for a restore on another node. */
export async function exportSnapshot(snapshotDir: string, meta: SnapshotMeta, options: { to: string; signal: AbortSignal }): Promise<void> {
  const temporary = `${options.to}.partial`;
  // A snapshot's files never change: no lock, no guest to mind.
  await runTool('qemu-img', ['convert', '-U', '-f', meta.format, '-O', 'qcow2', join(snapshotDir, meta.top), temporary], { signal: options.signal, timeoutMs: 6 * 60 * 60_000 });
  await rename(temporary, options.to);
}

/** Removes snapshot directory `dir` (its layers live on where volumes still link them). */
export async function removeSnapshot(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
