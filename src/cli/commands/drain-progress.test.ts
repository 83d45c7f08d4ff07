import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { MigrationProgress } from './drain-progress.js';

const vmi: KObject = { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'db', namespace: 'default', uid: 'u1' }, status: { nodeName: 'n1' } };

function migration(name: string, phase: string | undefined, at: string, extra: Record<string, unknown> = {}): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: at }, spec: { vmiName: 'db' }, status: { ...(phase === undefined ? {} : { phase }), ...extra } };
}

test('a line each time the newest migration changes phase, failures with their reason', () => {
  const progress = new MigrationProgress();
  assert.deepEqual(progress.lines(vmi, []), []);
  assert.deepEqual(progress.lines(vmi, [migration('m1', undefined, '2026-01-01T00:00:00Z')]), ['virtualmachineinstance default/db: migration m1 Pending']);
  assert.deepEqual(progress.lines(vmi, [migration('m1', 'Pending', '2026-01-01T00:00:00Z')]), [], 'nothing new');
  const failed = migration('m1', 'Failed', '2026-01-01T00:00:00Z', { conditions: [{ type: 'Failed', status: 'True', message: 'the target died' }] });
  assert.deepEqual(progress.lines(vmi, [failed]), ['virtualmachineinstance default/db: migration m1 Failed: the target died; the evacuation controller tries again after a backoff']);
  assert.deepEqual(progress.lines(vmi, [failed, migration('m2', 'Running', '2026-01-01T00:01:00Z')]), ['virtualmachineinstance default/db: migration m2 Running']);
  assert.deepEqual(progress.lines(vmi, [migration('other', 'Running', '2026-01-01T00:02:00Z', {}), failed].map((m) => (m.metadata.name === 'other' ? { ...m, spec: { vmiName: 'web' } } : m))), ['virtualmachineinstance default/db: migration m1 Failed: the target died; the evacuation controller tries again after a backoff'], 'another VMI\'s migration is not this one\'s');
});

test('where a VMI stands when the drain times out', () => {
  assert.match(MigrationProgress.describe(vmi, []), /no migration yet/);
  assert.equal(MigrationProgress.describe(vmi, [migration('m1', 'Scheduling', '2026-01-01T00:00:00Z')]), 'live migration: migration m1 Scheduling');
  const withState: KObject = { ...vmi, status: { migrationState: { migrationUid: 'uid-m1', failureReason: 'no route' } } };
  assert.equal(MigrationProgress.describe(withState, [migration('m1', 'Failed', '2026-01-01T00:00:00Z')]), 'live migration: migration m1 failed (no route), the next one waits out a backoff');
});
