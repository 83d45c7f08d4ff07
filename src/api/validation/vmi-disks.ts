/**
 * Disk checks of a VirtualMachineInstance spec, as KubeVirt's
 * `storage/admitters/disks.go` and `validateBootOrder` make them: names,
 * targets, buses, tuning values, the disk-to-volume mapping and boot order.
 */
import type { FieldError } from '../errors.js';
import { isDNS1123Label, quote } from '../names.js';
import { booleanAt, has, numberAt, recordAt, recordsAt, stringAt } from '../kinds/read.js';
import { duplicate, invalid, notSupported } from './field-error.js';

const targetTypes = ['disk', 'lun', 'cdrom'] as const;
const supportedBuses = ['virtio', 'sata', 'scsi', 'usb'];
const serialRe = /^[A-Za-z0-9_.+-]+$/;

/** Checks `<path>.domain.devices.disks` against each other and against `<path>.volumes`. */
export function validateDisks(path: string, spec: Record<string, unknown>): FieldError[] {
  const disks = recordsAt(spec, 'domain', 'devices', 'disks');
  const volumes = new Map(recordsAt(spec, 'volumes').map((v) => [stringAt(v, 'name') ?? '', v]));
  const errors: FieldError[] = [];
  const firstIndexByName = new Map<string, number>();
  disks.forEach((disk, i) => {
    const p = `${path}.domain.devices.disks[${i}]`;
    const name = stringAt(disk, 'name') ?? '';
    const earlier = firstIndexByName.get(name);
    if (earlier !== undefined) {
      errors.push(
        duplicate(`${p}.name`, `${p} and ${path}.domain.devices.disks[${earlier}] must not have the same name ${quote(name)}: a disk is matched to its volume by name; rename one of them`),
      );
    } else firstIndexByName.set(name, i);
    for (const message of isDNS1123Label(name)) {
      errors.push(invalid(`${p}.name`, `disk name ${quote(name)} is not a valid device name: ${message}`));
    }
    errors.push(...validateTarget(p, disk));
    errors.push(...validateTuning(p, disk));
    const volume = volumes.get(name);
    if (volume === undefined) {
      // An empty CD-ROM tray is allowed: declarative hotplug inserts media later.
      if (!has(disk, 'cdrom')) {
        errors.push(
          invalid(`${p}.name`, `disk ${quote(name)} has no volume: each disk is backed by the volume of the same name in ${path}.volumes; add a volume named ${quote(name)} or rename the disk`),
        );
      }
    } else if (has(disk, 'lun') && !has(volume, 'persistentVolumeClaim') && !has(volume, 'dataVolume')) {
      errors.push(
        invalid(`${p}.lun`, `${p}.lun can only be mapped to a DataVolume or PersistentVolumeClaim volume: a LUN passes a block device through, which other volume types do not provide; use disk: {} instead`),
      );
    }
  });
  return errors;
}

function validateTarget(p: string, disk: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const targets = targetTypes.filter((t) => has(disk, t));
  if (targets.length > 1) {
    errors.push(invalid(p, `${p} can only have a single target type defined, but sets ${targets.join(' and ')}; keep one of disk, lun or cdrom`));
  }
  const target = targets[0];
  const bus = target === undefined ? undefined : stringAt(disk, target, 'bus');
  if (target !== undefined && bus !== undefined && bus !== '') {
    const busPath = `${p}.${target}.bus`;
    if (bus === 'ide') errors.push(invalid(busPath, 'IDE bus is not supported: QEMU q35 machines have no IDE controller; use sata or virtio'));
    else if (!supportedBuses.includes(bus)) {
      errors.push(invalid(busPath, `${p} is set with an unrecognized bus ${quote(bus)}: must be one of ${supportedBuses.join(', ')}`));
    } else if (bus === 'virtio' && target === 'cdrom') {
      errors.push(invalid(busPath, 'Bus type virtio is invalid for CD-ROM device: guests cannot boot or eject a virtio CD-ROM; use sata or scsi'));
    } else if (bus === 'sata' && target === 'disk' && booleanAt(disk, 'disk', 'readOnly') === true) {
      errors.push(invalid(busPath, 'sata hard-disks do not support read-only: use the virtio or scsi bus, or a cdrom target, for a read-only disk'));
    }
  }
  if (booleanAt(disk, 'dedicatedIOThread') === true && bus !== undefined && bus !== '' && bus !== 'virtio') {
    errors.push(notSupported(p, `IOThreads are not supported for disks on a ${bus} bus: only virtio disks get a dedicated I/O thread; use bus: virtio or drop dedicatedIOThread`));
  }
  return errors;
}

