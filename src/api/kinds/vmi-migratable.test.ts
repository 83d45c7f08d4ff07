import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { migratabilityOf, migrationMethodOf } from './vmi-migratable.js';

function vmi(spec: Record<string, unknown>): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'g', namespace: 'default' }, spec: { domain: { devices: {} }, ...spec } };
}

const containerDisk = { name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } };

test('containerDisk, emptyDisk and cloud-init volumes without networks migrate, by block migration', () => {
  const guest = vmi({ networks: [], volumes: [containerDisk, { name: 'data', emptyDisk: { capacity: '1Gi' } }, { name: 'ci', cloudInitNoCloud: { userData: '#!/bin/sh' } }] });
  assert.deepEqual(migratabilityOf(guest), { migratable: true });
  assert.equal(migrationMethodOf(guest), 'BlockMigration');
  assert.equal(migrationMethodOf(vmi({ volumes: [{ name: 'ci', cloudInitNoCloud: {} }] })), 'LiveMigration');
});

test('claims are left to the claims check (vmi-claims-migratable.ts) and copied by block migration', () => {
  const guest = vmi({ networks: [], volumes: [{ name: 'c', persistentVolumeClaim: { claimName: 'c' } }, { name: 'd', dataVolume: { name: 'd' } }] });
  assert.deepEqual(migratabilityOf(guest), { migratable: true });
  assert.equal(migrationMethodOf(guest), 'BlockMigration');
});

test('a hostDisk, a host device, the pod network and Multus networks are refused with KubeVirt\'s reasons', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ volumes: [{ name: 'h', hostDisk: { path: '/x', type: 'Disk' } }] }, 'DisksNotLiveMigratable', /non-shared HostDisk/],
    [{ domain: { devices: { hostDevices: [{ name: 'd', deviceName: 'x' }] } }, volumes: [containerDisk] }, 'HostDeviceNotLiveMigratable', /host device/],
    [{ volumes: [containerDisk], networks: [{ name: 'default', pod: {} }] }, 'InterfaceNotLiveMigratable', /pod network .*not yet supported.*keeps the address/],
    [{ volumes: [containerDisk], networks: [{ name: 'n', multus: { networkName: 'br' } }] }, 'InterfaceNotLiveMigratable', /Multus .*not yet supported/],
  ];
  for (const [spec, reason, message] of cases) {
    const verdict = migratabilityOf(vmi(spec));
    assert.equal(verdict.migratable, false, JSON.stringify(spec));
    if (verdict.migratable) continue;
    assert.equal(verdict.reason, reason);
    assert.match(verdict.message, message);
  }
});
