import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { objectSamples } from './object-families.js';
import type { ObjectSnapshot } from './object-families.js';

const snapshot = (parts: Partial<ObjectSnapshot>): ObjectSnapshot => ({ vms: [], vmis: [], migrations: [], kubevirt: undefined, instancetypeLike: () => undefined, ...parts });

const migration = (name: string, phase: string | undefined, annotations: Record<string, string> = {}): KObject => ({
  apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration',
  metadata: { name, namespace: 'ns', uid: `uid-${name}`, annotations },
  spec: { vmiName: 'guest' },
  ...(phase === undefined ? {} : { status: { phase } }),
});

test('migrations: phase counts as KubeVirt groups them, succeeded/failed per migration, and the downtime of succeeded ones in seconds', () => {
  const samples = objectSamples(snapshot({
    migrations: [
      migration('unset', undefined), migration('pending', 'Pending'), migration('scheduling', 'Scheduling'),
      migration('target', 'PreparingTarget'), migration('running', 'Running'),
      migration('done', 'Succeeded', { 'vireo.io/migration-downtime-ms': '42' }), migration('done-unmeasured', 'Succeeded'), migration('broken', 'Failed'),
    ],
  }));
  assert.equal(samples.unsetMigrations[0]?.value, 1);
  assert.equal(samples.pendingMigrations[0]?.value, 1);
  assert.equal(samples.schedulingMigrations[0]?.value, 1);
  assert.equal(samples.runningMigrations[0]?.value, 2);
  assert.deepEqual(samples.migrationSucceeded.map((s) => s.labels.vmim), ['done', 'done-unmeasured']);
  assert.deepEqual(samples.migrationFailed, [{ labels: { vmi: 'guest', vmim: 'broken', namespace: 'ns' }, value: 1 }]);
  assert.deepEqual(samples.migrationDowntime, [{ labels: { namespace: 'ns', vmi: 'guest', vmim: 'done' }, value: 0.042 }]);
});

test('kubevirt_vmi_info and non_evictable: a LiveMigrate VMI that cannot migrate is not evictable; migration times come from migrationState', () => {
  const vmi = (name: string, strategy: string | undefined, migratable: string | undefined): KObject => ({
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance',
    metadata: { name, namespace: 'ns', annotations: { 'vm.kubevirt.io/os': 'linux' }, labels: {} },
    spec: strategy === undefined ? {} : { evictionStrategy: strategy },
    status: {
      phase: 'Running', nodeName: 'n1', guestOSInfo: { name: 'Debian', machine: 'x86_64' }, machine: { type: 'q35' },
      ...(migratable === undefined ? {} : { conditions: [{ type: 'LiveMigratable', status: migratable }] }),
      migrationState: { migrationUid: 'uid-m1', startTimestamp: '2026-01-01T00:00:00Z', endTimestamp: '2026-01-01T00:00:10Z', completed: true, failed: false },
    },
  });
  const samples = objectSamples(snapshot({ vmis: [vmi('stuck', 'LiveMigrate', 'False'), vmi('free', 'None', undefined)], migrations: [migration('m1', 'Succeeded')] }));
  const stuck = samples.vmiInfo.find((s) => s.labels.name === 'stuck');
  assert.equal(stuck?.labels.evictable, 'false');
  assert.equal(stuck?.labels.phase, 'running');
  assert.equal(stuck?.labels.os, 'linux');
  assert.equal(stuck?.labels.guest_os_name, 'Debian');
  assert.equal(stuck?.labels.guest_os_arch, 'x86_64');
  assert.equal(stuck?.labels.guest_os_machine, 'q35');
  assert.deepEqual(samples.nonEvictable.map((s) => [s.labels.name, s.value]), [['stuck', 1], ['free', 0]]);
  assert.deepEqual(samples.migrationStart[0], { labels: { node: 'n1', namespace: 'ns', name: 'stuck', migration_name: 'm1' }, value: Date.parse('2026-01-01T00:00:00Z') / 1000 });
  assert.equal(samples.migrationEnd[0]?.labels.status, 'succeeded');
});

test('kubevirt_vm_info: status and status_group, and instancetypes named only for known vendors', () => {
  const vm = (name: string, status: string, instancetype: string): KObject => ({
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine',
    metadata: { name, namespace: 'ns' },
    spec: { instancetype: { name: instancetype }, template: { metadata: { annotations: { 'vm.kubevirt.io/workload': 'server' } }, spec: { domain: { machine: { type: 'q35' } } } } },
    status: { printableStatus: status },
  });
  const vendored: KObject = { apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineClusterInstancetype', metadata: { name: 'u1.small', labels: { 'instancetype.kubevirt.io/vendor': 'kubevirt.io' } } };
  const own: KObject = { apiVersion: 'instancetype.kubevirt.io/v1beta1', kind: 'VirtualMachineClusterInstancetype', metadata: { name: 'mine' } };
  const samples = objectSamples(snapshot({
    vms: [vm('a', 'Running', 'u1.small'), vm('b', 'ErrorUnschedulable', 'mine'), vm('c', 'Stopped', 'gone')],
    instancetypeLike: (kind, key) => (kind === 'clusterInstancetype' ? [vendored, own].find((o) => o.metadata.name === key) : undefined),
  }));
  assert.deepEqual(samples.vmInfo.map((s) => [s.labels.name, s.labels.status, s.labels.status_group, s.labels.instance_type, s.labels.workload, s.labels.machine_type]), [
    ['a', 'running', 'running', 'u1.small', 'server', 'q35'],
    ['b', 'errorunschedulable', 'error', '<other>', 'server', 'q35'],
    ['c', 'stopped', 'non_running', '<other>', 'server', 'q35'],
  ]);
});
