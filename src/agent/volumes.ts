/**
 * Turns a VMI's `spec.volumes` into files QEMU can open, in the VMI's
 * directory: a qcow2 overlay per containerDisk (the image stays shared and
 * untouched), ISOs for cloud-init and config volumes, sparse qcow2 files
 * for emptyDisks, host files for hostDisks, and the node-local file of
 * the PersistentVolume bound to a persistentVolumeClaim or dataVolume
 * (opened directly, no overlay: the data must persist). Also resolves the
 * kernelBoot image's kernel and initrd. containerDisk and kernelBoot images
 * come from the node's image store, pulled from their registry first when
 * the pull policy says so (`images/registry.ts`).
 */
import { constants } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KObject } from '../api/object.js';
import { ApiError } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import { booleanAt, has, recordAt, recordsAt, stringAt } from '../api/kinds/read.js';
import { parseQuantity } from '../api/validation/quantity.js';
import { volumeSourceTypes } from '../api/validation/vmi-volumes.js';
import type { Client } from '../client/index.js';
import type { ContainerDiskImage, ImagePuller, ImageStore, PullEvent, RegistryCredentials } from './images/index.js';
import { ImagePullError, credentialsFromDockerConfig, parseImageReference, pullerFor } from './images/index.js';
import { resources } from '../client/index.js';
import { encryptionSecretKey, importInProgress, localVolumeOf, volumeEncryptionOf } from '../storage/local/index.js';
import type { VolumeEncryption } from '../storage/local/index.js';
import type { VmiPaths } from './qemu/cmdline.js';
import { cloudInitDisk } from './cloud-init.js';
import { configDisk } from './config-volumes.js';
import { buildIso } from './iso.js';
import { runTool } from '../host/run-tool.js';
import { VolumeError } from './volume-error.js';

/** One disk file handed to the QEMU command line. */
export type DiskFile = VmiPaths['disks'][string];

/** The disk files by volume name, and the kernelBoot files. */
export interface PreparedVolumes {
  disks: Record<string, DiskFile>;
  /** The keys of encrypted volumes (LUKS passphrases), by volume name; the launcher seals them for QEMU. */
  keys?: Record<string, Buffer>;
  kernel?: string;
  initrd?: string;
}

/** What preparing the volumes needs. */
export interface PrepareVolumesOptions {
  client: Client;
  images: ImageStore;
  /** Where the VMI's own disk files go. */
  disksDir: string;
  signal: AbortSignal;
  /** Pulls images into `images`; default the store's shared puller. */
  puller?: ImagePuller;
  /** Called with the kubelet-style `Pulling`/`Pulled` Events of image pulls, to record them on the VMI. */
  onPullEvent?: (event: PullEvent) => void;
  /** This node: a claim's volume must be pinned to it. Unset, the check is skipped. */
  nodeName?: string;
  /** Files that stand in for claims, by VMI volume name: a migration target's fresh copies, filled by the source's mirror. */
  claimFiles?: Record<string, ClaimFile>;
}

/** A claim's volume file on this node. */
export interface ClaimFile {
  path: string;
  format: 'raw' | 'qcow2';
}

/** Volume types this agent serves. */
type SupportedSource = 'containerDisk' | 'cloudInitNoCloud' | 'cloudInitConfigDrive' | 'emptyDisk' | 'hostDisk' | 'configMap' | 'secret' | 'serviceAccount' | 'persistentVolumeClaim' | 'dataVolume';
const supported: ReadonlySet<string> = new Set<SupportedSource>([
  'containerDisk',
  'cloudInitNoCloud',
  'cloudInitConfigDrive',
  'emptyDisk',
  'hostDisk',
  'configMap',
  'secret',
  'serviceAccount',
  'persistentVolumeClaim',
  'dataVolume',
]);

function isSupported(source: string): source is SupportedSource {
  return supported.has(source);
}

