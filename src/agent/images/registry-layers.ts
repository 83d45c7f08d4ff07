/**
 * Applying an image's layers, in order, as a container runtime would, but
 * only for the files a VMI can use: KubeVirt's containerDisk layout puts
 * the disk as the single file under `/disk/`, and a kernelBoot container
 * has its kernel and initrd at the VMI's `kernelPath` and `initrdPath`.
 * Other files are skipped as they stream past, so a pull writes no more
 * than it keeps. Later layers replace files and delete them with OCI
 * whiteouts (`.wh.<name>`, `.wh..wh..opq`); symlinks and hardlinks to
 * files elsewhere in the image are followed by a second pass.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, open, rm } from 'node:fs/promises';
import { posix, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { readTar } from './registry-tar.js';
import type { TarEntry } from './registry-tar.js';

/** A layer that cannot be unpacked; the message says why. */
export class LayerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LayerError';
  }
}

/** The files found in the applied layers, staged on disk. */
export interface LayerFiles {
  /** Names of the regular files directly under `/disk/` (KubeVirt wants exactly one). */
  diskNames: string[];
  /** The staged file of an image path (`/disk/x.qcow2`, `/boot/vmlinuz`), symlinks followed; undefined when the image has none. */
  file(path: string): string | undefined;
}

type Tracked = { kind: 'file'; staged: string; layer: number } | { kind: 'link'; target: string; layer: number; hard: boolean };

const maxPasses = 4;
const maxHops = 16;

/**
 * Applies `layers` (files holding tar, gzip-compressed or not) in order
 * under `staging`, keeping the files under `/disk/` and those at `paths`.
 */
export async function extractLayers(layers: readonly string[], options: { staging: string; paths: readonly string[] }): Promise<LayerFiles> {
  const wanted = new Set(options.paths.map(normalizePath).filter((p): p is string => p !== undefined));
  for (let pass = 1; ; pass++) {
    const dir = join(options.staging, `pass-${pass}`);
    await mkdir(dir, { recursive: true });
    const tracked = new Map<string, Tracked>();
    const state = { dir, wanted, tracked, counter: 0 };
    for (const [index, layer] of layers.entries()) await applyLayer(layer, index, state);
    const missing = unresolvedTargets(tracked, wanted);
    if (missing.length === 0 || pass >= maxPasses) return layerFiles(tracked);
    for (const target of missing) wanted.add(target);
    await rm(dir, { recursive: true, force: true });
  }
}

/** `./a//b/` → `a/b`; undefined for a path that leaves the root. */
export function normalizePath(path: string): string | undefined {
  const normal = posix.normalize(`/${path}`).replace(/^\/+/, '').replace(/\/+$/, '');
  return normal.startsWith('../') || normal === '..' ? undefined : normal;
}

function isDiskChild(path: string): boolean {
  return path.startsWith('disk/') && path.length > 5 && !path.slice(5).includes('/');
}

interface ApplyState {
  dir: string;
  wanted: ReadonlySet<string>;
  tracked: Map<string, Tracked>;
  counter: number;
}

