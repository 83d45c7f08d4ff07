/** A blank DataVolume: an empty (sparse) volume of the requested size. */
import { createImage } from './qemu-img.js';
import type { ImportTarget } from './types.js';

/** Creates the empty image at `file` (a temp file the importer renames into place). */
export async function createBlank(file: string, target: ImportTarget, signal: AbortSignal): Promise<void> {
  await createImage(file, target.format, target.sizeBytes, signal);
}
