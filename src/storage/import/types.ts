/** The shapes every import shares: where it writes, and how it reports progress. */
import type { ImagePuller, RegistryCredentials } from '../../agent/images/index.js';
import type { HttpSource } from './http.js';
import type { StreamSource } from './stream.js';

/** The volume file an import fills. */
export interface ImportTarget {
  /** The volume's file; replaced atomically once the import is complete. */
  path: string;
  format: 'raw' | 'qcow2';
  /** The volume's size: the image's virtual size must fit, and the volume is grown to it. */
  sizeBytes: number;
  /** Write qcow2 compressed clusters (`qemu-img convert -c`; the class's `compression: "true"`). */
  compress?: boolean;
}

/** A containerDisk in an OCI registry (`docker://host/repo:tag` or `host/repo:tag`). */
export interface RegistrySource {
  kind: 'registry';
  image: string;
  credentials?: RegistryCredentials;
  /** The node's puller (`pullerFor(store)`): pulls share its image store. */
  puller: ImagePuller;
}

/** An empty volume. */
export interface BlankSource {
  kind: 'blank';
}

/** Where an import's bytes come from. */
export type ImportSource = HttpSource | RegistrySource | BlankSource | StreamSource;

/** The stages an import goes through, in order. */
export type ImportStage = 'download' | 'decompress' | 'convert';

/** A progress report: the stage's bytes and the whole import's percentage. */
export interface ImportProgress {
  stage: ImportStage;
  bytesDone: number;
  bytesTotal: number | undefined;
  /** 0–100 over the whole import. */
  percent: number;
}