async function applyLayer(file: string, index: number, state: ApplyState): Promise<void> {
  const stream = await layerStream(file);
  try {
    await readTar(stream, async (entry, body) => {
      const path = normalizePath(entry.path);
      if (path === undefined || path === '') return;
      const base = posix.basename(path);
      if (base.startsWith('.wh.')) {
        whiteout(state.tracked, posix.dirname(path), base, index);
        return;
      }
      if (!isDiskChild(path) && !state.wanted.has(path)) return;
      await applyEntry(path, entry, body, state, index);
    });
  } catch (err) {
    stream.destroy();
    if (err instanceof LayerError) throw err;
    throw new LayerError(`layer ${index + 1} cannot be unpacked: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

async function applyEntry(path: string, entry: TarEntry, body: AsyncIterable<Buffer>, state: ApplyState, layer: number): Promise<void> {
  await dropTracked(state.tracked, path);
  switch (entry.type) {
    case 'file': {
      const staged = join(state.dir, `f${++state.counter}`);
      await pipeline(Readable.from(body), createWriteStream(staged, { mode: 0o644 }));
      state.tracked.set(path, { kind: 'file', staged, layer });
      return;
    }
    case 'symlink':
    case 'hardlink': {
      const hard = entry.type === 'hardlink';
      // A hardlink names its target from the root, a symlink from its own directory (or the root, when absolute).
      const target = normalizePath(hard || entry.linkTarget.startsWith('/') ? entry.linkTarget : posix.join(posix.dirname(path), entry.linkTarget));
      if (target === undefined) return;
      const existing = state.tracked.get(target);
      if (hard && existing?.kind === 'file') {
        const staged = join(state.dir, `f${++state.counter}`);
        await link(existing.staged, staged);
        state.tracked.set(path, { kind: 'file', staged, layer });
        return;
      }
      state.tracked.set(path, { kind: 'link', target, layer, hard });
      return;
    }
    case 'directory':
    case 'other':
      return;
  }
}

/** A whiteout hides what lower layers had: one name, or (opaque) a whole directory's contents. */
function whiteout(tracked: Map<string, Tracked>, dir: string, base: string, layer: number): void {
  const prefix = dir === '.' ? '' : `${dir}/`;
  const hidden = base === '.wh..wh..opq' ? undefined : `${prefix}${base.slice(4)}`;
  for (const [path, item] of tracked) {
    if (item.layer >= layer) continue;
    const under = hidden === undefined ? path.startsWith(prefix) : path === hidden || path.startsWith(`${hidden}/`);
    if (under) tracked.delete(path);
  }
}

async function dropTracked(tracked: Map<string, Tracked>, path: string): Promise<void> {
  const old = tracked.get(path);
  tracked.delete(path);
  if (old?.kind === 'file') await rm(old.staged, { force: true });
}

/** Follows links from `path` to a tracked file's path; the last path reached when the chain leaves what is tracked. */
function follow(tracked: ReadonlyMap<string, Tracked>, path: string): { file?: string; stoppedAt: string } {
  let at = path;
  for (let hop = 0; hop < maxHops; hop++) {
    const item = tracked.get(at);
    if (item === undefined) return { stoppedAt: at };
    if (item.kind === 'file') return { file: item.staged, stoppedAt: at };
    at = item.target;
  }
  return { stoppedAt: at };
}

/** Link targets of the files of interest that the pass did not keep, for the next pass to keep. */
function unresolvedTargets(tracked: ReadonlyMap<string, Tracked>, wanted: ReadonlySet<string>): string[] {
  const missing = new Set<string>();
  for (const [path] of tracked) {
    if (!isDiskChild(path) && !wanted.has(path)) continue;
    const end = follow(tracked, path);
    if (end.file === undefined && end.stoppedAt !== path && !wanted.has(end.stoppedAt)) missing.add(end.stoppedAt);
  }
  return [...missing];
}

function layerFiles(tracked: ReadonlyMap<string, Tracked>): LayerFiles {
  const diskNames = [...tracked.keys()].filter((p) => isDiskChild(p) && follow(tracked, p).file !== undefined).map((p) => p.slice(5)).sort();
  return {
    diskNames,
    file(path) {
      const normal = normalizePath(path);
      return normal === undefined ? undefined : follow(tracked, normal).file;
    },
  };
}

const gzipMagic = Buffer.from([0x1f, 0x8b]);
const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** The layer's tar stream: gunzipped when the file is gzip (by its magic bytes, whatever the media type says). */
async function layerStream(file: string): Promise<Readable> {
  const head = Buffer.alloc(4);
  const handle = await open(file, 'r');
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if (head.equals(zstdMagic)) throw new LayerError('a layer is zstd-compressed, which this node cannot unpack; push the image with gzip-compressed or uncompressed layers');
  const raw = createReadStream(file);
  if (!head.subarray(0, 2).equals(gzipMagic)) return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}
