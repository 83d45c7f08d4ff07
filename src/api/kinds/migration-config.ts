/**
 * The settings a live migration runs with, resolved as KubeVirt resolves
 * them: KubeVirt's defaults, overridden by the cluster's KubeVirt CR
 * (`spec.configuration.migrations`), overridden for one VMI by the
 * MigrationPolicy that matches it (`allowAutoConverge`,
 * `bandwidthPerMigration`, `completionTimeoutPerGiB`, `allowPostCopy`,
 * `allowWorkloadDisruption`). The result is what the migration controller
 * records in the VMI's `status.migrationState.migrationConfiguration` and
 * hands to the source agent; the parallel limits stay cluster-wide. Also
 * KubeVirt's completion timeout arithmetic. Pure: callers read the objects.
 */
import type { KObject } from '../object.js';
import { parseQuantity } from '../validation/quantity.js';
import { asRecord, recordAt } from './read.js';

/** The fully defaulted migration settings (KubeVirt's `MigrationConfiguration` fields Vireo acts on). */
export interface MigrationConfiguration {
  /** Bytes per second as a quantity; `0`: unlimited. */
  bandwidthPerMigration: string;
  /** Seconds the migration may take per GiB (10^9 bytes, rounded up) of memory and disks to copy; 0: no limit. */
  completionTimeoutPerGiB: number;
  /** Seconds without progress (data remaining not shrinking) before the migration is aborted; 0: never. */
  progressTimeout: number;
  allowAutoConverge: boolean;
  /** At the completion timeout, switch to post-copy instead of aborting (when workload disruption is allowed). */
  allowPostCopy: boolean;
  /** At the completion timeout, post-copy (if allowed) or pause the guest rather than abort; follows `allowPostCopy` unless set. */
  allowWorkloadDisruption: boolean;
  parallelMigrationsPerCluster: number;
  parallelOutboundMigrationsPerNode: number;
  unsafeMigrationOverride: boolean;
  /** Plain TCP for the memory stream and the disks' NBD copies instead of TLS (KubeVirt CR only). */
  disableTLS: boolean;
}

/** KubeVirt's defaults (`pkg/virt-config`). */
export const defaultMigrationConfiguration: MigrationConfiguration = {
  bandwidthPerMigration: '0Mi',
  completionTimeoutPerGiB: 150,
  progressTimeout: 150,
  allowAutoConverge: false,
  allowPostCopy: false,
  allowWorkloadDisruption: false,
  parallelMigrationsPerCluster: 5,
  parallelOutboundMigrationsPerNode: 2,
  unsafeMigrationOverride: false,
  disableTLS: false,
};

/** The settings a MigrationPolicy may override. */
const policyFields = ['allowAutoConverge', 'bandwidthPerMigration', 'completionTimeoutPerGiB', 'allowPostCopy', 'allowWorkloadDisruption'] as const;

type Overrides = Partial<MigrationConfiguration>;

/** The fields of `source` (a `migrations` block or a policy's spec) that are set and well-typed, among `fields`. */
function overridesOf(source: Record<string, unknown> | undefined, fields: readonly (keyof MigrationConfiguration)[]): Overrides {
  const found: Overrides = {};
  if (source === undefined) return found;
  for (const field of fields) {
    const value = source[field];
    const defaultValue = defaultMigrationConfiguration[field];
    if (typeof defaultValue === 'boolean' && typeof value === 'boolean') Object.assign(found, { [field]: value });
    else if (typeof defaultValue === 'number' && typeof value === 'number' && Number.isFinite(value) && value >= 0) Object.assign(found, { [field]: Math.floor(value) });
    else if (field === 'bandwidthPerMigration' && (typeof value === 'string' || typeof value === 'number') && parseQuantity(value) !== undefined) found.bandwidthPerMigration = String(value);
  }
  return found;
}

const allFields = Object.keys(defaultMigrationConfiguration) as (keyof MigrationConfiguration)[];

/** The cluster's settings: KubeVirt's defaults under the KubeVirt CR's `spec.configuration.migrations` (undefined: no CR). */
export function clusterMigrationConfigurationOf(kubevirt: KObject | undefined): MigrationConfiguration {
  const migrations = recordAt(kubevirt, 'spec', 'configuration', 'migrations');
  const overrides = overridesOf(migrations, allFields);
  // As KubeVirt: allowWorkloadDisruption follows allowPostCopy unless it is set.
  const disruption = typeof migrations?.allowWorkloadDisruption === 'boolean' ? migrations.allowWorkloadDisruption : overrides.allowPostCopy ?? defaultMigrationConfiguration.allowPostCopy;
  return { ...defaultMigrationConfiguration, ...overrides, allowWorkloadDisruption: disruption };
}

/** `config` with what `policy` (a MigrationPolicy, or undefined) sets; the cluster-wide limits stay. */
export function withMigrationPolicy(config: MigrationConfiguration, policy: KObject | undefined): MigrationConfiguration {
  const spec = recordAt(policy, 'spec');
  const overrides = overridesOf(spec, policyFields);
  // A policy that sets allowPostCopy but not allowWorkloadDisruption makes the second follow the first (KubeVirt's compatibility rule).
  if (overrides.allowPostCopy !== undefined && overrides.allowWorkloadDisruption === undefined) overrides.allowWorkloadDisruption = overrides.allowPostCopy;
  return { ...config, ...overrides };
}

/** The KubeVirt CR whose configuration counts, as KubeVirt reads it: the oldest one not being deleted. */
export function clusterKubeVirtOf(kubevirts: readonly KObject[]): KObject | undefined {
  return kubevirts
    .filter((kv) => kv.metadata.deletionTimestamp === undefined)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))[0];
}

/** `bandwidthPerMigration` in bytes per second; undefined for 0 (unlimited). */
export function bandwidthBytesPerSecondOf(config: MigrationConfiguration): number | undefined {
  const bytes = parseQuantity(config.bandwidthPerMigration);
  return bytes === undefined || bytes <= 0 ? undefined : Math.round(bytes);
}

/**
 * KubeVirt's acceptable completion time in seconds: `completionTimeoutPerGiB`
 * times the data to copy (guest memory plus the disks copied) in units of
 * 10^9 bytes, rounded up (`Quantity.ScaledValue(Giga)`); 0 means no limit.
 */
export function completionTimeoutSecondsOf(completionTimeoutPerGiB: number, dataBytes: number): number {
  if (completionTimeoutPerGiB <= 0) return 0;
  return completionTimeoutPerGiB * Math.ceil(Math.max(0, dataBytes) / 1e9);
}

/** What the VMI's `status.migrationState.migrationConfiguration` says (KubeVirt records the effective settings there). */
export function migrationConfigurationStatus(config: MigrationConfiguration): Record<string, unknown> {
  return { ...config };
}

/** Reads back a recorded `migrationConfiguration` (from a VMI's migrationState), defaulting what is missing. */
export function parseMigrationConfigurationStatus(value: unknown): MigrationConfiguration {
  return { ...defaultMigrationConfiguration, ...overridesOf(asRecord(value), allFields) };
}
