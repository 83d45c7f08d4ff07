/**
 * Pulling containerDisk and kernelBoot images from an OCI registry into
 * the node's image store, under the pull policy (`registry-policy.ts`):
 * the manifest (an index picks linux/amd64), the layers streamed to disk
 * with their digests checked, the files a VMI uses unpacked from them
 * (`registry-layers.ts`), and the result imported as `repo@digest` with
 * the tag pointing at it. Concurrent pulls of one image share a download;
 * with `Always`, an unchanged digest reuses what the store has.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryCredentials } from './registry-auth.js';
import { RegistryClient, RegistryError } from './registry-client.js';
import type { RegistryFailure } from './registry-client.js';
import { extractLayers, LayerError } from './registry-layers.js';
import type { LayerFiles } from './registry-layers.js';
import { ManifestError, parseManifest, pickPlatform, platformsOf } from './registry-manifest.js';
import type { Descriptor } from './registry-manifest.js';
import { isLocalOnly, pullPolicy } from './registry-policy.js';
import { parseImageReference } from './reference.js';
import type { ImageReference } from './reference.js';
import type { ContainerDiskImage, ImageFiles, ImageStore } from './store.js';

/** Why an image could not be had; `BadImage` will not fix itself, the rest may. */
export type ImagePullFailure = RegistryFailure | 'NotPresent' | 'BadImage';

/** An image that could not be pulled or found; the message says what, why and what to do. */
export class ImagePullError extends Error {
  constructor(
    readonly failure: ImagePullFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImagePullError';
  }
}

/** A kubelet-style Event about a pull (`Pulling`, `Pulled`). */
export interface PullEvent {
  type: 'Normal';
  reason: 'Pulling' | 'Pulled';
  message: string;
}

/** What a VMI needs from an image. */
export interface ImageRequest {
  /** The reference as the VMI writes it. */
  image: string;
  /** `imagePullPolicy` as the VMI writes it; unset for the default. */
  pullPolicy?: string;
  credentials?: RegistryCredentials;
  /** The disk (a containerDisk) must be there: the single file under `/disk/`. */
  needsDisk: boolean;
  /** A kernel (a kernelBoot) must be there: at `kernelPath`, and the initrd at `initrdPath` when given. */
  needsKernel: boolean;
  /** A kernelBoot's files, as paths in the image; taken along when found even if not needed. */
  kernelPath?: string;
  initrdPath?: string;
  signal: AbortSignal;
  onEvent?: (event: PullEvent) => void;
}

/** The platform this node runs. */
const platform = { os: 'linux', architecture: 'amd64' };

/** Pulls images into one store; one per store, shared by every VMI of the node. */
export class ImagePuller {
  private readonly inFlight = new Map<string, SharedPull>();

  constructor(readonly store: ImageStore) {}

