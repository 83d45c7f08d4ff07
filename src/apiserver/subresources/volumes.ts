/**
 * `addvolume` and `removevolume` (KubeVirt's volume hotplug, virt-api's
 * `volumes.go`). On a VMI they change the running VMI's spec only (the
 * node agent attaches or detaches the disk, and reports it in
 * `status.volumeStatus`); on a VM (virtctl's `--persist`) they record the
 * request in `status.volumeRequests`, apply it to the VM's template and to
 * its running VMI, and clear the request once applied, which is the VM
 * controller's share in KubeVirt. Hotplugged volumes are PVCs or
 * DataVolumes on a `scsi` disk (or lun), as KubeVirt requires.
 */
import { ApiError, badRequest, conflict } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { isFinal, vmiPhase } from '../../api/kinds/vm-state.js';
import { templateHash, vmiAnnotations } from '../../controllers/vm/index.js';
import { describeJson } from '../metadata-shape.js';
import type { SubresourceContext } from './context.js';
import { kubevirtDefs, notRunningMessage } from './context.js';

/** KubeVirt's `AddVolumeOptions`, checked. */
export interface AddVolumeOptions {
  name: string;
  /** The disk, its `name` set to the volume's. */
  disk: Record<string, unknown>;
  /** `{persistentVolumeClaim: {claimName, hotpluggable: true, …}}` or `{dataVolume: {name, hotpluggable: true}}`. */
  volumeSource: Record<string, unknown>;
  dryRun: boolean;
}

/** KubeVirt's `RemoveVolumeOptions`, checked. */
export interface RemoveVolumeOptions {
  name: string;
  dryRun: boolean;
}

/** A request as `status.volumeRequests` holds it. */
export type VolumeRequest = { addVolumeOptions: Record<string, unknown> } | { removeVolumeOptions: Record<string, unknown> };

function bodyOf(kind: string, input: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (input === undefined) throw badRequest('Request with no body, a new name is expected as the request body');
  if (!isPlainObject(input)) throw badRequest(`the request body must be a ${kind} object, got ${describeJson(input)}`);
  for (const key of Object.keys(input)) {
    if (key === 'kind' || key === 'apiVersion' || allowed.includes(key)) continue;
    throw badRequest(`${kind} has no field "${key}": it accepts ${allowed.join(', ')}`);
  }
  return input;
}

function dryRunOf(kind: string, body: Record<string, unknown>): boolean {
  const value = body.dryRun;
  if (value === undefined || value === null) return false;
  if (!Array.isArray(value) || !value.every((v) => v === 'All')) throw badRequest(`${kind}.dryRun: Unsupported value: ${JSON.stringify(value)}: supported values: "All"`);
  return value.length > 0;
}

function nameOf(kind: string, body: Record<string, unknown>): string {
  const name = body.name;
  if (name === undefined || name === null || name === '') throw badRequest(`${kind} requires name to be set`);
  if (typeof name !== 'string') throw badRequest(`${kind}.name must be a string, got ${describeJson(name)}`);
  return name;
}

/** The hotplug volume source: exactly one of a PVC or a DataVolume, marked hotpluggable as KubeVirt does. */
function volumeSourceOf(name: string, raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) throw badRequest('AddVolumeOptions requires VolumeSource to not be nil');
  if (!isPlainObject(raw)) throw badRequest(`AddVolumeOptions.volumeSource must be an object, got ${describeJson(raw)}`);
  const keys = Object.keys(raw);
  const pvc = recordAt(raw, 'persistentVolumeClaim');
  const dv = recordAt(raw, 'dataVolume');
  if (keys.length !== 1 || (pvc === undefined && dv === undefined)) {
    throw new ApiError('Invalid', `volume ${name} is not a PVC or DataVolume: set exactly one of volumeSource.persistentVolumeClaim and volumeSource.dataVolume`);
  }
  if (pvc !== undefined) {
    if ((stringAt(pvc, 'claimName') ?? '') === '') throw badRequest('AddVolumeOptions.volumeSource.persistentVolumeClaim.claimName must be set');
    return { persistentVolumeClaim: { ...pvc, hotpluggable: true } };
  }
  if ((stringAt(dv, 'name') ?? '') === '') throw badRequest('AddVolumeOptions.volumeSource.dataVolume.name must be set');
  return { dataVolume: { ...dv, hotpluggable: true } };
}

