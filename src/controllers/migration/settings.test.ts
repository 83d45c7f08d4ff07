import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { recordedSettings, resolvedSettingsState, sourceSettingsOf } from './settings.js';

const vmi: KObject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'v', namespace: 'team', labels: { app: 'db', tier: 'gold' } } };
const namespace: KObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team', labels: { env: 'prod' } } };
const kubevirt: KObject = { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { migrations: { completionTimeoutPerGiB: 40, bandwidthPerMigration: '8Mi' } } } };

function policy(name: string, selectors: Record<string, unknown> | undefined, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'migrations.kubevirt.io/v1alpha1', kind: 'MigrationPolicy', metadata: { name }, spec: { ...(selectors === undefined ? {} : { selectors }), ...spec } };
}

test('the policy matching the most labels wins, then the most VMI labels, then the first name; the KubeVirt CR fills the rest', () => {
  const policies = [
    policy('broad', { virtualMachineInstanceSelector: { app: 'db' } }, { completionTimeoutPerGiB: 1 }),
    policy('namespace-and-vmi', { virtualMachineInstanceSelector: { app: 'db' }, namespaceSelector: { env: 'prod' } }, { completionTimeoutPerGiB: 2 }),
    policy('vmi-two', { virtualMachineInstanceSelector: { app: 'db', tier: 'gold' } }, { completionTimeoutPerGiB: 3, allowPostCopy: true }),
    policy('no-match', { virtualMachineInstanceSelector: { app: 'db', tier: 'silver', x: 'y' } }, { completionTimeoutPerGiB: 4 }),
    policy('no-selectors', undefined, { completionTimeoutPerGiB: 5 }),
  ];
  const state = resolvedSettingsState(vmi, namespace, policies, [kubevirt]);
  // namespace-and-vmi and vmi-two both match two labels: more VMI labels wins.
  assert.equal(state.migrationPolicyName, 'vmi-two');
  const config = recordedSettings(state);
  assert.equal(config.completionTimeoutPerGiB, 3);
  assert.equal(config.allowPostCopy, true);
  assert.equal(config.bandwidthPerMigration, '8Mi', 'from the KubeVirt CR');
  assert.deepEqual(sourceSettingsOf(config), {
    bandwidthBytesPerSecond: 8 * 2 ** 20,
    convergence: { allowAutoConverge: false, allowPostCopy: true, allowWorkloadDisruption: true, completionTimeoutPerGiB: 3, progressTimeoutSeconds: 150 },
  });
  const tie = resolvedSettingsState(vmi, namespace, [policy('zeta', { virtualMachineInstanceSelector: { app: 'db' } }, {}), policy('Alpha', { virtualMachineInstanceSelector: { tier: 'gold' } }, {})], [kubevirt]);
  assert.equal(tie.migrationPolicyName, 'Alpha', 'byte order, as Go compares');
});

test('without a matching policy: the KubeVirt CR over the defaults, no policy name', () => {
  const state = resolvedSettingsState(vmi, namespace, [policy('other', { virtualMachineInstanceSelector: { app: 'web' } }, { allowPostCopy: true })], [kubevirt]);
  assert.equal(state.migrationPolicyName, undefined);
  const config = recordedSettings(state);
  assert.equal(config.completionTimeoutPerGiB, 40);
  assert.equal(config.allowPostCopy, false);
  assert.equal(recordedSettings(resolvedSettingsState(vmi, undefined, [], [])).completionTimeoutPerGiB, 150);
});