/** Prepares every volume of `vmi`; throws a {@link VolumeError} for the first one that cannot be. */
export async function prepareVolumes(vmi: KObject, options: PrepareVolumesOptions): Promise<PreparedVolumes> {
  const prepared: PreparedVolumes = { disks: {} };
  for (const volume of recordsAt(vmi, 'spec', 'volumes')) {
    const name = stringAt(volume, 'name') ?? '';
    const source = volumeSourceTypes.find((t) => has(volume, t));
    if (source === undefined) throw new VolumeError('Invalid', name, `volume "${name}" has no source`);
    if (!isSupported(source)) {
      throw new VolumeError('Invalid', name, `volume "${name}" is a ${source} volume, which this node agent does not support yet; supported are ${[...supported].join(', ')}`);
    }
    const { key, ...disk } = await prepareOne(vmi, volume, { name, source }, options);
    prepared.disks[name] = { ...disk, directIo: await takesDirectIo(dirname(disk.file)) };
    if (key !== undefined) prepared.keys = { ...prepared.keys, [name]: key };
  }
  const kernelBoot = await resolveKernelBoot(vmi, options);
  if (kernelBoot.kernel !== undefined) prepared.kernel = kernelBoot.kernel;
  if (kernelBoot.initrd !== undefined) prepared.initrd = kernelBoot.initrd;
  return prepared;
}

