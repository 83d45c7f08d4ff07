import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { KObject } from '../../api/object.js';
import { PhaseTransitionMetrics } from './phase-transitions.js';

const vmi = (phase: string, extra: Record<string, unknown> = {}): KObject => ({
  apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance',
  metadata: { name: 'v', namespace: 'ns', creationTimestamp: '2026-01-01T00:00:00Z', ...extra },
  status: {
    phase,
    phaseTransitionTimestamps: [
      { phase: 'Pending', phaseTransitionTimestamp: '2026-01-01T00:00:01Z' },
      { phase: 'Scheduled', phaseTransitionTimestamp: '2026-01-01T00:00:03Z' },
      { phase: 'Running', phaseTransitionTimestamp: '2026-01-01T00:00:10Z' },
      { phase: 'Succeeded', phaseTransitionTimestamp: '2026-01-01T00:01:00Z' },
    ],
  },
});

async function series(registry: Registry, name: string): Promise<{ labels: Record<string, string | number>; value: number; metricName?: string }[]> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return ((metric?.values ?? []) as { labels: Record<string, string | number>; value: number; metricName?: string }[]).filter((v) => v.metricName?.endsWith('_sum') === true);
}

test('a phase change is observed from the last phase\'s transition, from creation, and for a deleted VMI reaching a final phase from its deletion', async () => {
  const registry = new Registry();
  const metrics = new PhaseTransitionMetrics(registry);
  metrics.observe(undefined, vmi('Running'));
  assert.deepEqual(await series(registry, 'kubevirt_vmi_phase_transition_time_seconds'), [], 'a VMI first seen is not a transition');
  metrics.observe('Scheduled', vmi('Running'));
  assert.deepEqual((await series(registry, 'kubevirt_vmi_phase_transition_time_seconds')).map((s) => [s.labels, s.value]), [[{ phase: 'Running', last_phase: 'Scheduled' }, 7]]);
  assert.deepEqual((await series(registry, 'kubevirt_vmi_phase_transition_time_from_creation_seconds')).map((s) => [s.labels, s.value]), [[{ phase: 'Running' }, 10]]);
  metrics.observe('Running', vmi('Succeeded', { deletionTimestamp: '2026-01-01T00:00:50Z' }));
  assert.deepEqual((await series(registry, 'kubevirt_vmi_phase_transition_time_from_deletion_seconds')).map((s) => [s.labels, s.value]), [[{ phase: 'Succeeded' }, 10]]);
  metrics.remove();
  assert.equal((await registry.getMetricsAsJSON()).length, 0);
});

test('a migration\'s phase change is observed from its creation', async () => {
  const registry = new Registry();
  const metrics = new PhaseTransitionMetrics(registry);
  const migration = (phase: string): KObject => ({
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration',
    metadata: { name: 'm', namespace: 'ns', creationTimestamp: '2026-01-01T00:00:00Z' },
    status: { phase, phaseTransitionTimestamps: [{ phase: 'Pending', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' }, { phase: 'Running', phaseTransitionTimestamp: '2026-01-01T00:00:02Z' }, { phase: 'Succeeded', phaseTransitionTimestamp: '2026-01-01T00:00:05Z' }] },
  });
  const name = 'kubevirt_vmi_migration_phase_transition_time_from_creation_seconds';
  metrics.observeMigration(undefined, migration('Running'));
  assert.deepEqual(await series(registry, name), [], 'a migration first seen is not a transition');
  metrics.observeMigration('Pending', migration('Running'));
  metrics.observeMigration('Running', migration('Succeeded'));
  metrics.observeMigration('Succeeded', migration('Succeeded'));
  assert.deepEqual((await series(registry, name)).map((s) => [s.labels, s.value]), [[{ phase: 'Running' }, 2], [{ phase: 'Succeeded' }, 5]]);
});
