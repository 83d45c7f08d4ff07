/**
 * Instancetypes and preferences at VM start, as KubeVirt's instancetype
 * controller does them: find the referenced objects (a missing one is a
 * `Failure` condition, not a VMI), then expand the instancetype into the VMI
 * spec — guest CPUs laid out by the preference's topology, guest memory —
 * refusing where the template already set what the instancetype owns, and
 * finally fill the preference's defaults.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { at, has, numberAt, recordAt, stringAt } from '../../api/kinds/read.js';
import { parseQuantity } from '../../api/validation/index.js';
import { clusterNetworkConfigOf, setDefaultNetworkInterface } from '../../api/kinds/pod-network-default.js';
import type { ClusterNetworkConfig } from '../../api/kinds/pod-network-default.js';
import type { Client, ResourceRef } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { errorMessage } from '../vmi/index.js';
import { applyPreference, guestTopology } from './preference.js';
import type { MatcherRef, SyncError } from './status.js';
import { ensureRecord } from './vmi-builder.js';

type Json = Record<string, unknown>;

/** What a VM's matchers resolved to. */
export interface Resolved {
  instancetype: { ref: MatcherRef; spec: Json } | undefined;
  preference: { ref: MatcherRef; spec: Json } | undefined;
  /** The cluster's network configuration, read with a preference: the pod network is defaulted before it applies (KubeVirt's expansion). */
  network?: ClusterNetworkConfig;
}

interface Target {
  ref: ResourceRef;
  kind: string;
  namespaced: boolean;
  /** The VMI annotation naming it. */
  annotation: string;
}

const targets: Record<'instancetype' | 'preference', { namespaced: Target; cluster: Target }> = {
  instancetype: {
    namespaced: { ref: resources.instancetypes, kind: 'VirtualMachineInstancetype', namespaced: true, annotation: 'kubevirt.io/instancetype-name' },
    cluster: { ref: resources.clusterInstancetypes, kind: 'VirtualMachineClusterInstancetype', namespaced: false, annotation: 'kubevirt.io/cluster-instancetype-name' },
  },
  preference: {
    namespaced: { ref: resources.preferences, kind: 'VirtualMachinePreference', namespaced: true, annotation: 'kubevirt.io/preference-name' },
    cluster: { ref: resources.clusterPreferences, kind: 'VirtualMachineClusterPreference', namespaced: false, annotation: 'kubevirt.io/cluster-preference-name' },
  },
};

function targetOf(field: 'instancetype' | 'preference', kind: string): Target {
  // The cluster-wide kind is the default when the matcher names none.
  return kind.toLowerCase().startsWith(field === 'instancetype' ? 'virtualmachineinstancetype' : 'virtualmachinepreference') ? targets[field].namespaced : targets[field].cluster;
}

/**
 * Finds the instancetype and preference `vm` names. A missing one, or a
 * matcher that cannot be resolved, is a `SyncError` with KubeVirt's
 * reasons (`FailedFindInstancetype`, `FailedFindPreference`).
 */
export async function resolveMatchers(client: Client, vm: KObject): Promise<Resolved | SyncError> {
  const out: Resolved = { instancetype: undefined, preference: undefined };
  for (const field of ['instancetype', 'preference'] as const) {
    const matcher = recordAt(vm, 'spec', field);
    if (matcher === undefined) continue;
    const reason = field === 'instancetype' ? 'FailedFindInstancetype' : 'FailedFindPreference';
    const name = stringAt(matcher, 'name') ?? '';
    if (name === '') {
      const volume = stringAt(matcher, 'inferFromVolume');
      const why = volume === undefined ? 'the matcher names none' : `inferring it from volume ${JSON.stringify(volume)} needs PVC and DataVolume support, which Vireo does not have yet`;
      return { reason, message: `cannot find the ${field} of VM ${vm.metadata.name ?? ''}: ${why}; set spec.${field}.name`, terminal: true };
    }
    const target = targetOf(field, stringAt(matcher, 'kind') ?? '');
    let found: KObject | undefined;
    try {
      found = await client.tryGet(target.ref, target.namespaced ? vm.metadata.namespace : undefined, name);
    } catch (err) {
      return { reason, message: `could not read ${target.kind} ${JSON.stringify(name)}: ${errorMessage(err)}`, terminal: err instanceof ApiError && err.isUserError };
    }
    if (found === undefined) {
      const plural = `${target.ref.plural}.${target.ref.group}`;
      // Not terminal: it may be created later, and the retries (with backoff) will find it.
      return { reason, message: `${plural} "${name}" not found: create it, or point spec.${field} at an existing ${target.kind}`, terminal: false };
    }
    out[field] = { ref: { kind: target.kind, name }, spec: recordAt(found, 'spec') ?? {} };
  }
  if (out.preference !== undefined) out.network = await clusterNetworkConfig(client);
  return out;
}

