import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { drainStepOf, evictionMigratabilityOf, evictionStrategyOf, migratesOnEviction } from './eviction.js';

const kubevirt = (evictionStrategy?: string): KObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt' }, spec: { configuration: evictionStrategy === undefined ? {} : { evictionStrategy } } });

/** A VMI on the pod network (not migratable yet), or, with `migratable`, one whose LiveMigratable condition is True. */
function vmi(evictionStrategy?: string, owner?: string, migratable = false): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'x', namespace: 'default', ...(owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: owner, uid: 'u', controller: true }] }) },
    spec: { ...(evictionStrategy === undefined ? {} : { evictionStrategy }), volumes: [{ name: 'host', hostDisk: { path: '/x.img', type: 'Disk' } }] },
    status: migratable ? { phase: 'Running', conditions: [{ type: 'LiveMigratable', status: 'True' }] } : { phase: 'Running' },
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

test('a LiveMigrate VMI that cannot migrate is refused, naming it, the reason and what to do, even with force; External is evacuated', () => {
  const step = drainStepOf(vmi(undefined, 'vm'), kubevirt('LiveMigrate'), { force: true });
  assert.equal(step.action, 'refuse');
  assert.match(step.action === 'refuse' ? step.why : '', /default\/x has eviction strategy LiveMigrate \(from the KubeVirt CR's .*\) but is not live-migratable \(DisksNotLiveMigratable: cannot migrate VMI with non-shared HostDisk.*\), so it cannot be evicted: .*set its evictionStrategy .* or stop it/);
  assert.equal(drainStepOf(vmi('External'), undefined, { force: false }).action, 'evacuate');
});

test('LiveMigrate, and LiveMigrateIfPossible when it can, migrate: a bare VMI too, without force', () => {
  assert.equal(drainStepOf(vmi('LiveMigrate', undefined, true), undefined, { force: false }).action, 'migrate');
  assert.equal(drainStepOf(vmi(undefined, undefined, true), kubevirt('LiveMigrateIfPossible'), { force: false }).action, 'migrate');
  assert.equal(drainStepOf(vmi('LiveMigrateIfPossible', 'vm'), undefined, { force: false }).action, 'stop', 'not migratable: stopped');
});

test('the LiveMigratable condition decides over the spec; without one the spec does', () => {
  const refused = vmi('LiveMigrate');
  refused.status = { phase: 'Running', conditions: [{ type: 'LiveMigratable', status: 'False', reason: 'InterfaceNotLiveMigratable', message: 'no' }] };
  assert.deepEqual(evictionMigratabilityOf(refused), { migratable: false, reason: 'InterfaceNotLiveMigratable', message: 'no' });
  assert.equal(evictionMigratabilityOf(vmi('LiveMigrate')).migratable, false, 'a hostDisk');
  assert.equal(migratesOnEviction(vmi('LiveMigrate'), undefined), true, 'LiveMigrate wants it even when it cannot');
  assert.equal(migratesOnEviction(vmi('LiveMigrateIfPossible'), undefined), false);
  assert.equal(migratesOnEviction(vmi('None', undefined, true), undefined), false);
});