function validateTuning(p: string, disk: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const bootOrder = numberAt(disk, 'bootOrder');
  if (bootOrder !== undefined && bootOrder < 1) {
    errors.push(invalid(`${p}.bootOrder`, `${p} must have a boot order > 0, if supplied: 1 is the first device tried; omit bootOrder to leave the disk out of the boot sequence`));
  }
  const serial = stringAt(disk, 'serial') ?? '';
  if (serial !== '' && !serialRe.test(serial)) {
    errors.push(invalid(`${p}.serial`, `${p} must be made up of the following characters [A-Za-z0-9_.+-], if specified`));
  }
  if (serial.length > 256) errors.push(invalid(`${p}.serial`, `${p} must be less than or equal to 256 in length, if specified`));
  const cache = stringAt(disk, 'cache') ?? '';
  if (cache !== '' && !['none', 'writethrough', 'writeback'].includes(cache)) {
    errors.push(invalid(`${p}.cache`, `${p}.cache has invalid value ${quote(cache)}: use none, writethrough or writeback`));
  }
  const io = stringAt(disk, 'io') ?? '';
  if (io !== '' && io !== 'native' && io !== 'threads') {
    errors.push(notSupported(`${p}.io`, `Disk IO mode ${quote(io)} is not supported. Supported modes are: native, threads.`));
  }
  const errorPolicy = stringAt(disk, 'errorPolicy');
  if (errorPolicy !== undefined && !['stop', 'ignore', 'report', 'enospace'].includes(errorPolicy)) {
    errors.push(invalid(`${p}.errorPolicy`, `${p}.errorPolicy has invalid value ${quote(errorPolicy)}: use stop, ignore, report or enospace`));
  }
  return errors;
}

/** Boot orders of disks and interfaces must be unique, and interfaces' positive, as KubeVirt requires. */
export function validateBootOrder(path: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const used = new Map<number, string>();
  const visit = (list: 'disks' | 'interfaces'): void => {
    recordsAt(spec, 'domain', 'devices', list).forEach((device, i) => {
      const order = numberAt(device, 'bootOrder');
      if (order === undefined) return;
      const field = `${path}.domain.devices.${list}[${i}].bootOrder`;
      if (list === 'interfaces' && order < 1) {
        errors.push(invalid(field, `${field} must be greater than 0, if supplied: 1 is the first device tried`));
        return;
      }
      const other = used.get(order);
      if (other !== undefined) {
        errors.push(invalid(field, `Boot order ${order} for ${field} is already set for ${other}: each device needs its own position in the boot sequence`));
      } else used.set(order, field.replace(/\.bootOrder$/, ''));
    });
  };
  visit('disks');
  visit('interfaces');
  return errors;
}

/**
 * KubeVirt's defaulting gives every volume without a disk or filesystem a
 * plain disk of the same name (`SetDefaultVolumeDisk`) before validating,
 * so such a volume is accepted as long as its name can be a disk's.
 */
export function validateImplicitDisks(path: string, spec: Record<string, unknown>): FieldError[] {
  const devices = new Set([
    ...recordsAt(spec, 'domain', 'devices', 'disks').map((d) => stringAt(d, 'name')),
    ...recordsAt(spec, 'domain', 'devices', 'filesystems').map((f) => stringAt(f, 'name')),
  ]);
  const errors: FieldError[] = [];
  recordsAt(spec, 'volumes').forEach((volume, i) => {
    const name = stringAt(volume, 'name') ?? '';
    if (devices.has(name) || recordAt(volume, 'memoryDump') !== undefined) return;
    for (const message of isDNS1123Label(name)) {
      errors.push(
        invalid(`${path}.volumes[${i}].name`, `volume ${quote(name)} has no disk, so it gets a disk of the same name, and that is not a valid device name: ${message}; rename the volume or add a disk for it`),
      );
    }
  });
  return errors;
}