/** The KubeVirt CR's network configuration (the oldest CR), KubeVirt's defaults when there is none or it cannot be read. */
async function clusterNetworkConfig(client: Client): Promise<ClusterNetworkConfig> {
  try {
    const list = await client.list(resources.kubeVirts);
    const oldest = [...list.items].sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''))[0];
    return clusterNetworkConfigOf(oldest);
  } catch {
    return clusterNetworkConfigOf(undefined);
  }
}

/**
 * Expands `resolved` into `vmi` (spec and annotations). Returns the template
 * fields that conflict with the instancetype (nothing is applied then).
 */
export function applyMatchers(resolved: Resolved, vmi: KObject): string[] {
  const spec = isRecord(vmi.spec) ? vmi.spec : {};
  vmi.spec = spec;
  const vmiAnnotations = { ...vmi.metadata.annotations };
  const base = 'spec.template.spec';
  if (resolved.instancetype !== undefined) {
    const it = resolved.instancetype.spec;
    const conflicts = [
      ...copyExclusive(it, 'nodeSelector', spec, 'nodeSelector', base),
      ...copyExclusive(it, 'schedulerName', spec, 'schedulerName', base),
      ...applyCpu(it, resolved.preference?.spec, spec, base),
      ...applyMemory(it, spec, base),
      ...copyExclusive(it, 'ioThreadsPolicy', ensureRecord(spec, 'domain'), 'ioThreadsPolicy', `${base}.domain`),
      ...copyExclusive(it, 'ioThreads', ensureRecord(spec, 'domain'), 'ioThreads', `${base}.domain`),
      ...copyExclusive(it, 'launchSecurity', ensureRecord(spec, 'domain'), 'launchSecurity', `${base}.domain`),
      ...copyExclusive(it, 'gpus', devicesOf(spec), 'gpus', `${base}.domain.devices`),
      ...copyExclusive(it, 'hostDevices', devicesOf(spec), 'hostDevices', `${base}.domain.devices`),
    ];
    for (const [key, value] of Object.entries(recordAt(it, 'annotations') ?? {})) {
      if (typeof value !== 'string') continue;
      if (vmiAnnotations[key] !== undefined && vmiAnnotations[key] !== value) conflicts.push(`spec.template.metadata.annotations.${key}`);
      else vmiAnnotations[key] = value;
    }
    if (conflicts.length > 0) return conflicts;
    vmiAnnotations[targetOf('instancetype', resolved.instancetype.ref.kind).annotation] = resolved.instancetype.ref.name;
  }
  if (resolved.preference !== undefined) {
    // As KubeVirt expands a VM: the default pod network first, so the preference's interface model applies to it.
    // A default the cluster refuses is left to the VMI's admission, which says why.
    if (resolved.network !== undefined) setDefaultNetworkInterface(base, spec, resolved.network);
    applyPreference(resolved.preference.spec, spec, vmiAnnotations);
    vmiAnnotations[targetOf('preference', resolved.preference.ref.kind).annotation] = resolved.preference.ref.name;
  }
  vmi.metadata.annotations = vmiAnnotations;
  return [];
}

/** Where {@link expandedTemplateSpec} finds instancetypes and preferences: by kind and `namespace/name` (or name, cluster-wide). */
export type MatcherLookup = (kind: 'instancetype' | 'clusterInstancetype' | 'preference' | 'clusterPreference', key: string) => KObject | undefined;

/**
 * `vm`'s template spec with its instancetype and preference applied (a copy;
 * `vm` is left alone), from objects at hand rather than the API: for readers
 * such as the metrics that want what the VM asks for. Undefined when a
 * matcher's object is not found or conflicts with the template.
 */
