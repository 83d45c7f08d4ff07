import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { bandwidthBytesPerSecondOf, clusterKubeVirtOf, clusterMigrationConfigurationOf, completionTimeoutSecondsOf, defaultMigrationConfiguration, parseMigrationConfigurationStatus, withMigrationPolicy } from './migration-config.js';

function kubevirt(migrations: Record<string, unknown> | undefined, meta: Partial<KObject['metadata']> = {}): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt', ...meta }, spec: { configuration: migrations === undefined ? {} : { migrations } } };
}

function policy(spec: Record<string, unknown>): KObject {
  return { apiVersion: 'migrations.kubevirt.io/v1alpha1', kind: 'MigrationPolicy', metadata: { name: 'p' }, spec: { selectors: {}, ...spec } };
}

test('without a KubeVirt CR, or one that sets nothing, KubeVirt defaults apply', () => {
  assert.deepEqual(clusterMigrationConfigurationOf(undefined), defaultMigrationConfiguration);
  assert.deepEqual(clusterMigrationConfigurationOf(kubevirt(undefined)), defaultMigrationConfiguration);
  assert.equal(defaultMigrationConfiguration.completionTimeoutPerGiB, 150);
  assert.equal(defaultMigrationConfiguration.progressTimeout, 150);
  assert.equal(defaultMigrationConfiguration.parallelMigrationsPerCluster, 5);
  assert.equal(defaultMigrationConfiguration.parallelOutboundMigrationsPerNode, 2);
  assert.equal(defaultMigrationConfiguration.allowAutoConverge, false);
  assert.equal(defaultMigrationConfiguration.allowPostCopy, false);
  assert.equal(bandwidthBytesPerSecondOf(defaultMigrationConfiguration), undefined, '0Mi is unlimited');
});

test('the KubeVirt CR overrides the defaults field by field; allowWorkloadDisruption follows allowPostCopy unless set', () => {
  const config = clusterMigrationConfigurationOf(kubevirt({ completionTimeoutPerGiB: 10, allowPostCopy: true, parallelMigrationsPerCluster: 1, bandwidthPerMigration: '64Mi' }));
  assert.equal(config.completionTimeoutPerGiB, 10);
  assert.equal(config.progressTimeout, 150);
  assert.equal(config.allowPostCopy, true);
  assert.equal(config.allowWorkloadDisruption, true);
  assert.equal(config.parallelMigrationsPerCluster, 1);
  assert.equal(config.parallelOutboundMigrationsPerNode, 2);
  assert.equal(bandwidthBytesPerSecondOf(config), 64 * 2 ** 20);
  assert.equal(clusterMigrationConfigurationOf(kubevirt({ allowPostCopy: true, allowWorkloadDisruption: false })).allowWorkloadDisruption, false);
  // Ill-typed values (the schema refuses them on write) fall back to the default rather than breaking a migration.
  assert.equal(clusterMigrationConfigurationOf(kubevirt({ completionTimeoutPerGiB: 'soon', bandwidthPerMigration: 'fast' })).completionTimeoutPerGiB, 150);
});

test('a MigrationPolicy overrides its five fields, never the cluster-wide limits', () => {
  const cluster = clusterMigrationConfigurationOf(kubevirt({ completionTimeoutPerGiB: 10, bandwidthPerMigration: '1Mi', parallelMigrationsPerCluster: 3 }));
  const config = withMigrationPolicy(cluster, policy({ allowPostCopy: true, completionTimeoutPerGiB: 2, allowAutoConverge: true, parallelMigrationsPerCluster: 50, progressTimeout: 1 }));
  assert.equal(config.allowPostCopy, true);
  assert.equal(config.allowWorkloadDisruption, true, 'follows the policy\'s allowPostCopy');
  assert.equal(config.completionTimeoutPerGiB, 2);
  assert.equal(config.allowAutoConverge, true);
  assert.equal(config.bandwidthPerMigration, '1Mi', 'unset in the policy: the cluster\'s');
  assert.equal(config.parallelMigrationsPerCluster, 3, 'not a policy field');
  assert.equal(config.progressTimeout, 150, 'not a policy field');
  assert.deepEqual(withMigrationPolicy(cluster, undefined), cluster);
  assert.equal(withMigrationPolicy(cluster, policy({ bandwidthPerMigration: '0' })).bandwidthPerMigration, '0');
});

test('the oldest KubeVirt CR not being deleted is the cluster\'s', () => {
  const old = kubevirt({ completionTimeoutPerGiB: 1 }, { name: 'a', creationTimestamp: '2026-01-01T00:00:00Z' });
  const young = kubevirt({ completionTimeoutPerGiB: 2 }, { name: 'b', creationTimestamp: '2026-02-01T00:00:00Z' });
  assert.equal(clusterKubeVirtOf([young, old])?.metadata.name, 'a');
  assert.equal(clusterKubeVirtOf([young, { ...old, metadata: { ...old.metadata, deletionTimestamp: '2026-03-01T00:00:00Z' } }])?.metadata.name, 'b');
  assert.equal(clusterKubeVirtOf([]), undefined);
});

test('the completion timeout is per GiB of memory and copied disks, in 10^9 bytes rounded up, as KubeVirt counts', () => {
  assert.equal(completionTimeoutSecondsOf(150, 128 * 2 ** 20), 150, '128 MiB counts as one');
  assert.equal(completionTimeoutSecondsOf(150, 1e9), 150);
  assert.equal(completionTimeoutSecondsOf(150, 1e9 + 1), 300);
  assert.equal(completionTimeoutSecondsOf(150, 8 * 2 ** 30), 150 * 9, '8 GiB is 8.59 GB: nine');
  assert.equal(completionTimeoutSecondsOf(0, 8 * 2 ** 30), 0, '0: no timeout');
  assert.equal(completionTimeoutSecondsOf(150, 0), 0);
});

test('a recorded migrationConfiguration reads back, defaulted where it says nothing', () => {
  assert.deepEqual(parseMigrationConfigurationStatus({ ...defaultMigrationConfiguration, allowPostCopy: true }), { ...defaultMigrationConfiguration, allowPostCopy: true });
  assert.deepEqual(parseMigrationConfigurationStatus(undefined), defaultMigrationConfiguration);
});
