/**
 * virt-controller's object-level metric families, computed from the
 * objects the informers hold (pure: objects in, samples out), with
 * KubeVirt's names, label sets and meanings: `kubevirt_vmi_info`,
 * `kubevirt_vmi_non_evictable`, `kubevirt_vmi_migration_{start,end}_time_seconds`,
 * `kubevirt_vmi_number_of_outdated`, `kubevirt_vm_info`,
 * `kubevirt_vmi_migrations_in_{pending,scheduling,running,unset}_phase`,
 * `kubevirt_vmi_migration_{succeeded,failed}`; and one Vireo addition,
 * `kubevirt_vmi_migration_downtime_seconds{namespace,vmi,vmim}`, the guest's
 * downtime QEMU measured for a succeeded migration (issue 7; KubeVirt has
 * no such family).
 */
import type { KObject } from '../../api/object.js';
import { booleanAt, has, recordsAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import { migratesOnEviction } from '../../api/kinds/eviction.js';
import { downtimeAnnotation } from '../migration/index.js';

/** One series of a family: its labels and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** A gauge family's definition, as KubeVirt declares it. */
export interface FamilyDef {
  name: string;
  help: string;
  labelNames: readonly string[];
}

export const objectFamilies = {
  vmiInfo: { name: 'kubevirt_vmi_info', help: 'Information about VirtualMachineInstances.', labelNames: ['node', 'namespace', 'name', 'phase', 'os', 'workload', 'flavor', 'instance_type', 'preference', 'guest_os_kernel_release', 'guest_os_machine', 'guest_os_arch', 'guest_os_name', 'guest_os_version_id', 'evictable', 'outdated', 'vmi_pod'] },
  nonEvictable: { name: 'kubevirt_vmi_non_evictable', help: 'Indication for a VirtualMachine that its eviction strategy is set to Live Migration but is not migratable.', labelNames: ['node', 'namespace', 'name'] },
  migrationStart: { name: 'kubevirt_vmi_migration_start_time_seconds', help: 'The time at which the migration started.', labelNames: ['node', 'namespace', 'name', 'migration_name'] },
  migrationEnd: { name: 'kubevirt_vmi_migration_end_time_seconds', help: 'The time at which the migration ended.', labelNames: ['node', 'namespace', 'name', 'migration_name', 'status'] },
  outdated: { name: 'kubevirt_vmi_number_of_outdated', help: 'Indication for the total number of VirtualMachineInstance workloads that are not running within the most up-to-date version of the virt-launcher environment.', labelNames: [] },
  vmInfo: { name: 'kubevirt_vm_info', help: 'Information about Virtual Machines.', labelNames: ['name', 'namespace', 'os', 'workload', 'flavor', 'machine_type', 'instance_type', 'preference', 'status', 'status_group'] },
  pendingMigrations: { name: 'kubevirt_vmi_migrations_in_pending_phase', help: 'Number of current pending migrations.', labelNames: [] },
  schedulingMigrations: { name: 'kubevirt_vmi_migrations_in_scheduling_phase', help: 'Number of current scheduling migrations.', labelNames: [] },
  unsetMigrations: { name: 'kubevirt_vmi_migrations_in_unset_phase', help: 'Number of current unset migrations. These are pending items the virt-controller has not processed yet from the queue.', labelNames: [] },
  runningMigrations: { name: 'kubevirt_vmi_migrations_in_running_phase', help: 'Number of current running migrations.', labelNames: [] },
  migrationSucceeded: { name: 'kubevirt_vmi_migration_succeeded', help: 'Indicates if the VMI migration succeeded.', labelNames: ['vmi', 'vmim', 'namespace'] },
  migrationFailed: { name: 'kubevirt_vmi_migration_failed', help: 'Indicates if the VMI migration failed.', labelNames: ['vmi', 'vmim', 'namespace'] },
  migrationDowntime: { name: 'kubevirt_vmi_migration_downtime_seconds', help: 'The downtime of the guest during a succeeded migration, as QEMU measured it (Vireo; KubeVirt has no such metric).', labelNames: ['namespace', 'vmi', 'vmim'] },
} as const satisfies Record<string, FamilyDef>;

export type ObjectFamily = keyof typeof objectFamilies;

/** What the families are computed from: the informers' objects. */
export interface ObjectSnapshot {
  vms: readonly KObject[];
  vmis: readonly KObject[];
  migrations: readonly KObject[];
  /** The cluster's KubeVirt CR (its eviction strategy), if any. */
  kubevirt: KObject | undefined;
  /** An instancetype or preference by kind and `namespace/name` (or name, cluster-wide), for the vendor rule. */
  instancetypeLike(kind: InstancetypeKind, key: string): KObject | undefined;
}

export type InstancetypeKind = 'instancetype' | 'clusterInstancetype' | 'preference' | 'clusterPreference';

/** KubeVirt names only instancetypes of these vendors; others are `<other>` (no user names in metrics). */
const namedVendors = new Set(['kubevirt.io', 'redhat.com']);
const vendorLabel = 'instancetype.kubevirt.io/vendor';
const annotationPrefix = 'vm.kubevirt.io/';
const outdatedLabel = 'kubevirt.io/outdatedLauncherImage';

const migrationRunningPhases = new Set(['Running', 'Scheduled', 'PreparingTarget', 'TargetReady', 'WaitingForSync', 'Synchronizing']);

const vmStatusGroups: [string, readonly string[]][] = [
  ['starting', ['Provisioning', 'Starting', 'WaitingForVolumeBinding']],
  ['running', ['Running']],
  ['migrating', ['Migrating']],
  ['non_running', ['Stopped', 'Paused', 'Stopping', 'Terminating']],
  ['error', ['CrashLoopBackOff', 'Unknown', 'ErrorUnschedulable', 'ErrImagePull', 'ImagePullBackOff', 'ErrorPvcNotFound', 'DataVolumeError']],
];

/** Every family's samples. */
export function objectSamples(objects: ObjectSnapshot): Record<ObjectFamily, Sample[]> {
  const out: Record<ObjectFamily, Sample[]> = {
    vmiInfo: [], nonEvictable: [], migrationStart: [], migrationEnd: [], outdated: [], vmInfo: [],
    pendingMigrations: [], schedulingMigrations: [], unsetMigrations: [], runningMigrations: [], migrationSucceeded: [], migrationFailed: [], migrationDowntime: [],
  };
  const migrationNames = new Map(objects.migrations.map((m) => [m.metadata.uid ?? '', m.metadata.name ?? '']));
  let outdated = 0;
  for (const vmi of objects.vmis) {
    const node = stringAt(vmi, 'status', 'nodeName') ?? '';
    const namespace = vmi.metadata.namespace ?? '';
    const name = vmi.metadata.name ?? '';
    const annotations = vmi.metadata.annotations ?? {};
    const evictable = isEvictable(vmi, objects.kubevirt);
    const isOutdated = (vmi.metadata.labels ?? {})[outdatedLabel] !== undefined;
    if (isOutdated) outdated++;
    out.vmiInfo.push({
      labels: {
        node, namespace, name,
        phase: (stringAt(vmi, 'status', 'phase') ?? '').toLowerCase(),
        os: annotations[`${annotationPrefix}os`] ?? '',
        workload: annotations[`${annotationPrefix}workload`] ?? '',
        flavor: annotations[`${annotationPrefix}flavor`] ?? '',
        instance_type: instancetypeLabel(objects, namespace, annotations, 'kubevirt.io/instancetype-name', 'kubevirt.io/cluster-instancetype-name', 'instancetype', 'clusterInstancetype'),
        preference: instancetypeLabel(objects, namespace, annotations, 'kubevirt.io/preference-name', 'kubevirt.io/cluster-preference-name', 'preference', 'clusterPreference'),
        guest_os_kernel_release: stringAt(vmi, 'status', 'guestOSInfo', 'kernelRelease') ?? '',
        // KubeVirt's own mapping: the machine type here, the guest's architecture under guest_os_arch.
        guest_os_machine: stringAt(vmi, 'status', 'machine', 'type') ?? '',
        guest_os_arch: stringAt(vmi, 'status', 'guestOSInfo', 'machine') ?? '',
        guest_os_name: stringAt(vmi, 'status', 'guestOSInfo', 'name') ?? '',
        guest_os_version_id: stringAt(vmi, 'status', 'guestOSInfo', 'versionId') ?? '',
        evictable: String(evictable),
        outdated: String(isOutdated),
        // Vireo runs no launcher pods.
        vmi_pod: '',
      },
      value: 1,
    });
    out.nonEvictable.push({ labels: { node, namespace, name }, value: evictable ? 0 : 1 });
    if (has(vmi, 'status', 'migrationState')) {
      const migrationName = migrationNames.get(stringAt(vmi, 'status', 'migrationState', 'migrationUid') ?? '') ?? '';
      const start = timestampSeconds(stringAt(vmi, 'status', 'migrationState', 'startTimestamp'));
      const end = timestampSeconds(stringAt(vmi, 'status', 'migrationState', 'endTimestamp'));
      if (start !== undefined) out.migrationStart.push({ labels: { node, namespace, name, migration_name: migrationName }, value: start });
      if (end !== undefined) out.migrationEnd.push({ labels: { node, namespace, name, migration_name: migrationName, status: migrationStatus(vmi) }, value: end });
    }
  }
  out.outdated.push({ labels: {}, value: outdated });
  for (const vm of objects.vms) {
    const namespace = vm.metadata.namespace ?? '';
    const templateAnnotations = stringMapAt(vm, 'spec', 'template', 'metadata', 'annotations');
    const status = stringAt(vm, 'status', 'printableStatus') ?? '';
    out.vmInfo.push({
      labels: {
        name: vm.metadata.name ?? '',
        namespace,
        os: templateAnnotations[`${annotationPrefix}os`] ?? '',
        workload: templateAnnotations[`${annotationPrefix}workload`] ?? '',
        flavor: templateAnnotations[`${annotationPrefix}flavor`] ?? '',
        machine_type: stringAt(vm, 'spec', 'template', 'spec', 'domain', 'machine', 'type') ?? '',
        instance_type: vmMatcherLabel(objects, vm, 'instancetype'),
        preference: vmMatcherLabel(objects, vm, 'preference'),
        status: status.toLowerCase(),
        status_group: vmStatusGroups.find(([, statuses]) => statuses.includes(status))?.[0] ?? '<unknown>',
      },
      value: 1,
    });
  }
  let pending = 0;
  let scheduling = 0;
  let unset = 0;
  let running = 0;
  for (const migration of objects.migrations) {
    const phase = stringAt(migration, 'status', 'phase') ?? '';
    const labels = { vmi: stringAt(migration, 'spec', 'vmiName') ?? '', vmim: migration.metadata.name ?? '', namespace: migration.metadata.namespace ?? '' };
    if (phase === 'Pending') pending++;
    else if (phase === 'Scheduling') scheduling++;
    else if (phase === '') unset++;
    else if (migrationRunningPhases.has(phase)) running++;
    else if (phase === 'Succeeded') {
      out.migrationSucceeded.push({ labels, value: 1 });
      const downtimeMs = Number((migration.metadata.annotations ?? {})[downtimeAnnotation]);
      if (Number.isFinite(downtimeMs) && downtimeMs >= 0 && (migration.metadata.annotations ?? {})[downtimeAnnotation] !== undefined) {
        out.migrationDowntime.push({ labels: { namespace: labels.namespace, vmi: labels.vmi, vmim: labels.vmim }, value: downtimeMs / 1000 });
      }
    } else if (phase === 'Failed') out.migrationFailed.push({ labels, value: 1 });
  }
  out.pendingMigrations.push({ labels: {}, value: pending });
  out.schedulingMigrations.push({ labels: {}, value: scheduling });
  out.unsetMigrations.push({ labels: {}, value: unset });
  out.runningMigrations.push({ labels: {}, value: running });
  return out;
}

/**
 * KubeVirt's `isVMEvictable`: a VMI that an eviction would live-migrate
 * is evictable only while its LiveMigratable condition is True.
 */
function isEvictable(vmi: KObject, kubevirt: KObject | undefined): boolean {
  if (!migratesOnEviction(vmi, kubevirt)) return true;
  const condition = recordsAt(vmi, 'status', 'conditions').find((c) => c.type === 'LiveMigratable');
  return condition !== undefined && condition.status !== 'False';
}

function migrationStatus(vmi: KObject): string {
  if (booleanAt(vmi, 'status', 'migrationState', 'completed') !== true) return '';
  return booleanAt(vmi, 'status', 'migrationState', 'failed') === true ? 'failed' : 'succeeded';
}

function timestampSeconds(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** The name of a vendor-labelled instancetype or preference, `<other>` for any other, '' for none. */
function vendorName(found: KObject | undefined): string {
  if (found === undefined) return '<other>';
  const vendor = (found.metadata.labels ?? {})[vendorLabel] ?? '';
  return namedVendors.has(vendor) ? found.metadata.name ?? '<other>' : '<other>';
}

function instancetypeLabel(objects: ObjectSnapshot, namespace: string, annotations: Record<string, string>, namespacedKey: string, clusterKey: string, namespacedKind: InstancetypeKind, clusterKind: InstancetypeKind): string {
  const own = annotations[namespacedKey];
  if (own !== undefined) return vendorName(objects.instancetypeLike(namespacedKind, `${namespace}/${own}`));
  const cluster = annotations[clusterKey];
  if (cluster !== undefined) return vendorName(objects.instancetypeLike(clusterKind, cluster));
  return '';
}

function vmMatcherLabel(objects: ObjectSnapshot, vm: KObject, field: 'instancetype' | 'preference'): string {
  const name = stringAt(vm, 'spec', field, 'name');
  if (name === undefined) return '';
  // As KubeVirt: only the namespaced kind named explicitly is namespaced; the default kind is the cluster-wide one.
  const clusterWide = (stringAt(vm, 'spec', field, 'kind') ?? '').toLowerCase() !== (field === 'instancetype' ? 'virtualmachineinstancetype' : 'virtualmachinepreference');
  const kind: InstancetypeKind = field === 'instancetype' ? (clusterWide ? 'clusterInstancetype' : 'instancetype') : (clusterWide ? 'clusterPreference' : 'preference');
  return vendorName(objects.instancetypeLike(kind, clusterWide ? name : `${vm.metadata.namespace ?? ''}/${name}`));
}
