import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { drainStepOf, evictionStrategyOf } from './eviction.js';

const kubevirt = (evictionStrategy?: string): KObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt' }, spec: { configuration: evictionStrategy === undefined ? {} : { evictionStrategy } } });

function vmi(evictionStrategy?: string, owner?: string): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'x', namespace: 'default', ...(owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner, uid: 'u', controller: true }] }) },
    spec: evictionStrategy === undefined ? {} : { evictionStrategy },
  };
}

test('the VMI’s strategy wins, then the KubeVirt CR’s, then KubeVirt’s default None', () => {
  assert.deepEqual(evictionStrategyOf(vmi('External'), kubevirt('LiveMigrate')), { strategy: 'External', from: 'vmi' });
  assert.deepEqual(evictionStrategyOf(vmi(), kubevirt('LiveMigrate')), { strategy: 'LiveMigrate', from: 'cluster' });
  assert.deepEqual(evictionStrategyOf(vmi(), kubevirt()), { strategy: 'None', from: 'default' });
  assert.deepEqual(evictionStrategyOf(vmi(), undefined), { strategy: 'None', from: 'default' });
});

test('None and LiveMigrateIfPossible stop a VMI with a controller; a bare one only with force', () => {
  assert.equal(drainStepOf(vmi('None', 'vm'), undefined, { force: false }).action, 'stop');
  assert.equal(drainStepOf(vmi('LiveMigrateIfPossible', 'vm'), undefined, { force: false }).action, 'stop');
  const bare = drainStepOf(vmi(), undefined, { force: false });
  assert.equal(bare.action, 'refuse');
  assert.match(bare.action === 'refuse' ? bare.why : '', /default\/x has no controller .*--force/);
  assert.deepEqual(drainStepOf(vmi(), undefined, { force: true }), { action: 'stop', strategy: { strategy: 'None', from: 'default' }, controller: undefined });
});

test('LiveMigrate is refused, naming the VMI and what to do, even with force; External is evacuated', () => {
  const step = drainStepOf(vmi(undefined, 'vm'), kubevirt('LiveMigrate'), { force: true });
  assert.equal(step.action, 'refuse');
  assert.match(step.action === 'refuse' ? step.why : '', /default\/x has eviction strategy LiveMigrate \(from the KubeVirt CR's .*live migration is not available yet: set its evictionStrategy .* or stop it/);
  assert.equal(drainStepOf(vmi('External'), undefined, { force: false }).action, 'evacuate');
});
