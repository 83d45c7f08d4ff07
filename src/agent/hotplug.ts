/**
 * Volume hotplug on the node (virt-handler's share of KubeVirt's
 * `addvolume`/`removevolume`), level-based: the VMI's spec says which
 * disks the guest should have, QEMU's `query-block` says which it has.
 * A hotpluggable volume in the spec that QEMU lacks is prepared (its
 * claim's file on this node) and attached (`blockdev-add` of the file and
 * format nodes, `device_add` of a `scsi-hd` on the `scsi0` controller); a
 * device whose disk left the spec is detached (`device_del`, waiting for
 * `DEVICE_DELETED` as the guest lets go, then `blockdev-del`). Both the
 * spec and QEMU outlive an agent restart, so nothing else is kept.
 *
 * `status.volumeStatus` reports every volume with its target, and a
 * hotplugged one with KubeVirt's phases: Pending (claim not ready) →
 * Bound → AttachedToNode (its file is on this node) → Ready; Detaching
 * while it goes.
 */
import type { KObject } from '../api/object.js';
import { booleanAt, recordAt, recordsAt, stringAt } from '../api/kinds/read.js';
import type { Client } from '../client/index.js';
import { resources } from '../client/index.js';
import { bindingModeOf, claimNameOf, selectedNodeAnnotation } from '../storage/local/index.js';
import type { Logger } from '../log/logger.js';
import { sealSecret } from './disk-secrets.js';
import type { ImageStore } from './images/index.js';
import type { Machine } from './machine.js';
import type { DiskSource } from './qemu/index.js';
import { DomainConfigError, diskDeviceId, fileNodeOf, hotplugCommands, keySecretOf } from './qemu/index.js';
import { QmpError } from './qmp/index.js';
import type { QmpBlockInfo } from './qmp/index.js';
import { VolumeError } from './volume-error.js';
import { prepareVolumes } from './volumes.js';

/** KubeVirt's `VolumePhase` values the agent reports. */
export type HotplugPhase = 'Pending' | 'Bound' | 'AttachedToNode' | 'Ready' | 'Detaching';

/** One entry of `status.volumeStatus`. */
export interface VolumeStatus {
  name: string;
  target: string;
  phase?: HotplugPhase;
  reason?: string;
  message?: string;
  hotplugVolume?: Record<string, never>;
}

/** What the hotplug sync needs from the agent. */
export interface HotplugOptions {
  client: Client;
  images: ImageStore;
  nodeName: string;
  /** Where the VMI's own disk files go. */
  disksDir: string;
  /** The VMI's master key, which seals the keys of encrypted volumes (read on demand). */
  masterKey: () => Promise<Buffer>;
  logger: Logger;
  /** Writes intermediate volume statuses (AttachedToNode, Detaching) and returns the updated VMI. */
  report: (vmi: KObject, volumeStatus: VolumeStatus[]) => Promise<KObject>;
  /** Records a VMI Event. */
  event: (vmi: KObject, type: 'Normal' | 'Warning', reason: string, message: string) => void;
  signal: AbortSignal;
}

/** The outcome: the volume statuses to write, and when to look again (a claim that is not ready yet). */
export interface HotplugResult {
  vmi: KObject;
  volumeStatus: VolumeStatus[];
  requeueAfter?: number;
}

/** How long the guest gets to release a disk before the detach is retried. */
const detachTimeoutMs = 30_000;
/** How often a hotplugged volume whose claim is not ready is looked at again. */
const notReadyRetryMs = 2_000;

/** True for a PVC or DataVolume volume marked `hotpluggable`. */
export function isHotpluggable(volume: Record<string, unknown>): boolean {
  return booleanAt(volume, 'persistentVolumeClaim', 'hotpluggable') === true || booleanAt(volume, 'dataVolume', 'hotpluggable') === true;
}

/** The disk name a `query-block` entry belongs to, from its device id `ua-<name>` (or a QOM path under it). */
export function diskNameOfBlock(block: QmpBlockInfo): string | undefined {
  const qdev = block.qdev ?? '';
  const match = /^(?:\/machine\/peripheral\/)?ua-([^/]+)/.exec(qdev);
  return match?.[1];
}

function letters(n: number): string {
  let out = '';
  for (let i = n; i >= 0; i = Math.floor(i / 26) - 1) out = String.fromCharCode(97 + (i % 26)) + out;
  return out;
}

