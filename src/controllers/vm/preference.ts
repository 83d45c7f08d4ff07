/**
 * A VirtualMachine(Cluster)Preference applied to a VMI spec, as KubeVirt's
 * `preference/apply` does it: every `preferred*` value fills in what the
 * VM's template left unset, and never overrides what it set.
 */
import { isPlainObject } from '../../api/object.js';
import { at, recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';
import { ensureRecord } from './vmi-builder.js';

type Json = Record<string, unknown>;

/** CPU topologies a preference may prefer (v1beta1 names and their deprecated `prefer*` forms). */
type Topology = 'sockets' | 'cores' | 'threads' | 'spread';

const topologies: Record<string, Topology> = {
  preferSockets: 'sockets',
  sockets: 'sockets',
  preferAny: 'sockets',
  any: 'sockets',
  preferCores: 'cores',
  cores: 'cores',
  preferThreads: 'threads',
  threads: 'threads',
  preferSpread: 'spread',
  spread: 'spread',
};

/**
 * The guest topology for `vcpus` vCPUs under `preference` (KubeVirt's
 * `applyGuestCPUTopology`): all in sockets unless the preference says
 * otherwise; `spread` splits by a ratio (default 2) across sockets and cores.
 */
export function guestTopology(vcpus: number, preference: Json | undefined): { sockets: number; cores: number; threads: number } {
  const topology = { sockets: 1, cores: 1, threads: 1 };
  if (vcpus <= 1) return topology;
  const preferred = topologies[stringAt(preference, 'cpu', 'preferredCPUTopology') ?? 'sockets'] ?? 'sockets';
  if (preferred !== 'spread') {
    topology[preferred] = vcpus;
    return topology;
  }
  const legacyRatio = at(preference, 'preferSpreadSocketToCoreRatio');
  const ratioValue = at(preference, 'cpu', 'spreadOptions', 'ratio') ?? (typeof legacyRatio === 'number' && legacyRatio > 0 ? legacyRatio : 2);
  const ratio = typeof ratioValue === 'number' && ratioValue > 0 ? ratioValue : 2;
  const across = stringAt(preference, 'cpu', 'spreadOptions', 'across') ?? 'SocketsCores';
  if (across === 'CoresThreads') return { sockets: 1, cores: Math.floor(vcpus / ratio), threads: ratio };
  if (across === 'SocketsCoresThreads') return { sockets: Math.floor(vcpus / 2 / ratio), cores: ratio, threads: 2 };
  return { sockets: Math.floor(vcpus / ratio), cores: ratio, threads: 1 };
}

/** Applies `preference` (a preference's `spec`) to `spec` and `vmiAnnotations`. */
export function applyPreference(preference: Json, spec: Json, vmiAnnotations: Record<string, string>): void {
  const domain = ensureRecord(spec, 'domain');
  applyCpuFeatures(preference, domain);
  applyDevices(preference, spec, domain);
  applyFeatures(preference, domain);
  applyFirmware(preference, domain);
  const machineType = stringAt(preference, 'machine', 'preferredMachineType');
  if (machineType !== undefined && stringAt(domain, 'machine', 'type') === undefined) ensureRecord(domain, 'machine').type = machineType;
  applyClock(preference, domain);
  fill(spec, 'subdomain', at(preference, 'preferredSubdomain'));
  fill(spec, 'terminationGracePeriodSeconds', at(preference, 'preferredTerminationGracePeriodSeconds'));
  fill(spec, 'architecture', at(preference, 'preferredArchitecture'));
  for (const [key, value] of Object.entries(recordAt(preference, 'annotations') ?? {})) {
    if (typeof value === 'string' && vmiAnnotations[key] === undefined) vmiAnnotations[key] = value;
  }
}

/** Sets `target[key]` to a copy of `value` when the target has nothing there and the preference has something. */
function fill(target: Json, key: string, value: unknown): void {
  if (value === undefined || value === null || value === '') return;
  const current = target[key];
  if (current !== undefined && current !== null && current !== '') return;
  target[key] = structuredClone(value);
}

function applyCpuFeatures(preference: Json, domain: Json): void {
  const preferred = recordsAt(preference, 'cpu', 'preferredCPUFeatures');
  if (preferred.length === 0) return;
  const cpu = ensureRecord(domain, 'cpu');
  const features = recordsAt(cpu, 'features');
  const names = new Set(features.map((f) => f.name));
  cpu.features = [...features, ...preferred.filter((f) => !names.has(f.name)).map((f) => structuredClone(f))];
}

const autoattach: [string, string][] = [
  ['preferredAutoattachGraphicsDevice', 'autoattachGraphicsDevice'],
  ['preferredAutoattachMemBalloon', 'autoattachMemBalloon'],
  ['preferredAutoattachPodInterface', 'autoattachPodInterface'],
  ['preferredAutoattachSerialConsole', 'autoattachSerialConsole'],
  ['preferredAutoattachInputDevice', 'autoattachInputDevice'],
  ['preferredUseVirtioTransitional', 'useVirtioTransitional'],
  ['preferredBlockMultiQueue', 'blockMultiQueue'],
  ['preferredNetworkInterfaceMultiQueue', 'networkInterfaceMultiqueue'],
  ['preferredRng', 'rng'],
  ['preferredTPM', 'tpm'],
];

function applyDevices(preference: Json, spec: Json, domain: Json): void {
  const prefs = recordAt(preference, 'devices');
  if (prefs === undefined) return;
  const devices = ensureRecord(domain, 'devices');
  for (const [from, to] of autoattach) fill(devices, to, prefs[from]);
  // KubeVirt cannot tell an unset disableHotplug from false, so the preference wins.
  if (typeof prefs.preferredDisableHotplug === 'boolean') devices.disableHotplug = prefs.preferredDisableHotplug;
  if (typeof prefs.preferredSoundModel === 'string' && isPlainObject(devices.sound)) fill(devices.sound, 'model', prefs.preferredSoundModel);
  if (typeof prefs.preferredVideoType === 'string') fill(ensureRecord(devices, 'video'), 'type', prefs.preferredVideoType);
  applyDisks(prefs, devices);
  applyInterfaces(prefs, spec, devices);
  for (const input of recordsAt(devices, 'inputs')) {
    fill(input, 'bus', prefs.preferredInputBus);
    fill(input, 'type', prefs.preferredInputType);
  }
}

function applyDisks(prefs: Json, devices: Json): void {
  for (const disk of recordsAt(devices, 'disks')) {
    if (!isPlainObject(disk.disk) && !isPlainObject(disk.cdrom) && !isPlainObject(disk.lun)) disk.disk = {};
    if (isPlainObject(disk.disk)) {
      fill(disk.disk, 'bus', prefs.preferredDiskBus);
      fill(disk, 'blockSize', prefs.preferredDiskBlockSize);
      fill(disk, 'cache', prefs.preferredDiskCache);
      fill(disk, 'io', prefs.preferredDiskIO);
      if (disk.disk.bus === 'virtio') fill(disk, 'dedicatedIOThread', prefs.preferredDiskDedicatedIoThread);
    } else if (isPlainObject(disk.cdrom)) {
      fill(disk.cdrom, 'bus', prefs.preferredCdromBus);
    } else if (isPlainObject(disk.lun)) {
      fill(disk.lun, 'bus', prefs.preferredLunBus);
    }
  }
}

const bindings = ['bridge', 'slirp', 'masquerade', 'sriov', 'macvtap', 'passt', 'binding'];

function applyInterfaces(prefs: Json, spec: Json, devices: Json): void {
  const podNetworks = new Set(recordsAt(spec, 'networks').filter((n) => isPlainObject(n.pod)).map((n) => n.name));
  for (const iface of recordsAt(devices, 'interfaces')) {
    fill(iface, 'model', prefs.preferredInterfaceModel);
    const unbound = !bindings.some((b) => iface[b] !== undefined);
    if (unbound && podNetworks.has(iface.name)) fill(iface, 'masquerade', prefs.preferredInterfaceMasquerade);
  }
}

function applyFeatures(preference: Json, domain: Json): void {
  const prefs = recordAt(preference, 'features');
  if (prefs === undefined) return;
  const features = ensureRecord(domain, 'features');
  // KubeVirt cannot tell an unset ACPI from the default, so the preference wins.
  if (isPlainObject(prefs.preferredAcpi)) features.acpi = structuredClone(prefs.preferredAcpi);
  fill(features, 'apic', prefs.preferredApic);
  fill(features, 'kvm', prefs.preferredKvm);
  fill(features, 'pvspinlock', prefs.preferredPvspinlock);
  fill(features, 'smm', prefs.preferredSmm);
  if (isPlainObject(prefs.preferredHyperv)) {
    const hyperv = ensureRecord(features, 'hyperv');
    for (const [key, value] of Object.entries(prefs.preferredHyperv)) fill(hyperv, key, value);
  }
}

function applyFirmware(preference: Json, domain: Json): void {
  const prefs = recordAt(preference, 'firmware');
  if (prefs === undefined) return;
  const bootloader = ensureRecord(ensureRecord(domain, 'firmware'), 'bootloader');
  const none = (): boolean => !isPlainObject(bootloader.bios) && !isPlainObject(bootloader.efi);
  if (prefs.preferredUseBios === true && none()) bootloader.bios = {};
  if (typeof prefs.preferredUseBiosSerial === 'boolean' && isPlainObject(bootloader.bios)) fill(bootloader.bios, 'useSerial', prefs.preferredUseBiosSerial);
  if (isPlainObject(prefs.preferredEfi) && none()) {
    bootloader.efi = structuredClone(prefs.preferredEfi);
    return;
  }
  if (prefs.preferredUseEfi === true && none()) bootloader.efi = {};
  if (typeof prefs.preferredUseSecureBoot === 'boolean' && isPlainObject(bootloader.efi)) fill(bootloader.efi, 'secureBoot', prefs.preferredUseSecureBoot);
}

function applyClock(preference: Json, domain: Json): void {
  const prefs = recordAt(preference, 'clock');
  if (prefs === undefined) return;
  const clock = ensureRecord(domain, 'clock');
  const offset = recordAt(prefs, 'preferredClockOffset');
  // Offsets are all-or-nothing: only when the template set neither utc nor timezone.
  if (offset !== undefined && clock.utc === undefined && clock.timezone === undefined) Object.assign(clock, structuredClone(offset));
  fill(clock, 'timer', prefs.preferredTimer);
}
