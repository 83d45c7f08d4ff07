/**
 * Small read-only ISO 9660 disks (Rock Ridge + Joliet) made with
 * `genisoimage`: how cloud-init data, ConfigMaps, Secrets and service
 * account tokens reach the guest, as KubeVirt does it.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, normalize } from 'node:path';
import { runTool } from '../host/run-tool.js';

/** One file on the ISO. */
export interface IsoFile {
  /** Relative path on the ISO, e.g. `openstack/latest/user_data`. */
  path: string;
  content: string | Buffer;
}

/** What {@link buildIso} writes. */
export interface BuildIsoOptions {
  /** The ISO file to write. */
  output: string;
  /** ISO volume id (cloud-init looks for `cidata` or `config-2`); at most 32 characters. */
  volumeId: string;
  files: IsoFile[];
  signal: AbortSignal;
}

/** Writes an ISO holding `files`. */
export async function buildIso(options: BuildIsoOptions): Promise<void> {
  if (options.volumeId.length === 0 || options.volumeId.length > 32) {
    throw new Error(`ISO volume id ${JSON.stringify(options.volumeId)} must be 1 to 32 characters long`);
  }
  const stage = `${options.output}.d`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(stage, { recursive: true, mode: 0o700 });
  try {
    for (const file of options.files) {
      const relative = normalize(file.path);
      if (relative.startsWith('..') || relative.startsWith('/') || relative === '.') {
        throw new Error(`ISO file path ${JSON.stringify(file.path)} must be relative and stay inside the disk`);
      }
      const target = join(stage, relative);
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await writeFile(target, file.content, { mode: 0o600 });
    }
    await runTool(
      'genisoimage',
      ['-output', options.output, '-volid', options.volumeId, '-joliet', '-joliet-long', '-rock', '-input-charset', 'utf-8', '-quiet', stage],
      { signal: options.signal },
    );
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