/** KubeVirt's admission of a hotplugged disk: a disk or lun on the scsi bus, no boot order. */
function checkDisk(name: string, disk: Record<string, unknown>): void {
  const target = recordAt(disk, 'disk') ?? recordAt(disk, 'lun');
  if (target === undefined) {
    if (recordAt(disk, 'cdrom') !== undefined) throw new ApiError('Invalid', `new hotplugged Disk ${name} cannot have type cdrom`);
    throw new ApiError('Invalid', `Disk ${name} requires diskDevice of type 'disk' or 'lun' to be hotplugged.`);
  }
  if (stringAt(target, 'bus') !== 'scsi') throw new ApiError('Invalid', `hotplugged Disk ${name} does not use a scsi bus`);
  if (disk.bootOrder !== undefined) throw new ApiError('Invalid', `hotplugged Disk ${name} cannot have a boot order: the guest boots from the disks it started with`);
  if (disk.dedicatedIOThread === true) throw new ApiError('Invalid', `hotplugged Disk ${name} can't use dedicated IOThread: scsi bus is unsupported.`);
  const cache = disk.cache;
  if (cache !== undefined && cache !== 'none' && cache !== 'writethrough' && cache !== 'writeback') throw new ApiError('Invalid', `hotplugged Disk ${name} has cache ${describeJson(cache)}: use none, writethrough or writeback`);
}

export function parseAddVolumeOptions(input: unknown): AddVolumeOptions {
  const body = bodyOf('AddVolumeOptions', input, ['name', 'disk', 'volumeSource', 'dryRun']);
  const name = nameOf('AddVolumeOptions', body);
  if (body.disk === undefined || body.disk === null) throw badRequest('AddVolumeOptions requires disk to not be nil');
  if (!isPlainObject(body.disk)) throw badRequest(`AddVolumeOptions.disk must be an object, got ${describeJson(body.disk)}`);
  const volumeSource = volumeSourceOf(name, body.volumeSource);
  // KubeVirt names the disk after the volume, whatever the request said.
  const disk = { ...body.disk, name };
  checkDisk(name, disk);
  return { name, disk, volumeSource, dryRun: dryRunOf('AddVolumeOptions', body) };
}

export function parseRemoveVolumeOptions(input: unknown): RemoveVolumeOptions {
  const body = bodyOf('RemoveVolumeOptions', input, ['name', 'dryRun']);
  return { name: nameOf('RemoveVolumeOptions', body), dryRun: dryRunOf('RemoveVolumeOptions', body) };
}

function sourceName(volume: Record<string, unknown>): string | undefined {
  return stringAt(volume, 'persistentVolumeClaim', 'claimName') ?? stringAt(volume, 'dataVolume', 'name');
}

function isHotpluggableVolume(volume: Record<string, unknown>): boolean {
  return recordAt(volume, 'persistentVolumeClaim')?.hotpluggable === true || recordAt(volume, 'dataVolume')?.hotpluggable === true;
}

/** KubeVirt's `verifyVolumeOption`: why `request` cannot apply to `volumes`, if it cannot. */
export function volumeRequestProblem(volumes: readonly Record<string, unknown>[], request: AddVolumeOptions | RemoveVolumeOptions): string | undefined {
  if ('volumeSource' in request) {
    const wanted = sourceName(request.volumeSource) ?? '';
    for (const volume of volumes) {
      if (stringAt(volume, 'name') === request.name) return `Unable to add volume [${request.name}] because volume with that name already exists`;
      if (sourceName(volume) === wanted) return `Unable to add volume source [${wanted}] because it already exists`;
    }
    return undefined;
  }
  const found = volumes.find((v) => stringAt(v, 'name') === request.name || sourceName(v) === request.name);
  if (found === undefined) return `Unable to remove volume [${request.name}] because it does not exist`;
  if (!isHotpluggableVolume(found)) return `Unable to remove volume [${request.name}] because it is not hotpluggable`;
  return undefined;
}

