import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { staleTargetReason } from './target-janitor.js';

function vmi(state: Record<string, unknown> | undefined, uid = 'vmi-1'): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'v', namespace: 'default', uid }, status: state === undefined ? {} : { migrationState: state } };
}

test('a waiting target is stale once its VMI is gone, replaced, or its migration failed, aborted or replaced; not while it runs', () => {
  assert.equal(staleTargetReason(vmi({ migrationUid: 'm-1', targetNode: 'n2' }), 'm-1', 'vmi-1'), undefined);
  assert.equal(staleTargetReason(undefined, 'm-1', 'vmi-1'), 'its VMI was deleted');
  assert.equal(staleTargetReason(vmi({ migrationUid: 'm-1' }, 'vmi-2'), 'm-1', 'vmi-1'), 'its VMI was deleted');
  assert.equal(staleTargetReason(vmi(undefined), 'm-1', 'vmi-1'), "the VMI's migration is gone");
  assert.equal(staleTargetReason(vmi({ migrationUid: 'm-2' }), 'm-1', 'vmi-1'), "the VMI's migration is now m-2");
  assert.equal(staleTargetReason(vmi({ migrationUid: 'm-1', failed: true, failureReason: 'no data reached the target' }), 'm-1', 'vmi-1'), 'the migration failed (no data reached the target)');
  assert.equal(staleTargetReason(vmi({ migrationUid: 'm-1', abortStatus: 'Succeeded' }), 'm-1', 'vmi-1'), 'the migration was aborted');
});