/**
 * The guest target of each disk as libvirt names them (`vda`… for virtio,
 * `sda`… for sata, scsi and usb, in spec order), except that a hotplugged
 * disk keeps the target it was first given.
 */
export function diskTargets(vmi: KObject): Map<string, string> {
  const previous = new Map(recordsAt(vmi, 'status', 'volumeStatus').map((s) => [stringAt(s, 'name') ?? '', stringAt(s, 'target') ?? '']));
  const hotplugged = new Set(recordsAt(vmi, 'spec', 'volumes').filter(isHotpluggable).map((v) => stringAt(v, 'name') ?? ''));
  const targets = new Map<string, string>();
  const used = new Set<string>();
  const disks = recordsAt(vmi, 'spec', 'domain', 'devices', 'disks');
  for (const disk of disks) {
    const name = stringAt(disk, 'name') ?? '';
    const kept = previous.get(name);
    if (hotplugged.has(name) && kept !== undefined && kept !== '') {
      targets.set(name, kept);
      used.add(kept);
    }
  }
  const next = { vd: 0, sd: 0 };
  for (const disk of disks) {
    const name = stringAt(disk, 'name') ?? '';
    if (targets.has(name)) continue;
    const device = recordAt(disk, 'disk') ?? recordAt(disk, 'lun') ?? recordAt(disk, 'cdrom');
    const bus = stringAt(device, 'bus') ?? (recordAt(disk, 'cdrom') !== undefined ? 'sata' : recordAt(disk, 'lun') !== undefined ? 'scsi' : 'virtio');
    const prefix = bus === 'virtio' ? 'vd' : 'sd';
    let target: string;
    do target = `${prefix}${letters(next[prefix]++)}`; while (used.has(target));
    used.add(target);
    targets.set(name, target);
  }
  return targets;
}

const phaseNames: readonly HotplugPhase[] = ['Pending', 'Bound', 'AttachedToNode', 'Ready', 'Detaching'];

function hotplugPhaseOf(value: string | undefined): HotplugPhase | undefined {
  return phaseNames.find((p) => p === value);
}

/** The volume statuses for `vmi`, hotplugged volumes taking their phase from `phases` (else the last reported). */
export function volumeStatuses(vmi: KObject, phases: ReadonlyMap<string, Pick<VolumeStatus, 'phase' | 'reason' | 'message'>>): VolumeStatus[] {
  const targets = diskTargets(vmi);
  const previous = new Map(recordsAt(vmi, 'status', 'volumeStatus').map((s) => [stringAt(s, 'name') ?? '', s]));
  const out: VolumeStatus[] = [];
  for (const volume of recordsAt(vmi, 'spec', 'volumes')) {
    const name = stringAt(volume, 'name') ?? '';
    const entry: VolumeStatus = { name, target: targets.get(name) ?? '' };
    if (isHotpluggable(volume)) {
      const known = phases.get(name);
      const old = previous.get(name);
      const phase = known?.phase ?? hotplugPhaseOf(stringAt(old, 'phase')) ?? 'Pending';
      entry.phase = phase;
      const reason = known?.reason ?? stringAt(old, 'reason');
      const message = known?.message ?? stringAt(old, 'message');
      if (reason !== undefined) entry.reason = reason;
      if (message !== undefined) entry.message = message;
      entry.hotplugVolume = {};
    }
    out.push(entry);
  }
  // A volume that left the spec but is still being released by the guest stays listed as Detaching.
  for (const [name, status] of phases) {
    if (status.phase === 'Detaching' && !out.some((s) => s.name === name)) {
      out.push({ name, target: stringAt(previous.get(name), 'target') ?? '', ...status, hotplugVolume: {} });
    }
  }
  return out;
}

