/**
 * Disks as QEMU sees them: a `file`/`host_device` node and a format node per
 * disk (`-blockdev`), the controllers their buses need, I/O threads, and a
 * guest device (`-device`) named `ua-<disk name>` like KubeVirt's aliases.
 */
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import type { DiskPlan, ErrorPolicy } from './disks.js';
import { planDisks } from './disks.js';
import { unpreparedInput } from './errors.js';
import { options } from './keyval.js';
import type { OptionValue } from './keyval.js';

const errorActions: Record<ErrorPolicy, { werror: string; rerror: string }> = {
  stop: { werror: 'stop', rerror: 'stop' },
  ignore: { werror: 'ignore', rerror: 'ignore' },
  report: { werror: 'report', rerror: 'report' },
  // QEMU has no "enospc" for reads; KubeVirt's enospace pauses on a full disk and reports other errors.
  enospace: { werror: 'enospc', rerror: 'report' },
};

/** The guest-visible device id of a disk; QMP's `query-block` reports it as `qdev`. */
export function diskDeviceId(diskName: string): string {
  return `ua-${diskName}`;
}

/** The id of the `secret` object holding the master key that unseals the disks' keys. */
export const masterKeyId = 'masterKey0';

/** The format node of a disk on the command line (`disk<index>`); hotplugged disks name theirs in `hotplug.ts`. */
function formatNode(plan: DiskPlan): string {
  return plan.nodeName ?? `disk${plan.index}`;
}

/** The file node under a format node; detaching a disk finds it by this name. */
export function fileNodeOf(formatNodeName: string): string {
  return `${formatNodeName}-file`;
}

/** The `secret` object with an encrypted disk's key. */
export function keySecretOf(formatNodeName: string): string {
  return `${formatNodeName}-key`;
}

/** The properties of a disk's file node, format node and (encrypted disks) key secret, with dotted keys as `-blockdev` spells them. */
export function blockNodes(plan: DiskPlan): { file: Record<string, OptionValue>; format: Record<string, OptionValue>; secret?: Record<string, OptionValue> } | undefined {
  const source = plan.source;
  if (source === undefined) return undefined;
  // Discarding frees host space under a writable disk; a CD-ROM or read-only disk has none to free.
  const discard = plan.target === 'cdrom' || plan.readOnly ? undefined : 'unmap';
  const node = formatNode(plan);
  const file = {
    driver: source.blockDevice === true ? 'host_device' : 'file',
    filename: source.file,
    'node-name': fileNodeOf(node),
    'cache.direct': plan.cache === 'none',
    'cache.no-flush': false,
    aio: plan.io,
    discard,
    'read-only': plan.readOnly,
  };
  const common = { 'cache.direct': plan.cache === 'none', 'cache.no-flush': false, discard, 'read-only': plan.readOnly };
  const encryption = source.encryption;
  if (encryption === undefined) return { file, format: { driver: source.format, file: fileNodeOf(node), 'node-name': node, ...common } };
  const keyId = keySecretOf(node);
  const secret = { 'qom-type': 'secret', id: keyId, data: encryption.key.data, keyid: masterKeyId, iv: encryption.key.iv, format: 'base64' };
  // A qcow2 volume encrypts its payload with LUKS inside the qcow2 container; a raw one is a LUKS container itself.
  const format = source.format === 'qcow2'
    ? { driver: 'qcow2', file: fileNodeOf(node), 'node-name': node, 'encrypt.format': 'luks', 'encrypt.key-secret': keyId, ...common }
    : { driver: 'luks', file: fileNodeOf(node), 'node-name': node, 'key-secret': keyId, ...common };
  return { file, format, secret };
}

function blockdevArgs(plan: DiskPlan): string[] {
  const nodes = blockNodes(plan);
  if (nodes === undefined) return [];
  const { 'qom-type': type, ...secret } = nodes.secret ?? {};
  const secretArgs = nodes.secret === undefined ? [] : ['-object', options(String(type), secret)];
  return [...secretArgs, '-blockdev', options(undefined, nodes.file), '-blockdev', options(undefined, nodes.format)];
}

export interface DeviceContext {
  sataPort: number;
  scsiLun: number;
  ioThreadOf: Map<string, string>;
  virtioSuffix: string;
  queues: number | undefined;
}

function deviceFor(plan: DiskPlan, dc: DeviceContext): { driver: string; props: Record<string, OptionValue> } {
  switch (plan.bus) {
    case 'virtio':
      return { driver: `virtio-blk-pci${dc.virtioSuffix}`, props: { 'num-queues': dc.queues, iothread: dc.ioThreadOf.get(plan.name) } };
    case 'sata':
      return { driver: plan.target === 'cdrom' ? 'ide-cd' : 'ide-hd', props: { bus: `ide.${dc.sataPort++}` } };
    case 'scsi': {
      const driver = plan.target === 'cdrom' ? 'scsi-cd' : plan.target === 'lun' && plan.source?.blockDevice === true ? 'scsi-block' : 'scsi-hd';
      // A hotplugged disk lets QEMU pick the first free target, so it never collides with the boot-time LUNs.
      if (plan.nodeName !== undefined) return { driver, props: { bus: 'scsi0.0' } };
      return { driver, props: { bus: 'scsi0.0', channel: 0, 'scsi-id': 0, lun: dc.scsiLun++ } };
    }
    case 'usb':
      return { driver: 'usb-storage', props: { bus: 'usb.0' } };
  }
}

