import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { evacuationBackoffOf, evacuationMigrationAnnotation, planEvacuation } from './evacuation.js';

const nowMs = Date.parse('2026-01-01T00:10:00Z');

function node(name: string, taints: unknown[] = []): KObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { taints } };
}

function vmi(name: string, options: { node?: string; mark?: string; strategy?: string; migratable?: boolean; phase?: string } = {}): KObject {
  const migratable = options.migratable ?? true;
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'default', uid: `uid-${name}` },
    spec: options.strategy === undefined ? {} : { evictionStrategy: options.strategy },
    status: {
      phase: options.phase ?? 'Running',
      nodeName: options.node ?? 'n1',
      ...(options.mark === undefined ? {} : { evacuationNodeName: options.mark }),
      conditions: [migratable ? { type: 'LiveMigratable', status: 'True' } : { type: 'LiveMigratable', status: 'False', reason: 'DisksNotLiveMigratable', message: 'a hostDisk' }],
    },
  };
}

function migration(name: string, vmiName: string, phase: string, at: string, evacuation = true): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name, namespace: 'default', creationTimestamp: at, ...(evacuation ? { annotations: { [evacuationMigrationAnnotation]: 'n1' } } : {}) },
    spec: { vmiName },
    status: { phase, phaseTransitionTimestamps: [{ phase, phaseTransitionTimestamp: at }] },
  };
}

const names = (vmis: { metadata: { name?: string } }[]): string[] => vmis.map((v) => v.metadata.name ?? '');

test('marked VMIs that migrate on eviction get a migration; the others wait or say why', () => {
  const vmis = [
    vmi('marked', { mark: 'n1', strategy: 'LiveMigrate' }),
    vmi('unmarked', { strategy: 'LiveMigrate' }),
    vmi('stuck', { mark: 'n1', strategy: 'LiveMigrate', migratable: false }),
    vmi('possible', { mark: 'n1', strategy: 'LiveMigrateIfPossible', migratable: false }),
    vmi('external', { mark: 'n1', strategy: 'External' }),
    vmi('starting', { mark: 'n1', strategy: 'LiveMigrate', phase: 'Scheduled' }),
    vmi('busy', { mark: 'n1', strategy: 'LiveMigrate' }),
    vmi('moved', { mark: 'n1', strategy: 'LiveMigrate', node: 'n2' }),
    vmi('elsewhere', { node: 'n2', mark: 'n2', strategy: 'LiveMigrate' }),
  ];
  const migrations = [migration('m-busy', 'busy', 'Running', '2026-01-01T00:09:00Z', false)];
  const plan = planEvacuation(node('n1'), vmis, migrations, { kubevirt: undefined, nowMs });
  assert.deepEqual(names(plan.migrate), ['marked']);
  assert.deepEqual(plan.notMigratable.map((n) => [n.vmi.metadata.name, n.reason]), [['stuck', 'DisksNotLiveMigratable']]);
  assert.deepEqual(names(plan.clearMark), ['moved']);
  assert.deepEqual(plan.backingOff, []);
});

test('the drain taint evacuates every VMI of the node that migrates on eviction, the cluster strategy included', () => {
  const kubevirt: KObject = { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kv' }, spec: { configuration: { evictionStrategy: 'LiveMigrate', migrations: { nodeDrainTaintKey: 'example.com/drain' } } } };
  const vmis = [vmi('a'), vmi('b', { strategy: 'None' })];
  assert.deepEqual(names(planEvacuation(node('n1', [{ key: 'example.com/drain', effect: 'NoSchedule' }]), vmis, [], { kubevirt, nowMs }).migrate), ['a']);
  assert.deepEqual(names(planEvacuation(node('n1', [{ key: 'kubevirt.io/drain', effect: 'NoSchedule' }]), vmis, [], { kubevirt, nowMs }).migrate), [], 'another key than the CR names');
  assert.deepEqual(names(planEvacuation(node('n1', [{ key: 'kubevirt.io/drain', effect: 'NoSchedule' }]), [vmi('c', { strategy: 'LiveMigrate' })], [], { kubevirt: undefined, nowMs }).migrate), ['c'], 'the default key');
});

test('after failed evacuation migrations the next waits 20 s, doubled per failure since the last success', () => {
  const failedOnce = [migration('m2', 'x', 'Failed', '2026-01-01T00:09:50Z'), migration('m1', 'x', 'Succeeded', '2026-01-01T00:01:00Z')];
  assert.deepEqual(evacuationBackoffOf(failedOnce), { failures: 1, retryAtMs: Date.parse('2026-01-01T00:10:10Z') });
  const failedTwice = [migration('m3', 'x', 'Failed', '2026-01-01T00:09:30Z'), ...failedOnce];
  assert.deepEqual(evacuationBackoffOf(failedTwice), { failures: 2, retryAtMs: Date.parse('2026-01-01T00:10:10Z') });
  assert.equal(evacuationBackoffOf([migration('u', 'x', 'Failed', '2026-01-01T00:09:50Z', false)]), undefined, 'a user migration does not count');
  const plan = planEvacuation(node('n1'), [vmi('x', { mark: 'n1', strategy: 'LiveMigrate' })], failedOnce, { kubevirt: undefined, nowMs });
  assert.deepEqual(plan.migrate, []);
  assert.equal(plan.backingOff[0]?.retryAtMs, Date.parse('2026-01-01T00:10:10Z'));
  assert.deepEqual(names(planEvacuation(node('n1'), [vmi('x', { mark: 'n1', strategy: 'LiveMigrate' })], failedOnce, { kubevirt: undefined, nowMs: nowMs + 10_001 }).migrate), ['x']);
});
