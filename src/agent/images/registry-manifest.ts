/**
 * Manifests as a Docker Registry HTTP API v2 / OCI distribution registry
 * serves them: an image manifest (OCI, or Docker's schema 2) names a config
 * and the layers in the order they apply; an index (OCI, or Docker's
 * manifest list) names one image manifest per platform. Parsed here, with
 * the digest checks that make a pull content-addressed. Pure functions.
 */
import { createHash } from 'node:crypto';
import { asRecord, at } from '../../api/kinds/read.js';

/** The media types of the manifests a pull accepts, in the order the `Accept` header lists them. */
export const manifestMediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const imageTypes: ReadonlySet<string> = new Set([manifestMediaTypes.ociManifest, manifestMediaTypes.dockerManifest]);
const indexTypes: ReadonlySet<string> = new Set([manifestMediaTypes.ociIndex, manifestMediaTypes.dockerList]);

/** A content descriptor: what a manifest says about a blob or a child manifest. */
export interface Descriptor {
  mediaType: string;
  /** `sha256:<64 hex>`. */
  digest: string;
  size: number;
}

/** An entry of an index, with the platform it is for. */
export interface PlatformDescriptor extends Descriptor {
  platform?: { os: string; architecture: string; variant?: string };
}

/** A parsed manifest: one image, or an index of images by platform. */
export type Manifest =
  | { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[] }
  | { kind: 'index'; mediaType: string; manifests: PlatformDescriptor[] };

/** A manifest the pull cannot use; the message says what is wrong with it. */
export class ManifestError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ManifestError';
  }
}

const digestPattern = /^sha256:[a-f0-9]{64}$/;

/** The `sha256:<hex>` digest of `bytes`. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * Parses a manifest body. The media type comes from the body when it says,
 * else from the response's `Content-Type`, else from its shape (an OCI
 * manifest may leave it out).
 */
export function parseManifest(body: Buffer, contentType: string | undefined): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ManifestError(`the manifest is not JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const root = asRecord(json);
  if (root === undefined) throw new ManifestError('the manifest is not a JSON object');
  if (root.schemaVersion !== 2) {
    throw new ManifestError(`the manifest has schemaVersion ${JSON.stringify(root.schemaVersion)}; only schema 2 (Docker v2 schema 2 and OCI) is supported, push the image with a current tool`);
  }
  const declared = typeof root.mediaType === 'string' ? root.mediaType : contentType?.split(';')[0]?.trim();
  const mediaType = declared !== undefined && declared !== '' && declared !== 'application/json' ? declared : Array.isArray(root.manifests) ? manifestMediaTypes.ociIndex : manifestMediaTypes.ociManifest;
  if (indexTypes.has(mediaType)) {
    const manifests = arrayOf(root, 'manifests').map((entry, i) => platformDescriptor(entry, `manifests[${i}]`));
    return { kind: 'index', mediaType, manifests };
  }
  if (imageTypes.has(mediaType)) {
    const config = descriptor(root.config, 'config');
    const layers = arrayOf(root, 'layers').map((entry, i) => descriptor(entry, `layers[${i}]`));
    return { kind: 'image', mediaType, config, layers };
  }
  throw new ManifestError(`the manifest's media type "${mediaType}" is not one this node pulls (${Object.values(manifestMediaTypes).join(', ')})`);
}

/**
 * The manifest of `want`'s platform in `index`: the first entry whose os
 * and architecture match (a variant, as on arm, is not compared).
 */
export function pickPlatform(index: PlatformDescriptor[], want: { os: string; architecture: string }): PlatformDescriptor | undefined {
  return index.find((entry) => entry.platform?.os === want.os && entry.platform.architecture === want.architecture && imageTypes.has(entry.mediaType));
}

/** The platforms an index offers, for an error message: `linux/arm64, linux/s390x`. */
export function platformsOf(index: PlatformDescriptor[]): string {
  const names = index.map((e) => (e.platform === undefined ? 'unknown' : `${e.platform.os}/${e.platform.architecture}`));
  return names.length === 0 ? 'none' : names.join(', ');
}

/** Throws unless `digest` is a sha256 digest this node can verify. */
export function assertDigest(digest: string, what: string): void {
  if (!digestPattern.test(digest)) throw new ManifestError(`${what} has digest ${JSON.stringify(digest)}, not "sha256:" and 64 lowercase hex digits`);
}

function arrayOf(root: Record<string, unknown>, key: string): unknown[] {
  const value = root[key];
  if (!Array.isArray(value)) throw new ManifestError(`the manifest has no "${key}" array`);
  return value as unknown[];
}

function descriptor(value: unknown, path: string): Descriptor {
  const record = asRecord(value);
  if (record === undefined) throw new ManifestError(`the manifest's ${path} is not an object`);
  const { mediaType, digest, size } = record;
  if (typeof mediaType !== 'string') throw new ManifestError(`the manifest's ${path}.mediaType is not a string`);
  if (typeof digest !== 'string') throw new ManifestError(`the manifest's ${path}.digest is not a string`);
  assertDigest(digest, `the manifest's ${path}`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ManifestError(`the manifest's ${path}.size is not a non-negative integer`);
  return { mediaType, digest, size };
}

function platformDescriptor(value: unknown, path: string): PlatformDescriptor {
  const base: PlatformDescriptor = descriptor(value, path);
  const os = at(value, 'platform', 'os');
  const architecture = at(value, 'platform', 'architecture');
  if (typeof os === 'string' && typeof architecture === 'string') {
    const variant = at(value, 'platform', 'variant');
    base.platform = typeof variant === 'string' ? { os, architecture, variant } : { os, architecture };
  }
  return base;
}
