/**
 * The settings one migration runs with, as the migration controller
 * resolves them once, at scheduling (KubeVirt's `matchMigrationPolicy`):
 * the cluster's KubeVirt CR under the MigrationPolicy matching the VMI,
 * recorded in the VMI's `migrationState.migrationConfiguration` with
 * `migrationPolicyName`; what the agents get is read back from there, so a
 * policy changed mid-way does not change a running migration.
 */
import type { KObject } from '../../api/object.js';
import { recordAt } from '../../api/kinds/read.js';
import { bandwidthBytesPerSecondOf, clusterKubeVirtOf, clusterMigrationConfigurationOf, migrationConfigurationStatus, parseMigrationConfigurationStatus, withMigrationPolicy } from '../../api/kinds/migration-config.js';
import type { MigrationConfiguration } from '../../api/kinds/migration-config.js';
import type { ConvergenceSettings } from '../../agent/index.js';
import { policyFor } from './model.js';

/** The fields the settings add to a VMI's migrationState when scheduled. */
export function resolvedSettingsState(vmi: KObject, namespace: KObject | undefined, policies: readonly KObject[], kubevirts: readonly KObject[]): Record<string, unknown> {
  const policy = policyFor(vmi, namespace, policies);
  const config = withMigrationPolicy(clusterMigrationConfigurationOf(clusterKubeVirtOf(kubevirts)), policy);
  return { migrationConfiguration: migrationConfigurationStatus(config), ...(policy === undefined ? {} : { migrationPolicyName: policy.metadata.name }) };
}

/** The settings recorded in `state` (a migrationState); KubeVirt's defaults for what is missing. */
export function recordedSettings(state: Record<string, unknown>): MigrationConfiguration {
  return parseMigrationConfigurationStatus(recordAt(state, 'migrationConfiguration'));
}

/** What the source agent enforces of `config`. */
export function convergenceOf(config: MigrationConfiguration): ConvergenceSettings {
  return {
    allowAutoConverge: config.allowAutoConverge,
    allowPostCopy: config.allowPostCopy,
    allowWorkloadDisruption: config.allowWorkloadDisruption,
    completionTimeoutPerGiB: config.completionTimeoutPerGiB,
    progressTimeoutSeconds: config.progressTimeout,
  };
}

/** The source agent's part of a start-source command: bandwidth and convergence. */
export function sourceSettingsOf(config: MigrationConfiguration): { bandwidthBytesPerSecond?: number; convergence: ConvergenceSettings } {
  const bandwidth = bandwidthBytesPerSecondOf(config);
  return { ...(bandwidth === undefined ? {} : { bandwidthBytesPerSecond: bandwidth }), convergence: convergenceOf(config) };
}
