/**
 * qcow2 backing chains in a volume's directory, the files behind instant
 * snapshots and clones. A qcow2 volume's directory holds its active top,
 * `disk.img` (the file QEMU and importers open, whatever happened before),
 * and read-only layers `layer-<id>.qcow2` below it, each naming the one
 * below by a relative file name. Freezing the top turns it into a layer
 * and puts a new empty `disk.img` over it; a snapshot or clone is then a
 * directory of hard links to the frozen layers (no data is copied, and a
 * layer lives as long as any directory links it, so deleting the source
 * or the snapshot leaves the others whole), plus, for a volume, its own
 * new top. Every step leaves `disk.img` a complete image, and a step cut
 * short is finished by the next attempt.
 *
 * Raw volumes cannot chain: their snapshots and clones are sparse copies
 * (`cp --sparse=always`), whose time grows with the data written.
 */
import { createHash } from 'node:crypto';
import { link, mkdir, open, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { runTool } from '../../host/run-tool.js';
import { isPlainObject } from '../../api/object.js';
import type { LiveGuest } from './live.js';

/** The active top of a qcow2 volume of volumeMode Filesystem. */
export const activeFile = 'disk.img';
/** What a snapshot directory says about itself, written last: its presence marks a complete snapshot. */
const metaFile = 'snapshot.json';

/** One image of a chain. */
export interface ChainImage {
  /** The file name, in the chain's directory. */
  file: string;
  format: 'raw' | 'qcow2';
  virtualSize: number;
  /** The file name of the image below, if any. */
  backing?: string;
}

/** The frozen layer made by the operation `id` (a snapshot content's or a target claim's uid). */
export function layerName(id: string): string {
  return `layer-${id}.qcow2`;
}

/** The new top being made by operation `id`, renamed to `disk.img` once it is in use. */
function pendingName(id: string): string {
  return `next-${id}.qcow2`;
}

/** The QEMU block node name of operation `id`'s overlay (QEMU allows 31 characters). */
export function overlayNodeName(id: string): string {
  return `ov-${createHash('sha256').update(id).digest('hex').slice(0, 16)}`;
}

function parseImage(value: unknown, dir: string): ChainImage {
  if (!isPlainObject(value)) throw new Error('qemu-img info printed something that is not an image description');
  const { filename, format } = value;
  const size = value['virtual-size'];
  const backing = value['backing-filename'];
  if (typeof filename !== 'string' || typeof size !== 'number' || (format !== 'raw' && format !== 'qcow2')) {
    throw new Error(`qemu-img info describes ${JSON.stringify(filename)} as a ${JSON.stringify(format)} image, which is not a raw or qcow2 file of a local volume`);
  }
  if (dirname(filename) !== dir) throw new Error(`the image ${filename} is outside the volume's directory ${dir}: a chain of a local volume stays in one directory`);
  if (backing !== undefined && (typeof backing !== 'string' || backing.includes('/'))) {
    throw new Error(`the image ${filename} names its backing file ${JSON.stringify(backing)} by a path; layers of local volumes name their backing file by a file name in the same directory`);
  }
  return { file: basename(filename), format, virtualSize: size, ...(backing === undefined ? {} : { backing }) };
}

/** The chain under `dir/top`, top first, as the images' headers say (read even while QEMU has them open). */
export async function readChain(dir: string, top: string, signal: AbortSignal): Promise<ChainImage[]> {
  const out = await runTool('qemu-img', ['info', '-U', '--backing-chain', '--output=json', join(dir, top)], { signal });
  const parsed: unknown = JSON.parse(out);
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.map((image) => parseImage(image, dir));
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  return sa.ino === sb.ino && sa.dev === sb.dev;
}

/** fsync of a directory, so a rename or link in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Hard-links `from` as `to`; a link already there to the same file is fine. */
async function linkOnce(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EXDEV') throw new Error(`cannot hard-link ${from} to ${to}: volumes and snapshots must be on one filesystem (the agent's data directory)`, { cause: err });
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !(await sameFile(from, to))) throw err;
  }
}

/** A new empty qcow2 `dir/file` of `bytes` over `backing` (a file name in `dir`). */
async function createOverlayFile(dir: string, file: string, backing: string, bytes: number, signal: AbortSignal): Promise<void> {
  // -u: the backing file is named relative to the overlay and need not be opened to size it.
  await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', backing, '-F', 'qcow2', join(dir, file), String(bytes)], { signal });
}

/**
 * Freezes the top of the qcow2 volume in `dir` as layer `layerName(id)`
 * and puts a new empty `disk.img` over it: O(1), a link, a small file and
 * a rename. With `guest` (a running guest uses the volume) the guest's
 * disk moves to the new top through QMP before the rename, so it never
 * writes to the frozen layer again. Resolves with the frozen chain, the
 * layer first. Running it again for the same `id` finishes what an
 * interrupted run left, or does nothing.
 */
export async function freezeTop(dir: string, id: string, options: { guest: LiveGuest | undefined; signal: AbortSignal }): Promise<ChainImage[]> {
  const { signal, guest } = options;
  const layer = layerName(id);
  const pending = pendingName(id);
  const top = join(dir, activeFile);
  const [current] = await readChain(dir, activeFile, signal);
  if (current === undefined || current.format !== 'qcow2') throw new Error(`${top} is not a qcow2 image, so it cannot be frozen into a layer`);
  if (current.backing === layer && !(await exists(join(dir, pending)))) return readChain(dir, layer, signal);
  if (await exists(join(dir, pending))) {
    const [next] = await readChain(dir, pending, signal).catch(() => []);
    // A new top over the layer, made by an interrupted run: finish from the switch (which is idempotent).
    if (next?.backing === layer && (await exists(join(dir, layer))) && (await sameFile(join(dir, layer), top))) return finish();
    await rm(join(dir, pending), { force: true });
  }
  await linkOnce(top, join(dir, layer));
  await createOverlayFile(dir, pending, layer, current.virtualSize, signal);
  return finish();

  async function finish(): Promise<ChainImage[]> {
    await guest?.snapshot({ path: join(dir, pending), nodeName: overlayNodeName(id) });
    await rename(join(dir, pending), top);
    await syncDir(dir);
    return readChain(dir, layer, signal);
  }
}

/**
 * Makes `toDir` a qcow2 volume over `chain` (top first, files in
 * `fromDir`): hard links to every layer, and a new empty `disk.img` of
 * `bytes` (at least the chain's size) over the first. O(1) in the data.
 */
export async function overlayChain(fromDir: string, chain: readonly ChainImage[], options: { toDir: string; bytes: number; signal: AbortSignal }): Promise<void> {
  const first = chain[0];
  if (first === undefined) throw new Error(`no layers to clone from in ${fromDir}`);
  await mkdir(options.toDir, { recursive: true, mode: 0o700 });
  for (const image of chain) await linkOnce(join(fromDir, image.file), join(options.toDir, image.file));
  const next = `${activeFile}.new`;
  await createOverlayFile(options.toDir, next, first.file, Math.max(options.bytes, first.virtualSize), options.signal);
  await rename(join(options.toDir, next), join(options.toDir, activeFile));
  await syncDir(options.toDir);
}

/** Hard-links the layers of `chain` (files in `fromDir`) into `toDir`. */
export async function linkChain(fromDir: string, chain: readonly ChainImage[], toDir: string): Promise<void> {
  await mkdir(toDir, { recursive: true, mode: 0o700 });
  for (const image of chain) await linkOnce(join(fromDir, image.file), join(toDir, image.file));
  await syncDir(toDir);
}

/** A sparse copy of `from` at `to` (via a temporary name, so `to` is whole or absent); its time grows with the data. */
export async function copySparse(from: string, to: string, signal: AbortSignal): Promise<void> {
  await mkdir(dirname(to), { recursive: true, mode: 0o700 });
  const temporary = `${to}.copy`;
  await runTool('cp', ['--sparse=always', from, temporary], { signal, timeoutMs: 6 * 60 * 60_000 });
  await rename(temporary, to);
  await syncDir(dirname(to));
}

/** What a snapshot directory holds. */
export interface SnapshotMeta {
  format: 'raw' | 'qcow2';
  /** The file the snapshot's data starts at: the frozen top layer, or the raw copy. */
  top: string;
  /** The size of the volume when it was cut, in bytes: the smallest volume it restores into. */
  bytes: number;
  volumeMode: 'Filesystem' | 'Block';
  /** When it was cut, ms since the epoch. */
  createdMs: number;
}

/** Marks the snapshot in `dir` complete. */
export async function writeSnapshotMeta(dir: string, meta: SnapshotMeta): Promise<void> {
  const temporary = join(dir, `${metaFile}.tmp`);
  await writeFile(temporary, `${JSON.stringify(meta)}\n`, { mode: 0o600 });
  await rename(temporary, join(dir, metaFile));
  await syncDir(dir);
}

/** The description of the complete snapshot in `dir`; undefined when there is none (missing or cut short). */
export async function readSnapshotMeta(dir: string): Promise<SnapshotMeta | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, metaFile), 'utf8');
  } catch {
    return undefined;
  }
  const value: unknown = JSON.parse(text);
  if (!isPlainObject(value)) return undefined;
  const { format, top, bytes, volumeMode, createdMs } = value;
  if ((format !== 'raw' && format !== 'qcow2') || typeof top !== 'string' || top.includes('/') || typeof bytes !== 'number' || (volumeMode !== 'Filesystem' && volumeMode !== 'Block') || typeof createdMs !== 'number') {
    throw new Error(`${join(dir, metaFile)} does not describe a snapshot: remove the snapshot and take it again`);
  }
  return { format, top, bytes, volumeMode, createdMs };
}
