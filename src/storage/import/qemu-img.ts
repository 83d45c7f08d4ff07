/**
 * The `qemu-img` runs an import needs: `info` (parsed and checked, not
 * cast), `check`, `convert` with its progress, and `create`. Argument
 * arrays, never a shell; every run takes the import's AbortSignal.
 */
import { spawn } from 'node:child_process';
import { isPlainObject } from '../../api/object.js';
import { runTool, ToolError } from '../../host/run-tool.js';
import { ImportError } from './errors.js';
import type { DiskFormat } from './format.js';

/** What `qemu-img info` says about an image. */
export interface ImageInfo {
  format: string;
  virtualSize: number;
  backingFile: string | undefined;
}

/** `qemu-img info --output=json` of `file` read as `format`. */
export async function imageInfo(file: string, format: DiskFormat, signal: AbortSignal): Promise<ImageInfo> {
  let out: string;
  try {
    out = await runTool('qemu-img', ['info', '--output=json', '-f', format, file], { signal });
  } catch (err) {
    throw badImage(err, `it cannot be read as ${format}`);
  }
  const parsed: unknown = JSON.parse(out);
  if (!isPlainObject(parsed) || typeof parsed['virtual-size'] !== 'number' || typeof parsed.format !== 'string') {
    throw new ImportError('Internal', `qemu-img info printed no format and virtual-size for ${file}: ${out.slice(0, 200)}`, false);
  }
  const backing = parsed['backing-filename'] ?? parsed['full-backing-filename'];
  return { format: parsed.format, virtualSize: parsed['virtual-size'], backingFile: typeof backing === 'string' ? backing : undefined };
}

/** `qemu-img check` of a qcow2: corruption fails the import; leaked clusters are harmless. */
export async function checkImage(file: string, format: DiskFormat, signal: AbortSignal): Promise<void> {
  if (format !== 'qcow2' && format !== 'vdi' && format !== 'vhdx') return;
  try {
    await runTool('qemu-img', ['check', '-f', format, file], { signal, timeoutMs: 600_000 });
  } catch (err) {
    // Exit 3: leaked clusters only, the data is intact.
    if (err instanceof ToolError && (err.cause as { code?: unknown } | undefined)?.code === 3) return;
    throw badImage(err, 'qemu-img check found it damaged');
  }
}

/** Options of {@link convertImage}. */
export interface ConvertOptions {
  signal: AbortSignal;
  /** Fraction done, 0 to 1, as `qemu-img -p` reports it. */
  onProgress?: (fraction: number) => void;
  /** Compressed clusters (qcow2 targets only). */
  compress?: boolean;
}

/**
 * `qemu-img convert` of `source` (as `sourceFormat`) into a new `target`
 * file of `targetFormat`. Out-of-order writes and 16 coroutines keep the
 * disk busy; zeroes stay holes.
 */
export function convertImage(source: string, sourceFormat: DiskFormat, target: string, targetFormat: 'raw' | 'qcow2', options: ConvertOptions): Promise<void> {
  const compress = options.compress === true && targetFormat === 'qcow2' ? ['-c'] : [];
  const args = ['convert', '-p', '-f', sourceFormat, '-O', targetFormat, ...compress, '-t', 'none', '-W', '-m', '16', source, target];
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split(/[\r\n]/);
      pending = parts.pop() ?? '';
      for (const part of parts) {
        const match = /\((\d+(?:\.\d+)?)\/100%\)/.exec(part);
        if (match?.[1] !== undefined) options.onProgress?.(Number(match[1]) / 100);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.once('error', (err) => { reject(err); });
    child.once('close', (code) => {
      if (code === 0) {
        resolve();
        return;
      }
      const detail = stderr.trim().split('\n').pop() ?? `exit ${String(code)}`;
      if (/No space left on device/i.test(stderr)) {
        reject(new ImportError('NoSpace', `the volume's disk is full: qemu-img convert failed: ${detail}; free space on the node or use a node with more room`, true));
        return;
      }
      reject(new ImportError('BadImage', `the image cannot be converted to ${targetFormat}: qemu-img convert failed: ${detail}; the image is damaged or truncated: check the source`, false));
    });
  });
}

/** A new empty image file of `sizeBytes`. */
export async function createImage(file: string, format: 'raw' | 'qcow2', sizeBytes: number, signal: AbortSignal): Promise<void> {
  await runTool('qemu-img', ['create', '-q', '-f', format, file, String(sizeBytes)], { signal });
}

/** Grows an image file to `sizeBytes` of virtual size. */
export async function resizeImage(file: string, format: 'raw' | 'qcow2', sizeBytes: number, signal: AbortSignal): Promise<void> {
  await runTool('qemu-img', ['resize', '-q', '-f', format, file, String(sizeBytes)], { signal });
}

function badImage(err: unknown, why: string): ImportError {
  const detail = err instanceof Error ? err.message : String(err);
  return new ImportError('BadImage', `the image is not a usable disk image: ${why} (${detail}); it may be damaged or truncated: check the source`, false, { cause: err });
}
