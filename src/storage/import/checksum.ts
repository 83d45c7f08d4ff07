/**
 * CDI's `checksum` field: `algorithm:hex` (`sha256:…`, also `md5`, `sha1`,
 * `sha512`), checked against the bytes as downloaded (before any
 * decompression), as CDI does.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ImportError } from './errors.js';

/** A parsed checksum. */
export interface Checksum {
  algorithm: 'md5' | 'sha1' | 'sha256' | 'sha512';
  hex: string;
}

const hexLength: Record<Checksum['algorithm'], number> = { md5: 32, sha1: 40, sha256: 64, sha512: 128 };

/** Parses `algorithm:hex`; throws a non-retryable ImportError naming the problem. */
export function parseChecksum(text: string): Checksum {
  const match = /^(md5|sha1|sha256|sha512):([0-9a-fA-F]+)$/.exec(text.trim());
  const algorithm = match?.[1] as Checksum['algorithm'] | undefined;
  const hex = match?.[2]?.toLowerCase();
  if (algorithm === undefined || hex === undefined || hex.length !== hexLength[algorithm]) {
    throw new ImportError('Unsupported', `checksum "${text}" is not "algorithm:hex" with one of md5, sha1, sha256, sha512 and a digest of the right length: fix spec.source.http.checksum, e.g. "sha256:<64 hex digits>"`, false);
  }
  return { algorithm, hex };
}

/** A running hash for `checksum`. */
export function hasherFor(checksum: Checksum): Hash {
  return createHash(checksum.algorithm);
}

/** Hashes the first `length` bytes of `file` (what a resumed download already holds) into `hash`. */
export async function hashFilePrefix(hash: Hash, file: string, length: number): Promise<void> {
  if (length === 0) return;
  for await (const chunk of createReadStream(file, { start: 0, end: length - 1 })) hash.update(chunk as Buffer);
}

/** Throws when the digest does not match. */
export function verifyChecksum(checksum: Checksum, actual: string, url: string): void {
  if (actual.toLowerCase() === checksum.hex) return;
  throw new ImportError('ChecksumMismatch', `the image downloaded from ${url} has ${checksum.algorithm} ${actual}, not ${checksum.hex} as spec.source.http.checksum says: the file on the server changed or is damaged; check the URL and the checksum`, false);
}
