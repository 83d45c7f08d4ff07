import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { validateKind } from './registry.js';

function migration(spec: Record<string, unknown>): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'm', namespace: 'default' }, spec };
}

test('a migration names its VMI', () => {
  assert.deepEqual(validateKind('kubevirt.io', 'VirtualMachineInstanceMigration', migration({ vmiName: 'vmi-fedora' })), []);
  const [error] = validateKind('kubevirt.io', 'VirtualMachineInstanceMigration', migration({}));
  assert.equal(error?.field, 'spec.vmiName');
  assert.equal(error?.reason, 'FieldValueRequired');
  assert.match(error?.message ?? '', /vmiName is missing/);
});

test('only KubeVirt\'s controllers set a migration priority', () => {
  const prioritised = migration({ vmiName: 'v', priority: 'system-critical' });
  assert.deepEqual(validateKind('kubevirt.io', 'VirtualMachineInstanceMigration', prioritised, undefined, { writer: 'user' }).map((e) => e.field), ['spec.priority']);
  assert.deepEqual(validateKind('kubevirt.io', 'VirtualMachineInstanceMigration', prioritised, undefined, { writer: 'controller' }), []);
});

test('a migration spec never changes', () => {
  const old = migration({ vmiName: 'a' });
  assert.deepEqual(validateKind('kubevirt.io', 'VirtualMachineInstanceMigration', migration({ vmiName: 'b' }), old).map((e) => e.field), ['spec']);
  assert.deepEqual(validateKind('kubevirt.io', 'VirtualMachineInstanceMigration', { ...migration({ vmiName: 'a' }), status: { phase: 'Running' } }, old), []);
});

test('kinds without extra checks pass untouched', () => {
  assert.deepEqual(validateKind('', 'ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } }), []);
});