  /**
   * The image's files, from the store or pulled as the policy says.
   * Throws an ApiError (`BadRequest`) for a malformed reference, an
   * {@link ImagePullError} otherwise.
   */
  async ensure(request: ImageRequest): Promise<ContainerDiskImage> {
    const ref = parseImageReference(request.image);
    const stored = await this.store.resolve(ref.normalized);
    if (isLocalOnly(ref)) {
      if (stored !== undefined) return stored;
      throw new ImagePullError('NotPresent', `image "${request.image}" not found in the node's image store: images on "localhost/" are local to the node and never pulled; import it into the store, or push it to a registry and name that registry`);
    }
    let policy;
    try {
      policy = pullPolicy(ref, request.pullPolicy);
    } catch (err) {
      throw new ImagePullError('BadImage', err instanceof Error ? err.message : String(err), { cause: err });
    }
    const usable = stored !== undefined && missingFiles(stored, request) === undefined;
    if (usable && policy !== 'Always') return stored;
    if (policy === 'Never') {
      throw new ImagePullError('NotPresent', `image "${request.image}" is not in the node's image store${stored === undefined ? '' : ' with the files this VMI needs'} and its imagePullPolicy is Never: import it, or use IfNotPresent`);
    }
    request.onEvent?.({ type: 'Normal', reason: 'Pulling', message: `Pulling image "${request.image}"` });
    const started = Date.now();
    let result: PullResult;
    try {
      result = await this.shared(ref, request);
    } catch (err) {
      if (err instanceof RegistryError) throw new ImagePullError(err.failure, err.message, { cause: err });
      throw err;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(3);
    const message = result.downloaded ? `Successfully pulled image "${request.image}" in ${seconds}s. Image size: ${result.bytes} bytes.` : `Container image "${request.image}" already present on machine`;
    request.onEvent?.({ type: 'Normal', reason: 'Pulled', message });
    return result.image;
  }

  /** Joins the pull of the same image and paths, or starts one; it runs until every waiter has given up. */
  private async shared(ref: ImageReference, request: ImageRequest): Promise<PullResult> {
    const key = JSON.stringify([ref.normalized, request.kernelPath ?? '', request.initrdPath ?? '', request.needsDisk, request.needsKernel]);
    let pull = this.inFlight.get(key);
    if (pull === undefined) {
      const created = new SharedPull((signal) => this.pull(ref, { ...request, signal }));
      pull = created;
      this.inFlight.set(key, created);
      const forget = (): void => { this.inFlight.delete(key); };
      void created.done.then(forget, forget);
    }
    return pull.wait(request.signal);
  }

  private async pull(ref: ImageReference, request: ImageRequest): Promise<PullResult> {
    const client = new RegistryClient({ registry: ref.registry, repository: ref.repository, ...(request.credentials === undefined ? {} : { credentials: request.credentials }), signal: request.signal });
    const name = `${ref.registry}/${ref.repository}`;
    const top = await client.manifest(ref.digest ?? ref.tag ?? 'latest');
    const byDigest = `${name}@${top.digest}`;
    const known = await this.store.resolve(byDigest);
    if (known !== undefined && missingFiles(known, request) === undefined) {
      // Unchanged upstream: what the store has is the same content.
      const image = ref.digest === undefined ? await this.store.alias(ref.normalized, byDigest) : known;
      if (image !== undefined) return { image, downloaded: false, bytes: 0 };
    }
    const layers = await this.layersOf(client, top, request.image);
    await mkdir(join(this.store.root, 'tmp'), { recursive: true });
    const work = await mkdtemp(join(this.store.root, 'tmp', 'pull-'));
    try {
      const files: string[] = [];
      for (const [index, layer] of layers.entries()) {
        const file = join(work, `layer-${index}`);
        await client.blob(layer, file);
        files.push(file);
      }
      const paths = [request.kernelPath, request.initrdPath].filter((p): p is string => p !== undefined && p !== '');
      const found = await unpack(files, { staging: join(work, 'files'), paths, image: request.image });
      const chosen = chooseFiles(found, request);
      const image = await this.store.importFiles(byDigest, chosen);
      const tagged = ref.digest === undefined ? await this.store.alias(ref.normalized, byDigest) : image;
      return { image: tagged ?? image, downloaded: true, bytes: layers.reduce((sum, l) => sum + l.size, 0) };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /** The layers of the image a manifest names, through an index for this node's platform. */
  private async layersOf(client: RegistryClient, top: { body: Buffer; contentType: string | undefined }, image: string): Promise<Descriptor[]> {
    let manifest = parseFetched(top, image);
    if (manifest.kind === 'index') {
      const entry = pickPlatform(manifest.manifests, platform);
      if (entry === undefined) {
        throw new ImagePullError('NotFound', `image "${image}" has no manifest for ${platform.os}/${platform.architecture}; it offers ${platformsOf(manifest.manifests)}`);
      }
      manifest = parseFetched(await client.manifest(entry.digest), image);
      if (manifest.kind !== 'image') throw new ImagePullError('BadImage', `image "${image}": the ${platform.os}/${platform.architecture} entry of its index is another index, which is not allowed`);
    }
    for (const layer of manifest.layers) {
      if (layer.mediaType.endsWith('+zstd') || layer.mediaType.endsWith('.zstd')) {
        throw new ImagePullError('BadImage', `image "${image}" has a zstd-compressed layer (${layer.mediaType}), which this node cannot unpack; push it with gzip-compressed or uncompressed layers`);
      }
    }
    return manifest.layers;
  }
}

interface PullResult {
  image: ContainerDiskImage;
  downloaded: boolean;
  bytes: number;
}

function parseFetched(fetched: { body: Buffer; contentType: string | undefined }, image: string): ReturnType<typeof parseManifest> {
  try {
    return parseManifest(fetched.body, fetched.contentType);
  } catch (err) {
    if (err instanceof ManifestError) throw new ImagePullError('BadImage', `image "${image}": ${err.message}`, { cause: err });
    throw err;
  }
}

async function unpack(layers: string[], options: { staging: string; paths: string[]; image: string }): Promise<LayerFiles> {
  try {
    return await extractLayers(layers, options);
  } catch (err) {
    if (err instanceof LayerError) throw new ImagePullError('BadImage', `image "${options.image}": ${err.message}`, { cause: err });
    throw err;
  }
}

const layoutHelp = 'KubeVirt\'s containerDisk layout puts the disk (qcow2 or raw) as the only file in /disk/, e.g. "FROM scratch" + "ADD --chown=107:107 disk.qcow2 /disk/"';

/** The files to import from an unpacked image; throws when the VMI's need is not met. */
function chooseFiles(found: LayerFiles, request: ImageRequest): ImageFiles {
  const files: ImageFiles = {};
  if (found.diskNames.length > 1 && request.needsDisk) {
    throw new ImagePullError('BadImage', `image "${request.image}" has ${found.diskNames.length} files in /disk/ (${found.diskNames.join(', ')}), so its disk is ambiguous: ${layoutHelp}`);
  }
  const diskName = found.diskNames.length === 1 ? found.diskNames[0] : undefined;
  const disk = diskName === undefined ? undefined : found.file(`disk/${diskName}`);
  if (disk !== undefined) files.disk = disk;
  else if (request.needsDisk) throw new ImagePullError('BadImage', `image "${request.image}" has no file in /disk/, so it is not a containerDisk: ${layoutHelp}`);
  if (request.needsKernel && (request.kernelPath ?? '') === '') {
    throw new ImagePullError('BadImage', `image "${request.image}": kernelBoot.container.kernelPath is not set, so the kernel cannot be found in the image; set it to the kernel's path, e.g. /boot/vmlinuz`);
  }
  for (const [role, path] of [['kernel', request.kernelPath], ['initrd', request.initrdPath]] as const) {
    if (path === undefined || path === '') continue;
    const file = found.file(path);
    if (file !== undefined) files[role] = file;
    else if (request.needsKernel) throw new ImagePullError('BadImage', `image "${request.image}" has no file at ${path}, the kernelBoot ${role}Path: fix the path, or put the ${role} there`);
  }
  return files;
}

/** What `image` lacks for `request`, or undefined when it has it all. */
function missingFiles(image: ContainerDiskImage, request: Pick<ImageRequest, 'needsDisk' | 'needsKernel' | 'initrdPath'>): string | undefined {
  if (request.needsDisk && image.disk === undefined) return 'disk';
  if (request.needsKernel && image.kernel === undefined) return 'kernel';
  if (request.needsKernel && (request.initrdPath ?? '') !== '' && image.initrd === undefined) return 'initrd';
  return undefined;
}

/**
 * One pull and the callers waiting on it: each waiter can give up on its
 * own signal; the pull is aborted only when none is left.
 */
class SharedPull {
  readonly done: Promise<PullResult>;
  private readonly controller = new AbortController();
  private waiters = 0;

  constructor(run: (signal: AbortSignal) => Promise<PullResult>) {
    this.done = run(this.controller.signal);
    // Waiters see the outcome; this keeps an unobserved failure from being "unhandled".
    this.done.catch(() => undefined);
  }

  async wait(signal: AbortSignal): Promise<PullResult> {
    signal.throwIfAborted();
    this.waiters++;
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.done, aborted]);
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
      this.waiters--;
      if (this.waiters === 0 && signal.aborted) this.controller.abort(signal.reason);
    }
  }
}

const pullers = new WeakMap<ImageStore, ImagePuller>();

/** The puller of `store`: one per store, so every VMI's pulls of an image share one download. */
export function pullerFor(store: ImageStore): ImagePuller {
  let puller = pullers.get(store);
  if (puller === undefined) {
    puller = new ImagePuller(store);
    pullers.set(store, puller);
  }
  return puller;
}
