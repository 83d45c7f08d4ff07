/**
 * A registry DataVolume: the containerDisk's disk file, pulled into the
 * node's image store by the agent's puller (so a VMI's pull of the same
 * image shares it), then converted like any downloaded image.
 */
import { ImagePullError } from '../../agent/images/index.js';
import { ImportError, isAbort } from './errors.js';
import type { RegistrySource } from './types.js';

/** The pulled disk file and its format (`qcow2`, or `raw` for anything else). */
export async function pullDisk(source: RegistrySource, signal: AbortSignal): Promise<{ file: string; format: 'qcow2' | 'raw' }> {
  const image = source.image.replace(/^docker:\/\//, '');
  try {
    const pulled = await source.puller.ensure({
      image,
      pullPolicy: 'Always',
      ...(source.credentials === undefined ? {} : { credentials: source.credentials }),
      needsDisk: true,
      needsKernel: false,
      signal,
    });
    if (pulled.disk === undefined) throw new ImportError('BadImage', `image "${image}" has no disk in /disk/: it is not a containerDisk`, false);
    return { file: pulled.disk, format: pulled.diskFormat ?? 'raw' };
  } catch (err) {
    if (isAbort(err) || err instanceof ImportError) throw err;
    if (err instanceof ImagePullError) {
      const retryable = err.failure !== 'BadImage' && err.failure !== 'NotFound' && err.failure !== 'NotPresent' && err.failure !== 'Unauthorized';
      throw new ImportError('Registry', `Unable to pull image "${image}": ${err.message}`, retryable, { cause: err });
    }
    const detail = err instanceof Error ? err.message : String(err);
    throw new ImportError('Registry', `Unable to pull image "${image}": ${detail}`, false, { cause: err });
  }
}