/** Brings the running guest's disks in line with the VMI's spec; see the module comment. */
export async function syncHotplug(vmi: KObject, machine: Machine, options: HotplugOptions): Promise<HotplugResult> {
  let current = vmi;
  // A paused guest cannot acknowledge an unplug, and a plug would surprise it on resume: wait until it runs.
  if (machine.runState !== 'running') return { vmi, volumeStatus: volumeStatuses(vmi, new Map()) };
  const blocks = await machine.execute('query-block');
  const attached = new Map<string, QmpBlockInfo>();
  for (const block of blocks) {
    const name = diskNameOfBlock(block);
    if (name !== undefined) attached.set(name, block);
  }
  const specDisks = new Set(recordsAt(vmi, 'spec', 'domain', 'devices', 'disks').map((d) => stringAt(d, 'name') ?? ''));
  const phases = new Map<string, Pick<VolumeStatus, 'phase' | 'reason' | 'message'>>();
  let requeueAfter: number | undefined;

  for (const [name, block] of attached) {
    if (specDisks.has(name)) continue;
    phases.set(name, { phase: 'Detaching', reason: 'VolumeDetaching', message: `Volume ${name} is being detached from the VM` });
    current = await options.report(current, volumeStatuses(current, phases));
    const gone = await detach(machine, name, block, options);
    if (gone) {
      phases.delete(name);
      options.event(current, 'Normal', 'VolumeUnplugged', `Volume ${name} has been unplugged from the VM`);
    } else {
      requeueAfter = Math.min(requeueAfter ?? notReadyRetryMs, notReadyRetryMs);
    }
  }

  for (const volume of recordsAt(current, 'spec', 'volumes')) {
    const name = stringAt(volume, 'name') ?? '';
    if (!isHotpluggable(volume)) continue;
    if (attached.has(name)) {
      phases.set(name, { phase: 'Ready', reason: 'VolumeReady', message: `Successfully attach hotplugged volume ${name} to VM` });
      continue;
    }
    const outcome = await attach(current, { name, volume }, machine, { ...options, phases, report: async (vmi2) => (current = await options.report(vmi2, volumeStatuses(vmi2, phases))) });
    if (outcome === 'retry') requeueAfter = Math.min(requeueAfter ?? notReadyRetryMs, notReadyRetryMs);
  }
  return { vmi: current, volumeStatus: volumeStatuses(current, phases), ...(requeueAfter === undefined ? {} : { requeueAfter }) };
}

type AttachOptions = Omit<HotplugOptions, 'report'> & {
  phases: Map<string, Pick<VolumeStatus, 'phase' | 'reason' | 'message'>>;
  report: (vmi: KObject) => Promise<KObject>;
};

async function attach(vmi: KObject, which: { name: string; volume: Record<string, unknown> }, machine: Machine, options: AttachOptions): Promise<'attached' | 'retry' | 'failed'> {
  const { name, volume } = which;
  const log = options.logger.child({ volume: name });
  let source: DiskSource;
  let key: Buffer | undefined;
  await selectNodeForClaim(vmi, volume, options);
  try {
    // The claim alone, prepared exactly as a boot-time volume is.
    const prepared = await prepareVolumes({ ...vmi, spec: { volumes: [volume] } }, { client: options.client, images: options.images, disksDir: options.disksDir, signal: options.signal, nodeName: options.nodeName });
    const disk = prepared.disks[name];
    if (disk === undefined) throw new Error(`volume "${name}" was not prepared`);
    source = disk;
    key = prepared.keys?.[name];
  } catch (err) {
    if (!(err instanceof VolumeError)) throw err;
    const bound = /is not bound|not found|has no PersistentVolumeClaim/.test(err.message) ? 'Pending' : 'Bound';
    options.phases.set(name, { phase: err.problem === 'Invalid' ? 'Pending' : bound, reason: err.problem === 'Invalid' ? 'VolumeFailed' : 'PVCNotReady', message: err.message });
    return err.problem === 'Invalid' ? 'failed' : 'retry';
  }
  options.phases.set(name, { phase: 'AttachedToNode', reason: 'VolumeAttachedToNode', message: `Volume ${name} is on node ${options.nodeName}; attaching it to the VM` });
  await options.report(vmi);
  const sealed = key === undefined ? source : { ...source, encryption: { format: 'luks' as const, key: sealSecret(await options.masterKey(), key) } };
  let commands;
  try {
    commands = hotplugCommands(vmi, name, sealed);
  } catch (err) {
    if (!(err instanceof DomainConfigError)) throw err;
    options.phases.set(name, { phase: 'AttachedToNode', reason: 'VolumeFailed', message: err.message });
    return 'failed';
  }
  for (const warning of commands.warnings) log.warn('hotplugged disk field not applied', { warning });
  const undo: (() => Promise<unknown>)[] = [];
  try {
    if (commands.secret !== undefined) {
      await machine.execute('object-add', commands.secret);
      const id = commands.secret.id;
      undo.push(() => machine.execute('object-del', { id }));
    }
    await machine.execute('blockdev-add', commands.file);
    undo.push(() => machine.execute('blockdev-del', { 'node-name': commands.fileNode }));
    await machine.execute('blockdev-add', commands.format);
    undo.push(() => machine.execute('blockdev-del', { 'node-name': commands.node }));
    await machine.execute('device_add', commands.device);
  } catch (err) {
    for (const step of undo.reverse()) await step().catch((undoErr: unknown) => { log.warn('cannot undo a failed hotplug step', { err: undoErr }); });
    if (!(err instanceof QmpError && err.code === 'QmpCommandFailed')) throw err;
    options.phases.set(name, { phase: 'AttachedToNode', reason: 'VolumeFailed', message: `QEMU refused to attach volume ${name}: ${err.message}` });
    options.event(vmi, 'Warning', 'VolumeFailed', `QEMU refused to attach volume ${name}: ${err.message}`);
    return 'retry';
  }
  log.info('volume hotplugged', { node: commands.node, device: commands.device.id });
  options.phases.set(name, { phase: 'Ready', reason: 'VolumeReady', message: `Successfully attach hotplugged volume ${name} to VM` });
  options.event(vmi, 'Normal', 'VolumeReady', `Successfully attach hotplugged volume ${name} to VM`);
  return 'attached';
}