async function prepareOne(vmi: KObject, volume: Record<string, unknown>, which: { name: string; source: SupportedSource }, options: PrepareVolumesOptions): Promise<DiskFile & { key?: Buffer }> {
  const { name, source } = which;
  // Volume names are DNS labels (admission checks), so they are safe file names.
  const base = join(options.disksDir, name);
  switch (source) {
    case 'containerDisk': {
      const resolved = await resolveImage(vmi, { source: recordAt(volume, 'containerDisk') ?? {}, volume: name, needsDisk: true, needsKernel: false, ...alsoKernelBoot(vmi, volume) }, options);
      if (resolved.disk === undefined || resolved.diskFormat === undefined) {
        throw new VolumeError('Invalid', name, `volume "${name}": image "${resolved.image}" in the node's image store has no disk (it is a kernel-only image), so it cannot be a containerDisk`);
      }
      const file = `${base}.qcow2`;
      // A copy-on-write overlay, so the shared image itself is never written.
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', resolved.diskFormat, '-b', resolved.disk, file], { signal: options.signal });
      return { name, file, format: 'qcow2' };
    }
    case 'cloudInitNoCloud':
    case 'cloudInitConfigDrive':
    case 'configMap':
    case 'secret':
    case 'serviceAccount': {
      const cloudInit = source === 'cloudInitNoCloud' || source === 'cloudInitConfigDrive';
      const disk = cloudInit ? await cloudInitDisk(vmi, volume, source, options.client) : await configDisk(vmi, volume, source, options.client);
      const file = `${base}.iso`;
      await buildIso({ output: file, volumeId: disk.volumeId, files: disk.files, signal: options.signal });
      return { name, file, format: 'raw', readOnly: true };
    }
    case 'emptyDisk': {
      const bytes = capacityOf(volume, 'emptyDisk', name);
      const file = `${base}.qcow2`;
      await runTool('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(bytes)], { signal: options.signal });
      return { name, file, format: 'qcow2' };
    }
    case 'hostDisk':
      return { name, file: await ensureHostDisk(volume, name, options.signal), format: 'raw' };
    case 'persistentVolumeClaim':
    case 'dataVolume': {
      const claimName = (source === 'dataVolume' ? stringAt(volume, 'dataVolume', 'name') : stringAt(volume, 'persistentVolumeClaim', 'claimName')) ?? '';
      const copy = options.claimFiles?.[name];
      if (copy !== undefined) return { name, file: copy.path, format: copy.format };
      const local = await resolveClaim(vmi, { volume: name, claimName, viaDataVolume: source === 'dataVolume' }, options);
      const readOnly = booleanAt(volume, 'persistentVolumeClaim', 'readOnly') === true;
      return { name, file: local.path, format: local.format, ...(readOnly ? { readOnly } : {}), ...(local.key === undefined ? {} : { key: local.key }) };
    }
  }
}

/**
 * The node-local file of the volume bound to a claim. A claim that is
 * missing, not bound yet, or still being imported into is retried (the
 * VMI shows VolumeNotReady); a volume on another node fails the VMI.
 */
async function resolveClaim(vmi: KObject, use: { volume: string; claimName: string; viaDataVolume: boolean }, options: PrepareVolumesOptions): Promise<{ path: string; format: 'raw' | 'qcow2'; key?: Buffer }> {
  const namespace = vmi.metadata.namespace ?? 'default';
  const { volume, claimName } = use;
  const notReady = (why: string): VolumeError => new VolumeError('NotReady', volume, `volume "${volume}": ${why}; the VMI starts once it is`);
  const pvc = await options.client.tryGet(resources.persistentVolumeClaims, namespace, claimName);
  if (pvc === undefined) {
    const what = use.viaDataVolume ? `DataVolume "${claimName}" has no PersistentVolumeClaim in namespace "${namespace}" yet` : `PersistentVolumeClaim "${claimName}" not found in namespace "${namespace}"`;
    throw new VolumeError('NotReady', volume, `volume "${volume}": ${what}; the VMI starts once it exists`);
  }
  const importing = importInProgress(pvc);
  if (importing !== undefined) throw notReady(`PersistentVolumeClaim "${claimName}" is still being populated (import phase ${importing})`);
  const volumeName = stringAt(pvc, 'spec', 'volumeName') ?? '';
  if (volumeName === '') throw notReady(`PersistentVolumeClaim "${claimName}" is not bound to a volume yet (phase ${stringAt(pvc, 'status', 'phase') ?? 'Pending'})`);
  const pv = await options.client.tryGet(resources.persistentVolumes, undefined, volumeName);
  if (pv === undefined) throw notReady(`PersistentVolume "${volumeName}" of claim "${claimName}" does not exist yet`);
  let local;
  try {
    local = localVolumeOf(pvc, pv);
  } catch (err) {
    throw new VolumeError('Invalid', volume, `volume "${volume}": ${err instanceof Error ? err.message : String(err)}; this node agent serves only volumes of the vireo.io/local provisioner`, { cause: err });
  }
  if (options.nodeName !== undefined && local.node !== options.nodeName) {
    throw new VolumeError('Invalid', volume, `volume "${volume}": PersistentVolume "${volumeName}" of claim "${claimName}" is on node "${local.node}", not on this node "${options.nodeName}"; a VMI using it must be scheduled to "${local.node}"`);
  }
  const exists = await stat(local.path).then((s) => s.isFile(), () => false);
  if (!exists) throw new VolumeError('Invalid', volume, `volume "${volume}": the file ${local.path} of PersistentVolume "${volumeName}" is missing on this node; the volume's data is lost, so delete and recreate claim "${claimName}"`);
  const encryption = volumeEncryptionOf(pv);
  if (encryption === undefined) return { path: local.path, format: local.format };
  const key = await encryptionKey(encryption, { volume, volumeName, client: options.client });
  return { path: local.path, format: local.format, key };
}

/**
 * The key of an encrypted volume, from the Secret its PersistentVolume
 * names; a missing Secret (or key) makes the VMI wait, as a launcher pod
 * waits for a missing Secret volume.
 */
async function encryptionKey(encryption: VolumeEncryption, which: { volume: string; volumeName: string; client: Client }): Promise<Buffer> {
  const { namespace, name } = encryption.secret;
  const wait = (why: string): VolumeError =>
    new VolumeError('NotReady', which.volume, `volume "${which.volume}": PersistentVolume "${which.volumeName}" is encrypted (LUKS) with the key in Secret ${namespace}/${name}, which ${why}; the VMI starts once it does`);
  const secret = await which.client.tryGet(resources.secrets, namespace, name);
  if (secret === undefined) throw wait('does not exist');
  const encoded = stringAt(secret, 'data', encryptionSecretKey);
  const key = encoded === undefined ? undefined : Buffer.from(encoded, 'base64');
  if (key === undefined || key.length === 0) throw wait(`has no "${encryptionSecretKey}" entry`);
  return key;
}

/** Which image to resolve and what the VMI needs from it. */
interface ImageUse {
  /** `containerDisk` or `kernelBoot.container`: image, imagePullPolicy, imagePullSecret. */
  source: Record<string, unknown>;
  /** The volume name errors carry (`kernelBoot` for the kernel). */
  volume: string;
  needsDisk: boolean;
  needsKernel: boolean;
  kernelPath?: string;
  initrdPath?: string;
}

/**
 * The image from the node's store, pulled first as its pull policy says.
 * A missing or unpullable image is retried (ErrImagePull); a malformed
 * reference or an image without the files the VMI needs fails the VMI.
 */
async function resolveImage(vmi: KObject, use: ImageUse, options: PrepareVolumesOptions): Promise<ContainerDiskImage> {
  const image = stringAt(use.source, 'image') ?? '';
  const secret = stringAt(use.source, 'imagePullSecret') ?? '';
  const pull = await pullCredentials(vmi, { secret, image, volume: use.volume }, options.client);
  const policy = stringAt(use.source, 'imagePullPolicy');
  try {
    return await (options.puller ?? pullerFor(options.images)).ensure({
      image,
      needsDisk: use.needsDisk,
      needsKernel: use.needsKernel,
      signal: options.signal,
      ...(policy === undefined ? {} : { pullPolicy: policy }),
      ...(pull.credentials === undefined ? {} : { credentials: pull.credentials }),
      ...(use.kernelPath === undefined ? {} : { kernelPath: use.kernelPath }),
      ...(use.initrdPath === undefined ? {} : { initrdPath: use.initrdPath }),
      ...(options.onPullEvent === undefined ? {} : { onEvent: options.onPullEvent }),
    });
  } catch (err) {
    if (err instanceof ApiError && err.isUserError) throw new VolumeError('Invalid', use.volume, `volume "${use.volume}": ${err.message}`, { cause: err });
    if (!(err instanceof ImagePullError)) throw err;
    const note = err.failure === 'Unauthorized' && pull.note !== undefined ? ` (${pull.note})` : '';
    throw new VolumeError(err.failure === 'BadImage' ? 'Invalid' : 'ImagePull', use.volume, `${err.message}${note}`, { cause: err });
  }
}

/**
 * The credentials of the `imagePullSecret` for the image's registry. As the
 * kubelet does, a Secret that is missing or names no credentials for the
 * registry means an anonymous pull, with a note for the error if the
 * registry then refuses it; a malformed one waits to be fixed.
 */
async function pullCredentials(vmi: KObject, which: { secret: string; image: string; volume: string }, client: Client): Promise<{ credentials?: RegistryCredentials; note?: string }> {
  if (which.secret === '') return {};
  const namespace = vmi.metadata.namespace ?? 'default';
  const obj = await client.tryGet(resources.secrets, namespace, which.secret);
  if (obj === undefined) return { note: `imagePullSecret "${which.secret}" was not found in namespace "${namespace}"` };
  const bad = (why: string): VolumeError =>
    new VolumeError('NotReady', which.volume, `volume "${which.volume}": imagePullSecret "${which.secret}" in namespace "${namespace}" ${why}; the VMI starts once it is fixed`);
  const type = stringAt(obj, 'type');
  const encoded = stringAt(obj, 'data', '.dockerconfigjson');
  if (type !== 'kubernetes.io/dockerconfigjson' || encoded === undefined) throw bad(`is not a kubernetes.io/dockerconfigjson Secret with a .dockerconfigjson key (type ${JSON.stringify(type ?? '')})`);
  let registry: string;
  try {
    registry = parseImageReference(which.image).registry;
  } catch {
    return {}; // The pull reports the malformed reference.
  }
  try {
    const credentials = credentialsFromDockerConfig(Buffer.from(encoded, 'base64').toString('utf8'), registry);
    return credentials === undefined ? { note: `imagePullSecret "${which.secret}" has no credentials for ${registry}` } : { credentials };
  } catch (err) {
    throw bad(err instanceof Error ? err.message : String(err));
  }
}

/** The kernelBoot paths when `volume`'s image is also the kernelBoot image, so one pull serves both. */
function alsoKernelBoot(vmi: KObject, volume: Record<string, unknown>): Pick<ImageUse, 'kernelPath' | 'initrdPath'> {
  const container = recordAt(vmi, 'spec', 'domain', 'firmware', 'kernelBoot', 'container');
  const kernelImage = stringAt(container, 'image');
  const image = stringAt(volume, 'containerDisk', 'image');
  if (kernelImage === undefined || image === undefined || !sameImage(kernelImage, image)) return {};
  return kernelPaths(container ?? {});
}

function kernelPaths(container: Record<string, unknown>): Pick<ImageUse, 'kernelPath' | 'initrdPath'> {
  const out: Pick<ImageUse, 'kernelPath' | 'initrdPath'> = {};
  const kernelPath = stringAt(container, 'kernelPath') ?? '';
  const initrdPath = stringAt(container, 'initrdPath') ?? '';
  if (kernelPath !== '') out.kernelPath = kernelPath;
  if (initrdPath !== '') out.initrdPath = initrdPath;
  return out;
}

function sameImage(a: string, b: string): boolean {
  try {
    return parseImageReference(a).normalized === parseImageReference(b).normalized;
  } catch {
    return false;
  }
}

function capacityOf(volume: Record<string, unknown>, source: string, name: string): number {
  const raw = volume[source];
  const capacity = isPlainObject(raw) ? raw.capacity : undefined;
  const bytes = parseQuantity(capacity);
  if (bytes === undefined || bytes <= 0) {
    throw new VolumeError('Invalid', name, `volume "${name}": ${source}.capacity ${capacity === undefined ? 'is missing' : `${JSON.stringify(capacity)} is not a positive size`}; give it like "1Gi"`);
  }
  return Math.ceil(bytes);
}

/** KubeVirt's hostDisk: `Disk` needs the file, `DiskOrCreate` makes a sparse raw file of `capacity`. */
async function ensureHostDisk(volume: Record<string, unknown>, name: string, signal: AbortSignal): Promise<string> {
  const path = stringAt(volume, 'hostDisk', 'path') ?? '';
  const type = stringAt(volume, 'hostDisk', 'type') ?? 'Disk';
  if (!path.startsWith('/')) throw new VolumeError('Invalid', name, `volume "${name}": hostDisk.path ${JSON.stringify(path)} must be an absolute path on the node`);
  const exists = await stat(path).then((s) => s.isFile(), () => false);
  if (exists) return path;
  if (type !== 'DiskOrCreate') {
    throw new VolumeError('Invalid', name, `volume "${name}": hostDisk ${path} does not exist on the node; create it, or use type DiskOrCreate with a capacity`);
  }
  const bytes = capacityOf(volume, 'hostDisk', name);
  await mkdir(dirname(path), { recursive: true });
  await runTool('qemu-img', ['create', '-q', '-f', 'raw', path, String(bytes)], { signal });
  return path;
}

/** The kernel and initrd of `spec.domain.firmware.kernelBoot.container.image`, from the image store. */
async function resolveKernelBoot(vmi: KObject, options: PrepareVolumesOptions): Promise<{ kernel?: string; initrd?: string }> {
  const container = recordAt(vmi, 'spec', 'domain', 'firmware', 'kernelBoot', 'container');
  const image = stringAt(container, 'image');
  if (container === undefined || image === undefined) return {};
  const paths = kernelPaths(container);
  const resolved = await resolveImage(vmi, { source: container, volume: 'kernelBoot', needsDisk: false, needsKernel: true, ...paths }, options);
  if (resolved.kernel === undefined) {
    throw new VolumeError('Invalid', 'kernelBoot', `image "${image}" has no kernel in the node's image store, so it cannot serve spec.domain.firmware.kernelBoot`);
  }
  const wantsInitrd = paths.initrdPath !== undefined;
  if (wantsInitrd && resolved.initrd === undefined) {
    throw new VolumeError('Invalid', 'kernelBoot', `image "${image}" has no initrd in the node's image store, but kernelBoot.container.initrdPath asks for one`);
  }
  const out: { kernel?: string; initrd?: string } = { kernel: resolved.kernel };
  if (resolved.initrd !== undefined) out.initrd = resolved.initrd;
  return out;
}

const directIoByDevice = new Map<number, Promise<boolean>>();

/**
 * Whether files in `dir` open with O_DIRECT (tmpfs, for one, refuses): the
 * command line picks KubeVirt's default cache mode from it. Probed once
 * per filesystem.
 */
async function takesDirectIo(dir: string): Promise<boolean> {
  const { dev } = await stat(dir);
  let known = directIoByDevice.get(dev);
  if (known === undefined) {
    known = probeDirectIo(dir);
    directIoByDevice.set(dev, known);
  }
  return known;
}

async function probeDirectIo(dir: string): Promise<boolean> {
  const probe = join(dir, `.direct-io-probe-${process.pid}`);
  try {
    const handle = await open(probe, constants.O_CREAT | constants.O_WRONLY | constants.O_DIRECT, 0o600);
    await handle.close();
    return true;
  } catch {
    return false;
  } finally {
    await rm(probe, { force: true });
  }
}
