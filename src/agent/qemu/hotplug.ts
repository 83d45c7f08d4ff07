/**
 * The QMP side of a hotplugged disk: the same file/format nodes and guest
 * device the command line would give the disk, as `object-add`,
 * `blockdev-add` and `device_add` arguments. A pure function of the VMI
 * and the prepared file, like the command line.
 */
import { createHash } from 'node:crypto';
import type { KObject } from '../../api/object.js';
import type { BlockdevNodeArgs, QmpArgs } from '../qmp/index.js';
import type { DeviceContext } from './disk-devices.js';
import { blockNodes, deviceProps, fileNodeOf } from './disk-devices.js';
import { planDisk } from './disks.js';
import { invalidDomain } from './errors.js';
import type { OptionValue } from './keyval.js';
import { SpecNode } from './spec-reader.js';
import type { DiskSource } from './types.js';

/** What attaching one disk to a running guest sends, in order. */
export interface HotplugCommands {
  /** The format node (`hp-<hash>`); its file node is `<node>-file`. */
  node: string;
  fileNode: string;
  /** The disk's key, for an encrypted volume. */
  secret?: QmpArgs<'object-add'>;
  file: BlockdevNodeArgs;
  format: BlockdevNodeArgs;
  device: QmpArgs<'device_add'>;
  warnings: string[];
}

/**
 * The format node name of a hotplugged disk: derived from the volume name
 * (a DNS label of up to 63 characters; QEMU node names stop at 31), so the
 * same disk gets the same node after an agent restart.
 */
export function hotplugNodeName(volumeName: string): string {
  return `hp-${createHash('sha256').update(volumeName).digest('hex').slice(0, 16)}`;
}

/** `cache.direct` → `{cache: {direct}}`, dropping unset values: QMP's typed form of `-blockdev` options. */
function nested(props: Record<string, OptionValue>): BlockdevNodeArgs {
  const out: Record<string, string | number | boolean | Record<string, string | boolean>> = {};
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    const dot = key.indexOf('.');
    if (dot < 0) {
      out[key] = value;
      continue;
    }
    const head = key.slice(0, dot);
    const existing = out[head];
    const group = typeof existing === 'object' ? existing : {};
    group[key.slice(dot + 1)] = typeof value === 'number' ? String(value) : value;
    out[head] = group;
  }
  const driver = out.driver;
  const nodeName = out['node-name'];
  if (typeof driver !== 'string' || typeof nodeName !== 'string') throw new Error('a block node needs a driver and a node-name');
  return { ...out, driver, 'node-name': nodeName };
}

/** Device properties in QMP's typed form: QEMU's on/off/auto properties take strings there. */
function deviceArgs(driver: string, props: Record<string, OptionValue>): QmpArgs<'device_add'> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    out[key] = key === 'write-cache' && typeof value === 'boolean' ? (value ? 'on' : 'off') : value;
  }
  const id = out.id;
  if (typeof id !== 'string') throw new Error('a hotplugged device needs an id');
  return { ...out, driver, id };
}

/**
 * The commands that attach volume `name` of `vmi` (its disk must be in the
 * spec, on the scsi bus) backed by `source`. Throws a `DomainConfigError`
 * when the disk cannot be hotplugged.
 */
export function hotplugCommands(vmi: KObject, name: string, source: DiskSource): HotplugCommands {
  const spec = new SpecNode(vmi.spec, 'spec');
  const disks = spec.get('domain').get('devices').get('disks').items();
  const index = disks.findIndex((d) => d.get('name').value === name);
  const disk = disks[index];
  if (disk === undefined) throw invalidDomain('spec.domain.devices.disks', `no disk is named "${name}": a hotplugged volume needs a disk of the same name`);
  const warnings: string[] = [];
  const node = hotplugNodeName(name);
  const plan = planDisk({ spec, paths: { dir: '', qmpSocket: '', serialSocket: '', vncSocket: '', guestAgentSocket: '', pidFile: '', disks: { [name]: source } }, warnings }, disk, index, node);
  if (plan.bus !== 'scsi' || plan.target === 'cdrom') throw invalidDomain(disk.path, `hotplugged Disk ${name} does not use a scsi bus`);
  const nodes = blockNodes(plan);
  if (nodes === undefined) throw invalidDomain(disk.path, `volume "${name}" has no file to attach`);
  const dc: DeviceContext = { sataPort: 0, scsiLun: 0, ioThreadOf: new Map(), virtioSuffix: '', queues: undefined };
  const device = deviceProps(plan, dc);
  const out: HotplugCommands = { node, fileNode: fileNodeOf(node), file: nested(nodes.file), format: nested(nodes.format), device: deviceArgs(device.driver, device.props), warnings };
  const secret = nodes.secret;
  if (secret !== undefined) {
    out.secret = { 'qom-type': 'secret', id: String(secret.id), data: String(secret.data), format: 'base64', keyid: String(secret.keyid), iv: String(secret.iv) };
  }
  return out;
}