/** KubeVirt's `ApplyVolumeRequestOnVMISpec`: the VMI spec (or VM template spec) with the volume and its disk added or removed. */
export function applyVolumeRequest(spec: Record<string, unknown>, request: AddVolumeOptions | RemoveVolumeOptions): Record<string, unknown> {
  const next = structuredClone(spec);
  const volumes = recordsAt(next, 'volumes');
  const domain = recordAt(next, 'domain') ?? {};
  const devices = recordAt(domain, 'devices') ?? {};
  const disks = recordsAt(devices, 'disks');
  if ('volumeSource' in request) {
    next.volumes = [...volumes, { name: request.name, ...request.volumeSource }];
    devices.disks = [...disks, request.disk];
  } else {
    const gone = new Set(volumes.filter((v) => stringAt(v, 'name') === request.name || sourceName(v) === request.name).map((v) => stringAt(v, 'name')));
    next.volumes = volumes.filter((v) => !gone.has(stringAt(v, 'name')));
    devices.disks = disks.filter((d) => !gone.has(stringAt(d, 'name')));
  }
  domain.devices = devices;
  next.domain = domain;
  return next;
}

function toRequest(request: AddVolumeOptions | RemoveVolumeOptions): VolumeRequest {
  if ('volumeSource' in request) return { addVolumeOptions: { name: request.name, disk: request.disk, volumeSource: request.volumeSource } };
  return { removeVolumeOptions: { name: request.name } };
}

function requestName(request: Record<string, unknown>): { add?: string; remove?: string } {
  const add = stringAt(request, 'addVolumeOptions', 'name');
  const remove = stringAt(request, 'removeVolumeOptions', 'name');
  return { ...(add === undefined ? {} : { add }), ...(remove === undefined ? {} : { remove }) };
}

/** KubeVirt's checks of a new request against the pending `status.volumeRequests`. */
function pendingRequestProblem(pending: readonly Record<string, unknown>[], request: AddVolumeOptions | RemoveVolumeOptions): string | undefined {
  for (const existing of pending) {
    const names = requestName(existing);
    if ('volumeSource' in request) {
      if (names.add === request.name) return `add volume request for volume [${request.name}] already exists`;
      if (names.remove === request.name) return `unable to add volume since a remove volume request for volume [${request.name}] already exists and is still being processed`;
    } else {
      if (names.remove === request.name) return `remove volume request for volume [${request.name}] already exists`;
    }
  }
  return undefined;
}

function isStaleWrite(err: unknown): boolean {
  return err instanceof ApiError && err.reason === 'Conflict' && err.message.includes('the object has been modified');
}

async function withRetry(run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run();
      return;
    } catch (err) {
      if (attempt < 5 && isStaleWrite(err)) continue;
      throw err;
    }
  }
}

/** `virtualmachineinstances/NAME/addvolume|removevolume`: the running VMI's spec gains or loses the volume. */
export async function changeVmiVolumes(context: SubresourceContext, where: { namespace: string; name: string }, request: AddVolumeOptions | RemoveVolumeOptions): Promise<void> {
  const def = kubevirtDefs(context.registry).vmi;
  await withRetry(async () => {
    const vmi = await context.objects.get(def, where.namespace, where.name);
    if (vmiPhase(vmi) !== 'Running') throw conflict('virtualmachineinstance', 'kubevirt.io', where.name, notRunningMessage(vmi));
    const problem = volumeRequestProblem(recordsAt(vmi, 'spec', 'volumes'), request);
    if (problem !== undefined) throw conflict('virtualmachineinstance', 'kubevirt.io', where.name, problem);
    const next = structuredClone(vmi);
    next.spec = applyVolumeRequest(recordAt(vmi, 'spec') ?? {}, request);
    // virt-api patches a running VMI's spec as a KubeVirt component; a user may not.
    await context.objects.replace(def, vmi, next, { writer: 'controller', dryRun: request.dryRun });
  });
}

