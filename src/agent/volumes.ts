/**
 * Turns a VMI's `spec.volumes` into files QEMU can open, in the VMI's
 * directory: a qcow2 overlay per containerDisk (the image stays shared and
 * untouched), ISOs for cloud-init and config volumes, sparse qcow2 files
 * for emptyDisks, and host files for hostDisks. Also resolves the
 * kernelBoot image's kernel and initrd.
 */
import { constants } from 'node:fs';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { KObject } from '../api/object.js';
import { ApiError } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';
import { has, recordsAt, stringAt } from '../api/kinds/read.js';
import { parseQuantity } from '../api/validation/quantity.js';
import { volumeSourceTypes } from '../api/validation/vmi-volumes.js';
import type { Client } from '../client/index.js';
import type { ContainerDiskImage, ImageStore } from './images/index.js';
import type { VmiPaths } from './qemu/cmdline.js';
import { cloudInitDisk } from './cloud-init.js';
import { configDisk } from './config-volumes.js';
import { buildIso } from './iso.js';
import { runTool } from './run-tool.js';
import { VolumeError } from './volume-error.js';

/** One disk file handed to the QEMU command line. */
export type DiskFile = VmiPaths['disks'][string];

/** The disk files by volume name, and the kernelBoot files. */
export interface PreparedVolumes {
  disks: Record<string, DiskFile>;
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
}

/** Volume types this agent serves; the rest come with later issues (PVCs, DataVolumes: storage). */
type SupportedSource = 'containerDisk' | 'cloudInitNoCloud' | 'cloudInitConfigDrive' | 'emptyDisk' | 'hostDisk' | 'configMap' | 'secret' | 'serviceAccount';
const supported: ReadonlySet<string> = new Set<SupportedSource>(['containerDisk', 'cloudInitNoCloud', 'cloudInitConfigDrive', 'emptyDisk', 'hostDisk', 'configMap', 'secret', 'serviceAccount']);

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
    const disk = await prepareOne(vmi, volume, { name, source }, options);
    prepared.disks[name] = { ...disk, directIo: await takesDirectIo(dirname(disk.file)) };
  }
  const kernelBoot = await resolveKernelBoot(vmi, options);
  if (kernelBoot.kernel !== undefined) prepared.kernel = kernelBoot.kernel;
  if (kernelBoot.initrd !== undefined) prepared.initrd = kernelBoot.initrd;
  return prepared;
}

async function prepareOne(vmi: KObject, volume: Record<string, unknown>, which: { name: string; source: SupportedSource }, options: PrepareVolumesOptions): Promise<DiskFile> {
  const { name, source } = which;
  // Volume names are DNS labels (admission checks), so they are safe file names.
  const base = join(options.disksDir, name);
  switch (source) {
    case 'containerDisk': {
      const image = stringAt(volume, 'containerDisk', 'image') ?? '';
      const resolved = await resolveImage(options.images, image, name);
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
  }
}

/** The image from the node's store; a missing one is retried (ErrImagePull), a malformed reference fails the VMI. */
async function resolveImage(images: ImageStore, image: string, volume: string): Promise<ContainerDiskImage> {
  let resolved: ContainerDiskImage | undefined;
  try {
    resolved = await images.resolve(image);
  } catch (err) {
    if (err instanceof ApiError && err.isUserError) throw new VolumeError('Invalid', volume, `volume "${volume}": ${err.message}`, { cause: err });
    throw err;
  }
  if (resolved === undefined) {
    throw new VolumeError('ImagePull', volume, `image "${image}" not found in the node's image store: import it into the store, or push it to a registry the node pulls from`);
  }
  return resolved;
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
  const container = ['spec', 'domain', 'firmware', 'kernelBoot', 'container'];
  const image = stringAt(vmi, ...container, 'image');
  if (image === undefined) return {};
  const resolved = await resolveImage(options.images, image, 'kernelBoot');
  if (resolved.kernel === undefined) {
    throw new VolumeError('Invalid', 'kernelBoot', `image "${image}" has no kernel in the node's image store, so it cannot serve spec.domain.firmware.kernelBoot`);
  }
  const wantsInitrd = (stringAt(vmi, ...container, 'initrdPath') ?? '') !== '';
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