/**
 * A hotplugged WaitForFirstConsumer claim has its first consumer now: as
 * the scheduler does for boot-time claims (KubeVirt's attachment pod
 * triggers the same), send it to this node so its volume is made here.
 */
async function selectNodeForClaim(vmi: KObject, volume: Record<string, unknown>, options: AttachOptions): Promise<void> {
  const claimName = claimNameOf(volume);
  const namespace = vmi.metadata.namespace ?? 'default';
  if (claimName === undefined) return;
  const pvc = await options.client.tryGet(resources.persistentVolumeClaims, namespace, claimName);
  if (pvc === undefined || (stringAt(pvc, 'spec', 'volumeName') ?? '') !== '' || pvc.metadata.annotations?.[selectedNodeAnnotation] !== undefined) return;
  const className = stringAt(pvc, 'spec', 'storageClassName') ?? '';
  const sc = className === '' ? undefined : await options.client.tryGet(resources.storageClasses, undefined, className);
  if (bindingModeOf(sc) !== 'WaitForFirstConsumer') return;
  await options.client.patch(resources.persistentVolumeClaims, namespace, claimName, 'merge', { metadata: { annotations: { [selectedNodeAnnotation]: options.nodeName } } });
  options.logger.info('sent a hotplugged claim to this node', { claim: claimName });
}

/** Unplugs disk `name`: true once the guest released it and its nodes are gone. */
async function detach(machine: Machine, name: string, block: QmpBlockInfo, options: HotplugOptions): Promise<boolean> {
  const id = diskDeviceId(name);
  const log = options.logger.child({ volume: name });
  const deleted = machine.waitForEvent((e) => e.event === 'DEVICE_DELETED' && e.data.device === id, { timeoutMs: detachTimeoutMs, signal: options.signal });
  try {
    await machine.execute('device_del', { id });
  } catch (err) {
    // Already on its way out (an earlier attempt asked): keep waiting for the event.
    if (!(err instanceof QmpError && /already in the process of unplug/i.test(err.message))) throw err;
  }
  if ((await deleted) === undefined) {
    log.warn('the guest has not released the disk yet', { device: id, waitedMs: detachTimeoutMs });
    return false;
  }
  const node = block.inserted?.['node-name'];
  if (node !== undefined) {
    for (const nodeName of [node, fileNodeOf(node)]) {
      await machine.execute('blockdev-del', { 'node-name': nodeName }).catch((err: unknown) => { log.warn('cannot remove a block node of an unplugged disk', { err, node: nodeName }); });
    }
    await machine.execute('object-del', { id: keySecretOf(node) }).catch(() => { /* only encrypted disks have a key object */ });
  }
  log.info('volume unplugged', { device: id });
  return true;
}