/**
 * `virtualmachines/NAME/addvolume|removevolume`: recorded in the VM's
 * `status.volumeRequests`, applied to its template and running VMI, then
 * cleared from the requests.
 */
export async function changeVmVolumes(context: SubresourceContext, where: { namespace: string; name: string }, request: AddVolumeOptions | RemoveVolumeOptions): Promise<void> {
  const defs = kubevirtDefs(context.registry);
  const vmConflict = (why: string): ApiError => conflict('virtualmachine', 'kubevirt.io', where.name, why);
  let vm: KObject | undefined;
  await withRetry(async () => {
    const current = await context.objects.get(defs.vm, where.namespace, where.name);
    const problem = volumeRequestProblem(recordsAt(current, 'spec', 'template', 'spec', 'volumes'), request);
    if (problem !== undefined) throw vmConflict(problem);
    const pending = recordsAt(current, 'status', 'volumeRequests');
    const pendingProblem = pendingRequestProblem(pending, request);
    if (pendingProblem !== undefined) throw vmConflict(pendingProblem);
    const next = structuredClone(current);
    next.status = { ...(recordAt(current, 'status') ?? {}), volumeRequests: [...pending, toRequest(request)] };
    vm = (await context.objects.replace(defs.vm, current, next, { subresource: 'status', writer: 'user', dryRun: request.dryRun })).object;
  });
  if (request.dryRun || vm === undefined) return;
  await applyToVm(context, where, request);
}

/** The VM controller's share: the template, the running VMI (its template hash kept current, so no restart is asked for), then the request cleared. */
async function applyToVm(context: SubresourceContext, where: { namespace: string; name: string }, request: AddVolumeOptions | RemoveVolumeOptions): Promise<void> {
  const defs = kubevirtDefs(context.registry);
  let hashes: { before: string; after: string } | undefined;
  await withRetry(async () => {
    const vm = await context.objects.get(defs.vm, where.namespace, where.name);
    const template = recordAt(vm, 'spec', 'template') ?? {};
    const templateSpec = recordAt(template, 'spec') ?? {};
    if (volumeRequestProblem(recordsAt(templateSpec, 'volumes'), request) !== undefined) return; // Already applied.
    const next = structuredClone(vm);
    next.spec = { ...(recordAt(vm, 'spec') ?? {}), template: { ...template, spec: applyVolumeRequest(templateSpec, request) } };
    const written = (await context.objects.replace(defs.vm, vm, next, { writer: 'controller' })).object;
    hashes = { before: templateHash(vm), after: templateHash(written) };
  });
  await withRetry(async () => {
    const vmi = await context.objects.tryGet(defs.vmi, where.namespace, where.name);
    if (vmi === undefined || isFinal(vmi) || vmiPhase(vmi) !== 'Running') return;
    if (volumeRequestProblem(recordsAt(vmi, 'spec', 'volumes'), request) !== undefined) return;
    const next = structuredClone(vmi);
    next.spec = applyVolumeRequest(recordAt(vmi, 'spec') ?? {}, request);
    const annotations = { ...(vmi.metadata.annotations ?? {}) };
    if (hashes !== undefined && annotations[vmiAnnotations.templateHash] === hashes.before) annotations[vmiAnnotations.templateHash] = hashes.after;
    next.metadata = { ...next.metadata, annotations };
    await context.objects.replace(defs.vmi, vmi, next, { writer: 'controller' });
  });
  await withRetry(async () => {
    const vm = await context.objects.get(defs.vm, where.namespace, where.name);
    const pending = recordsAt(vm, 'status', 'volumeRequests');
    const mine = JSON.stringify(toRequest(request));
    const rest = pending.filter((r) => JSON.stringify(r) !== mine);
    if (rest.length === pending.length) return;
    const next = structuredClone(vm);
    const status = { ...(recordAt(vm, 'status') ?? {}) };
    if (rest.length === 0) delete status.volumeRequests;
    else status.volumeRequests = rest;
    next.status = status;
    await context.objects.replace(defs.vm, vm, next, { subresource: 'status', writer: 'controller' });
  });
}
