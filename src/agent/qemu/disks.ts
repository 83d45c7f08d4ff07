/**
 * `domain.devices.disks`: each disk's target (disk, cdrom, lun), bus and
 * options, checked against its volume and the file the agent prepared.
 * `disk-devices.ts` turns the result into `-blockdev`/`-device` arguments.
 */
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { invalidDomain, unpreparedInput } from './errors.js';
import type { SpecNode } from './spec-reader.js';
import type { DiskSource } from './types.js';

export type DiskTarget = 'disk' | 'cdrom' | 'lun';
export type DiskBus = 'virtio' | 'sata' | 'scsi' | 'usb';
export type CacheMode = 'none' | 'writethrough' | 'writeback';
export type ErrorPolicy = 'stop' | 'ignore' | 'report' | 'enospace';

/** What planning one disk reads: the spec, the prepared files, and where warnings go. */
export type DiskContext = Pick<BuildContext, 'spec' | 'paths' | 'warnings'>;

/** One disk, fully defaulted. */
export interface DiskPlan {
  readonly node: SpecNode;
  readonly name: string;
  readonly index: number;
  readonly target: DiskTarget;
  readonly bus: DiskBus;
  /** Undefined for a CD-ROM drive with no volume (an empty tray). */
  readonly source: DiskSource | undefined;
  readonly readOnly: boolean;
  readonly cache: CacheMode;
  readonly io: 'native' | 'threads' | undefined;
  readonly errorPolicy: ErrorPolicy;
  readonly bootIndex: number | undefined;
  readonly serial: string | undefined;
  readonly shareable: boolean;
  readonly dedicatedIoThread: boolean;
  readonly blockSize: { logical: number; physical: number } | undefined;
  /** A hotplugged disk's own format node name (boot-time disks are `disk<index>`). */
  readonly nodeName?: string;
}

const buses = ['virtio', 'sata', 'scsi', 'usb'] as const;
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
// q35's built-in AHCI controller has six ports.
export const sataPorts = 6;

function targetOf(disk: SpecNode): { target: DiskTarget; device: SpecNode } {
  const set = (['disk', 'cdrom', 'lun'] as const).filter((target) => disk.get(target).present);
  if (set.length > 1) throw invalidDomain(disk.path, `set only one of disk, cdrom and lun (found ${set.join(', ')})`);
  const target = set[0] ?? 'disk';
  return { target, device: disk.get(target) };
}

function busOf(target: DiskTarget, device: SpecNode): DiskBus {
  const fallback: DiskBus = target === 'disk' ? 'virtio' : target === 'cdrom' ? 'sata' : 'scsi';
  const bus = device.get('bus').oneOf(buses) ?? fallback;
  if (target === 'cdrom' && (bus === 'virtio' || bus === 'usb')) throw invalidDomain(device.get('bus').path, `a cdrom cannot sit on the ${bus} bus: use sata or scsi`);
  if (target === 'lun' && bus !== 'scsi') throw invalidDomain(device.get('bus').path, 'a lun passes SCSI commands through, so its bus must be scsi');
  return bus;
}

function sourceOf(ctx: DiskContext, name: string, target: DiskTarget, node: SpecNode): DiskSource | undefined {
  const hasVolume = ctx.spec.get('volumes').items().some((volume) => volume.get('name').value === name);
  const source = Object.hasOwn(ctx.paths.disks, name) ? ctx.paths.disks[name] : undefined;
  if (source !== undefined) return source;
  if (hasVolume) throw unpreparedInput(node.path, `volume "${name}" has no prepared file (VmiPaths.disks["${name}"])`);
  if (target === 'cdrom') return undefined;
  throw invalidDomain(`${node.path}.name`, `no volume is named "${name}": every disk needs a volume of the same name`);
}

function cacheOf(disk: SpecNode, source: DiskSource | undefined, shareable: boolean): CacheMode {
  const node = disk.get('cache');
  const asked = node.oneOf(['none', 'writethrough', 'writeback'] as const);
  if (shareable && asked !== undefined && asked !== 'none') throw invalidDomain(node.path, `a shareable disk needs cache "none", not "${asked}"`);
  if ((asked === 'none' || shareable) && source?.directIo === false) {
    throw invalidDomain(node.path, `cache "none" needs direct I/O, which the file system holding ${source.file} does not support: use "writethrough"`);
  }
  // KubeVirt picks `none` where direct I/O works and `writethrough` elsewhere.
  return asked ?? (shareable || source?.directIo === true ? 'none' : 'writethrough');
}