export function expandedTemplateSpec(vm: KObject, lookup: MatcherLookup): Json | undefined {
  const template = recordAt(vm, 'spec', 'template', 'spec');
  if (template === undefined) return undefined;
  const resolved: Resolved = { instancetype: undefined, preference: undefined };
  for (const field of ['instancetype', 'preference'] as const) {
    const name = stringAt(vm, 'spec', field, 'name');
    if (name === undefined) continue;
    const target = targetOf(field, stringAt(vm, 'spec', field, 'kind') ?? '');
    const kind = target.namespaced ? field : field === 'instancetype' ? 'clusterInstancetype' : 'clusterPreference';
    const found = lookup(kind, target.namespaced ? `${vm.metadata.namespace ?? ''}/${name}` : name);
    if (found === undefined) return undefined;
    resolved[field] = { ref: { kind: target.kind, name }, spec: recordAt(found, 'spec') ?? {} };
  }
  const copy: KObject = { apiVersion: vm.apiVersion, kind: 'VirtualMachineInstance', metadata: {}, spec: structuredClone(template) };
  return applyMatchers(resolved, copy).length === 0 && isRecord(copy.spec) ? copy.spec : undefined;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function devicesOf(spec: Json): Json {
  return ensureRecord(ensureRecord(spec, 'domain'), 'devices');
}

/** Copies `from[key]` to `to[toKey]`; a conflict when both have one. */
function copyExclusive(from: Json, key: string, to: Json, toKey: string, path: string): string[] {
  if (!has(from, key)) return [];
  if (has(to, toKey)) return [`${path}.${toKey}`];
  to[toKey] = structuredClone(from[key]);
  return [];
}

/** Instancetype CPU fields and where they go in the VMI's `domain.cpu` (the instancetype spells one differently). */
const cpuFields = [
  ['model', 'model'],
  ['dedicatedCPUPlacement', 'dedicatedCpuPlacement'],
  ['isolateEmulatorThread', 'isolateEmulatorThread'],
  ['numa', 'numa'],
  ['realtime', 'realtime'],
] as const;

function applyCpu(it: Json, preference: Json | undefined, spec: Json, base: string): string[] {
  const domain = ensureRecord(spec, 'domain');
  const cpu = ensureRecord(domain, 'cpu');
  const conflicts: string[] = [];
  if (has(domain, 'resources', 'requests', 'cpu')) conflicts.push(`${base}.domain.resources.requests.cpu`);
  if (has(domain, 'resources', 'limits', 'cpu')) conflicts.push(`${base}.domain.resources.limits.cpu`);
  for (const field of ['sockets', 'cores', 'threads']) if ((numberAt(cpu, field) ?? 0) !== 0) conflicts.push(`${base}.domain.cpu.${field}`);
  for (const [from, to] of cpuFields) {
    const value = cpu[to];
    if (has(it, 'cpu', from) && value !== undefined && value !== false && value !== '') conflicts.push(`${base}.domain.cpu.${to}`);
  }
  if (conflicts.length > 0) return conflicts;
  for (const [from, to] of [...cpuFields, ['maxSockets', 'maxSockets'] as const]) {
    const value = at(it, 'cpu', from);
    if (value !== undefined && value !== null) cpu[to] = structuredClone(value);
  }
  Object.assign(cpu, guestTopology(numberAt(it, 'cpu', 'guest') ?? 1, preference));
  return [];
}

function applyMemory(it: Json, spec: Json, base: string): string[] {
  const domain = ensureRecord(spec, 'domain');
  const memory = ensureRecord(domain, 'memory');
  const hasBoth = (field: string): boolean => has(memory, field) && has(it, 'memory', field);
  if (has(memory, 'guest')) return [`${base}.domain.memory.guest`];
  if (hasBoth('hugepages')) return [`${base}.domain.memory.hugepages`];
  if (hasBoth('maxGuest')) return [`${base}.domain.memory.maxGuest`];
  if (has(domain, 'resources', 'requests', 'memory')) return [`${base}.domain.resources.requests.memory`];
  if (has(domain, 'resources', 'limits', 'memory')) return [`${base}.domain.resources.limits.memory`];
  const guest = at(it, 'memory', 'guest');
  if (guest !== undefined) memory.guest = structuredClone(guest);
  const overcommit = numberAt(it, 'memory', 'overcommitPercent') ?? 0;
  const guestBytes = parseQuantity(guest);
  if (overcommit > 0 && guestBytes !== undefined) {
    // Overcommit asks the node for less than the guest sees.
    const requests = ensureRecord(ensureRecord(domain, 'resources'), 'requests');
    requests.memory = String(Math.floor(guestBytes * (1 - overcommit / 100)));
  }
  for (const field of ['hugepages', 'maxGuest']) {
    const value = at(it, 'memory', field);
    if (value !== undefined) memory[field] = structuredClone(value);
  }
  return [];
}
