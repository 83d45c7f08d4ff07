/**
 * One import into one volume file: fetch (or receive) the source into a scratch
 * directory beside the target (resumable for HTTP), unwrap gzip/xz found
 * by magic, check the image with `qemu-img` (no backing file, fits the
 * volume, not damaged), convert it into a temp file of the target's format,
 * grow it to the volume's size, and only then rename it over the target.
 * A target is therefore either untouched or complete, never half-written.
 */
import { open, mkdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { createBlank } from './blank.js';
import { decompress } from './decompress.js';
import { ImportError, isAbort } from './errors.js';
import { detect, headerBytes } from './format.js';
import type { DiskFormat } from './format.js';
import { download } from './http.js';
import { checkImage, convertImage, imageInfo, resizeImage } from './qemu-img.js';
import { pullDisk } from './registry.js';
import { receive } from './stream.js';
import type { ImportProgress, ImportSource, ImportStage, ImportTarget } from './types.js';

/** Options of {@link importImage}. */
export interface ImportOptions {
  signal: AbortSignal;
  onProgress?: (progress: ImportProgress) => void;
  /** Where partial downloads are kept between attempts; default `.<target name>.import` beside the target. */
  scratchDir?: string;
  /** Download attempts within this call (resuming each time) before a retryable failure is thrown. Default 3. */
  downloadAttempts?: number;
}

/** The share of the whole import each stage ends at, in percent. */
const stageEnds: Record<ImportStage, number> = { download: 70, decompress: 85, convert: 100 };

/** The scratch directory an import of `target` uses by default. */
export function scratchDirOf(target: ImportTarget): string {
  return join(dirname(target.path), `.${basename(target.path)}.import`);
}

/** Fills `target` from `source`; throws an ImportError (or the signal's reason). */
export async function importImage(source: ImportSource, target: ImportTarget, options: ImportOptions): Promise<void> {
  const scratch = options.scratchDir ?? scratchDirOf(target);
  const temp = `${target.path}.importing`;
  await mkdir(scratch, { recursive: true });
  await rm(temp, { force: true });
  const report = reporter(options.onProgress);
  try {
    if (source.kind === 'blank') {
      await createBlank(temp, target, options.signal);
    } else {
      let file: string;
      if (source.kind === 'http') {
        file = join(scratch, 'download');
        await download(source, file, { signal: options.signal, ...(options.downloadAttempts === undefined ? {} : { attempts: options.downloadAttempts }), onProgress: (done, total) => { report('download', done, total, 0); } });
      } else if (source.kind === 'stream') {
        file = join(scratch, 'upload');
        await receive(source, file, { signal: options.signal, onProgress: (done, total) => { report('download', done, total, 0); } });
        source.onReceived?.();
      } else {
        file = (await pullDisk(source, options.signal)).file;
        report('download', 1, 1, 0);
      }
      await convertInto(file, scratch, temp, target, { signal: options.signal, report });
    }
    await finish(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    // What cannot succeed on a retry goes; a retryable failure, or an import stopped with its agent, keeps its
    // partial download for the next run to resume (an upload cannot resume: it goes too).
    const resumable = (err instanceof ImportError && err.retryable) || isAbort(err);
    if (!resumable || source.kind === 'stream') await rm(scratch, { recursive: true, force: true });
    throw err;
  }
  await rm(scratch, { recursive: true, force: true });
  report('convert', 1, 1, 0);
}

type Report = (stage: ImportStage, done: number, total: number | undefined, from: number) => void;

function reporter(onProgress: ImportOptions['onProgress']): Report {
  let last = 0;
  return (stage, done, total, from) => {
    if (onProgress === undefined) return;
    const start = stage === 'download' ? 0 : from;
    const fraction = total === undefined || total === 0 ? 0 : Math.min(1, done / total);
    const percent = Math.max(last, start + (stageEnds[stage] - start) * fraction);
    last = percent;
    onProgress({ stage, bytesDone: done, bytesTotal: total, percent });
  };
}

/** Unwraps, checks and converts `file` into `temp`. */
async function convertInto(file: string, scratch: string, temp: string, target: ImportTarget, context: { signal: AbortSignal; report: Report }): Promise<void> {
  let current = file;
  let detected = await detectFile(current);
  for (let depth = 0; detected.kind === 'compressed'; depth++) {
    if (depth === 2) throw new ImportError('BadImage', 'the image is compressed more than twice over: unwrap it on the server', false);
    const next = join(scratch, `decompressed-${depth}`);
    await decompress(current, detected.compression, next, { signal: context.signal, onProgress: (done, total) => { context.report('decompress', done, total, stageEnds.download); } });
    if (current !== file) await rm(current, { force: true });
    current = next;
    detected = await detectFile(current);
  }
  const format: DiskFormat = detected.format;
  const info = await imageInfo(current, format, context.signal);
  if (info.backingFile !== undefined) {
    throw new ImportError('BadImage', `the ${format} image has a backing file (${info.backingFile}), which an imported image may not have: flatten it first (qemu-img convert -O qcow2 in out)`, false);
  }
  if (info.virtualSize > target.sizeBytes) {
    throw new ImportError('TooLarge', `the image's virtual size (${info.virtualSize} bytes) is larger than the volume (${target.sizeBytes} bytes): request at least ${info.virtualSize} bytes in the DataVolume's storage`, false);
  }
  await checkImage(current, format, context.signal);
  const convertFrom = current === file ? stageEnds.download : stageEnds.decompress;
  await convertImage(current, format, temp, target.format, { signal: context.signal, compress: target.compress === true, onProgress: (fraction) => { context.report('convert', fraction, 1, convertFrom); } });
  if (current !== file) await rm(current, { force: true });
  if (info.virtualSize < target.sizeBytes) {
    if (target.format === 'raw') await truncate(temp, target.sizeBytes);
    else await resizeImage(temp, target.format, target.sizeBytes, context.signal);
  }
}

/** The first bytes (and the last 512, for a fixed VHD's footer) of `file`, detected. */
async function detectFile(file: string): Promise<ReturnType<typeof detect>> {
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size === 0) throw new ImportError('BadImage', 'the image is empty (0 bytes): check the source', false);
    const head = Buffer.alloc(Math.min(size, headerBytes));
    await handle.read(head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(size, 512));
    await handle.read(tail, 0, tail.length, size - tail.length);
    return detect(head, tail);
  } finally {
    await handle.close();
  }
}

/** Makes the temp file durable, then the target. */
async function finish(temp: string, target: ImportTarget): Promise<void> {
  const handle = await open(temp, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, target.path);
  const dir = await open(dirname(target.path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  await stat(target.path);
}