/** The guest device's properties (driver first), as `-device` and `device_add` take them. */
export function deviceProps(plan: DiskPlan, dc: DeviceContext): { driver: string; props: Record<string, OptionValue> } {
  const { driver, props } = deviceFor(plan, dc);
  // scsi-block passes the host's own answers through, so it takes no cache, serial or geometry settings.
  const passthrough = driver === 'scsi-block';
  const errors = errorActions[plan.errorPolicy];
  const all: Record<string, OptionValue> = {
    ...props,
    drive: plan.source === undefined ? undefined : formatNode(plan),
    id: diskDeviceId(plan.name),
    bootindex: plan.bootIndex,
    serial: passthrough ? undefined : plan.serial,
    'write-cache': passthrough || plan.source === undefined || plan.readOnly ? undefined : plan.cache !== 'writethrough',
    werror: plan.source === undefined ? undefined : errors.werror,
    rerror: plan.source === undefined ? undefined : errors.rerror,
    'share-rw': plan.shareable ? true : undefined,
    logical_block_size: passthrough ? undefined : plan.blockSize?.logical,
    physical_block_size: passthrough ? undefined : plan.blockSize?.physical,
  };
  return { driver, props: all };
}

function deviceArgs(plan: DiskPlan, dc: DeviceContext): string[] {
  const { driver, props } = deviceProps(plan, dc);
  return ['-device', options(driver, props)];
}

/** KubeVirt's I/O thread policies: `shared` (one thread), `auto` (a pool of up to 2 per vCPU), plus dedicated threads. */
function ioThreads(ctx: BuildContext, plans: DiskPlan[]): { args: string[]; ioThreadOf: Map<string, string> } {
  const ioThreadOf = new Map<string, string>();
  const policyNode = ctx.domain.get('ioThreadsPolicy');
  const policy = policyNode.oneOf(['shared', 'auto', 'supplementalPool'] as const);
  const virtio = plans.filter((plan) => plan.bus === 'virtio');
  if (policy === undefined && !virtio.some((plan) => plan.dedicatedIoThread)) return { args: [], ioThreadOf };
  if (policy === 'supplementalPool') warn(ctx, policyNode, 'a supplemental pool is not supported yet; the disks share one I/O thread');
  const shared = virtio.filter((plan) => !plan.dedicatedIoThread);
  const poolSize = policy === 'auto' ? Math.min(shared.length, 2 * ctx.vcpus) : Math.min(shared.length, 1);
  const ids: string[] = [];
  for (let i = 0; i < poolSize; i++) ids.push(`iothread${ids.length + 1}`);
  shared.forEach((plan, i) => {
    const id = ids[i % poolSize];
    if (id !== undefined) ioThreadOf.set(plan.name, id);
  });
  for (const plan of virtio.filter((p) => p.dedicatedIoThread)) {
    const id = `iothread${ids.length + 1}`;
    ids.push(id);
    ioThreadOf.set(plan.name, id);
  }
  return { args: ids.flatMap((id) => ['-object', options('iothread', { id })]), ioThreadOf };
}

/** `-blockdev`, controllers and `-device` for every disk; sets `ctx.needsUsb` for USB disks. */
export function diskArgs(ctx: BuildContext): string[] {
  const plans = planDisks(ctx);
  const devices = ctx.domain.get('devices');
  const transitional = devices.get('useVirtioTransitional').boolean() === true;
  const multiQueue = devices.get('blockMultiQueue').boolean() === true;
  const threads = ioThreads(ctx, plans);
  const dc: DeviceContext = {
    sataPort: 0,
    scsiLun: 0,
    ioThreadOf: threads.ioThreadOf,
    virtioSuffix: transitional ? '-transitional' : '',
    queues: multiQueue ? ctx.vcpus : undefined,
  };
  const args = [...threads.args];
  // KubeVirt always gives a guest a SCSI controller, so disks can be hotplugged onto it later (not with disableHotplug).
  if (plans.some((plan) => plan.bus === 'scsi') || devices.get('disableHotplug').boolean() !== true) args.push('-device', options(`virtio-scsi-pci${dc.virtioSuffix}`, { id: 'scsi0' }));
  if (plans.some((plan) => plan.source?.encryption !== undefined)) {
    if (ctx.paths.masterKey === undefined) throw unpreparedInput('paths.masterKey', 'a disk is encrypted, so the VMI needs a master key file (VmiPaths.masterKey) to unseal its key');
    args.push('-object', options('secret', { id: masterKeyId, format: 'raw', file: ctx.paths.masterKey }));
  }
  if (plans.some((plan) => plan.bus === 'usb')) ctx.needsUsb = true;
  for (const plan of plans) args.push(...blockdevArgs(plan), ...deviceArgs(plan, dc));
  return args;
}
