/**
 * The VMI a VirtualMachine starts (KubeVirt's `SetupVMIFromVM`): the
 * template's metadata and spec under the VM's name, a controller reference
 * to the VM, a firmware UUID that stays the same across restarts, a disk
 * for every volume that has none, and the annotations that tie the VMI to
 * the VM generation and template it came from.
 */
import { createHash } from 'node:crypto';
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { asRecord, booleanAt, recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { canonicalJson, controllerRefTo, kubevirtApiVersion } from '../vmi/index.js';

/** Annotations the VM controller puts on the VMIs it creates. */
export const annotations = {
  /** The VM generation the VMI reflects (KubeVirt's `VirtualMachineGenerationAnnotation`). */
  vmGeneration: 'kubevirt.io/vm-generation',
  /** Hash of the VM template the VMI was made from: a different hash means RestartRequired. */
  templateHash: 'vireo.io/vm-template-hash',
} as const;

/** KubeVirt's namespace for firmware UUIDs derived from the VM name (`CalculateLegacyUUID`). */
const firmwareUuidNamespace = '6a1a24a1-4061-4607-8bf4-a3963d0c5895';

/** A name-based (version 5, SHA-1) UUID, as `uuid.NewSHA1`. */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name).digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What a running VMI depends on in its VM: the template and the instancetype/preference it names. */
export function templateHash(vm: KObject): string {
  const spec = recordAt(vm, 'spec') ?? {};
  const basis = { template: spec.template, instancetype: spec.instancetype, preference: spec.preference };
  return createHash('sha256').update(canonicalJson(basis)).digest('hex').slice(0, 16);
}

/** How {@link buildVmi} shapes the VMI beyond the template. */
export interface BuildOptions {
  /** Start the guest paused (`startStrategy: Paused`), as a start request with `paused: "true"` asks. */
  paused: boolean;
}

/** The VMI to create for `vm`, before instancetype and preference are applied. */
export function buildVmi(vm: KObject, options: BuildOptions): KObject {
  const template = recordAt(vm, 'spec', 'template') ?? {};
  const meta = recordAt(template, 'metadata') ?? {};
  const spec = structuredClone(recordAt(template, 'spec') ?? {});
  if (options.paused) spec.startStrategy = 'Paused';
  setStableFirmwareUuid(spec, vm.metadata.name ?? '');
  addDefaultDisks(spec);
  addDefaultInput(spec);
  const labels = stringMap(meta.labels);
  const vmiAnnotations = {
    ...stringMap(meta.annotations),
    [annotations.vmGeneration]: String(vm.metadata.generation ?? 1),
    [annotations.templateHash]: templateHash(vm),
  };
  return {
    apiVersion: kubevirtApiVersion,
    kind: 'VirtualMachineInstance',
    metadata: {
      name: vm.metadata.name ?? '',
      namespace: vm.metadata.namespace ?? 'default',
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
      annotations: vmiAnnotations,
      ownerReferences: [controllerRefTo(vm)],
    },
    spec,
  };
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(asRecord(value) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

/** The SMBIOS UUID stays the same across restarts, so guests keep their identity. */
function setStableFirmwareUuid(spec: Record<string, unknown>, vmName: string): void {
  const domain = ensureRecord(spec, 'domain');
  const firmware = ensureRecord(domain, 'firmware');
  if (typeof firmware.uuid !== 'string' || firmware.uuid === '') firmware.uuid = uuidV5(firmwareUuidNamespace, vmName);
}

/** Every volume without a disk or filesystem of its name gets a plain disk (KubeVirt's `SetDefaultVolumeDisk`). */
function addDefaultDisks(spec: Record<string, unknown>): void {
  const devices = ensureRecord(ensureRecord(spec, 'domain'), 'devices');
  const named = new Set<string>();
  for (const d of recordsAt(devices, 'disks')) if (typeof d.name === 'string') named.add(d.name);
  for (const f of recordsAt(devices, 'filesystems')) if (typeof f.name === 'string') named.add(f.name);
  const missing = recordsAt(spec, 'volumes')
    .map((v) => stringAt(v, 'name'))
    .filter((name): name is string => name !== undefined && !named.has(name));
  if (missing.length === 0) return;
  const disks = Array.isArray(devices.disks) ? (devices.disks as unknown[]) : [];
  devices.disks = [...disks, ...missing.map((name) => ({ name }))];
}

/** `autoattachInputDevice: true` without inputs adds one (KubeVirt's `AutoAttachInputDevice`). */
function addDefaultInput(spec: Record<string, unknown>): void {
  const devices = ensureRecord(ensureRecord(spec, 'domain'), 'devices');
  if (booleanAt(devices, 'autoattachInputDevice') !== true) return;
  if (Array.isArray(devices.inputs) && devices.inputs.length > 0) return;
  devices.inputs = [{ name: 'default-0' }];
}

/** Inputs without a type or bus get KubeVirt's defaults (a USB tablet), once preferences had their say. */
export function defaultInputs(spec: Record<string, unknown>): void {
  for (const input of recordsAt(spec, 'domain', 'devices', 'inputs')) {
    if (typeof input.type !== 'string' || input.type === '') input.type = 'tablet';
    if (typeof input.bus !== 'string' || input.bus === '') input.bus = 'usb';
  }
}

/** The record at `parent[key]`, created when absent. */
export function ensureRecord(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const existing = parent[key];
  if (isPlainObject(existing)) return existing;
  const created: Record<string, unknown> = {};
  parent[key] = created;
  return created;
}