function blockSizeOf(ctx: DiskContext, disk: SpecNode): DiskPlan['blockSize'] {
  const blockSize = disk.get('blockSize');
  if (blockSize.get('matchVolume').present) warn(ctx, blockSize.get('matchVolume'), 'matching the volume\'s block size is not supported yet; the default (512 bytes) is used');
  const custom = blockSize.get('custom');
  if (!custom.present) return undefined;
  const size = (key: string): number => {
    const value = custom.get(key).integer(512, 2 ** 21);
    if (value === undefined || (value & (value - 1)) !== 0) throw invalidDomain(custom.get(key).path, 'must be a power of two between 512 and 2097152');
    return value;
  };
  const logical = size('logical');
  const physical = size('physical');
  if (physical < logical) throw invalidDomain(custom.get('physical').path, `the physical block size (${physical}) cannot be smaller than the logical one (${logical})`);
  return { logical, physical };
}

export function planDisk(ctx: DiskContext, disk: SpecNode, index: number, nodeName?: string): DiskPlan {
  const name = disk.get('name').string();
  if (name === undefined || !namePattern.test(name)) throw invalidDomain(disk.get('name').path, 'every disk needs a name of letters, digits, ".", "_" or "-"');
  const { target, device } = targetOf(disk);
  const bus = busOf(target, device);
  const source = sourceOf(ctx, name, target, disk);
  const shareable = disk.get('shareable').boolean() ?? false;
  const cache = cacheOf(disk, source, shareable);
  const io = disk.get('io').oneOf(['native', 'threads'] as const) ?? (cache === 'none' && source?.blockDevice === true ? 'native' : undefined);
  if (io === 'native' && cache !== 'none') throw invalidDomain(disk.get('io').path, `io "native" needs cache "none" (the disk's cache is "${cache}")`);
  const readOnly = (device.get('readonly').boolean() ?? target === 'cdrom') || source?.readOnly === true;
  const dedicatedIoThread = disk.get('dedicatedIOThread').boolean() ?? false;
  if (dedicatedIoThread && bus !== 'virtio') warn(ctx, disk.get('dedicatedIOThread'), 'only virtio disks have I/O threads');
  if (device.get('pciAddress').present) warn(ctx, device.get('pciAddress'), 'fixed PCI addresses are not supported yet; QEMU assigns one');
  if (device.get('reservation').boolean() === true) warn(ctx, device.get('reservation'), 'SCSI persistent reservations need a pr-helper, not supported yet');
  if (disk.get('changedBlockTracking').present) warn(ctx, disk.get('changedBlockTracking'), 'not supported yet');
  if (device.get('tray').string() === 'open') warn(ctx, device.get('tray'), 'QEMU starts with the tray closed');
  return {
    node: disk,
    name,
    index,
    target,
    bus,
    source,
    readOnly,
    cache,
    io,
    errorPolicy: disk.get('errorPolicy').oneOf(['stop', 'ignore', 'report', 'enospace'] as const) ?? 'stop',
    bootIndex: disk.get('bootOrder').integer(1, 2 ** 31 - 1),
    serial: disk.get('serial').string(),
    shareable,
    dedicatedIoThread: dedicatedIoThread && bus === 'virtio',
    blockSize: blockSizeOf(ctx, disk),
    ...(nodeName === undefined ? {} : { nodeName }),
  };
}

/** Every disk of the VMI, checked and defaulted, in spec order. */
export function planDisks(ctx: BuildContext): DiskPlan[] {
  const plans = ctx.domain.get('devices').get('disks').items().map((disk, index) => planDisk(ctx, disk, index));
  const seenNames = new Set<string>();
  const seenBoot = new Map<number, string>();
  for (const plan of plans) {
    if (seenNames.has(plan.name)) throw invalidDomain(`${plan.node.path}.name`, `another disk is already named "${plan.name}"`);
    seenNames.add(plan.name);
    if (plan.bootIndex !== undefined) {
      const other = seenBoot.get(plan.bootIndex);
      if (other !== undefined) throw invalidDomain(`${plan.node.path}.bootOrder`, `boot order ${plan.bootIndex} is already used by disk "${other}"`);
      seenBoot.set(plan.bootIndex, plan.name);
    }
  }
  const sata = plans.filter((plan) => plan.bus === 'sata');
  const extra = sata[sataPorts];
  if (extra !== undefined) throw invalidDomain(extra.node.path, `a q35 machine has ${sataPorts} SATA ports and this is SATA disk number ${sata.length}: move some disks to virtio or scsi`);
  return plans;
}
