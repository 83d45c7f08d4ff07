import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../object.js';
import { claimMigratabilityOf } from './vmi-claims-migratable.js';
import type { ClaimLookup } from './vmi-claims-migratable.js';

function vmi(name: string, volumes: Record<string, unknown>[], phase = 'Running'): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec: { volumes }, status: { phase } };
}

function claim(name: string, annotations: Record<string, string> = {}): KObject {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'default', uid: `c-${name}`, annotations }, spec: { volumeName: `pvc-c-${name}` } };
}

function volume(name: string, annotations: Record<string, string> = { 'pv.kubernetes.io/provisioned-by': 'vireo.io/local' }): KObject {
  return { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: `pvc-c-${name}`, annotations }, spec: { local: { path: `/data/volumes/pvc-c-${name}` } } };
}

function lookup(objects: { claims?: KObject[]; pvs?: KObject[]; vmis?: KObject[]; snapshots?: KObject[] }): ClaimLookup {
  return {
    claim: (_namespace, name) => objects.claims?.find((c) => c.metadata.name === name),
    volume: (name) => objects.pvs?.find((p) => p.metadata.name === name),
    vmis: () => objects.vmis ?? [],
    snapshots: () => objects.snapshots ?? [],
  };
}

const data = { name: 'data', persistentVolumeClaim: { claimName: 'data' } };

test('a VMI\'s local claims are copied, a DataVolume\'s claim too; a finished VMI using one does not hold it', () => {
  const guest = vmi('g', [data, { name: 'root', dataVolume: { name: 'root' } }]);
  const verdict = claimMigratabilityOf(guest, lookup({ claims: [claim('data'), claim('root')], pvs: [volume('data'), volume('root')], vmis: [guest, vmi('old', [data], 'Succeeded')] }));
  assert.equal(verdict.migratable, true);
  if (!verdict.migratable) return;
  assert.deepEqual(verdict.copied.map((c) => [c.volume, c.claim.metadata.name, c.pv.metadata.name]), [['data', 'data', 'pvc-c-data'], ['root', 'root', 'pvc-c-root']]);
});

test('claims that cannot be copied are refused saying why and what to do', () => {
  const guest = vmi('g', [data]);
  const objects = { claims: [claim('data')], pvs: [volume('data')], vmis: [guest] };
  const cases: [ClaimLookup, KObject, RegExp][] = [
    [lookup({ ...objects, vmis: [guest, vmi('other', [data])] }), guest, /also used by VMI other: .*stop it to migrate/],
    [lookup({ ...objects, snapshots: [{ apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', metadata: { name: 's1', namespace: 'default' }, spec: { source: { persistentVolumeClaimName: 'data' } } }] }), guest, /VolumeSnapshots \(s1\).*delete them to migrate/],
    [lookup({ ...objects, claims: [claim('data', { 'cdi.kubevirt.io/storage.pod.phase': 'Running' })] }), guest, /still being populated/],
    [lookup({ ...objects, pvs: [volume('data', {})] }), guest, /was not made by the vireo.io\/local provisioner/],
    [lookup({ ...objects, pvs: [volume('data', { 'pv.kubernetes.io/provisioned-by': 'vireo.io/local', 'vireo.io/encryption': 'luks' })] }), guest, /encrypted/],
    [lookup({ ...objects, claims: [] }), guest, /does not exist/],
    [lookup(objects), vmi('g', [{ name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } }]), /hotplugged.*unplug it/],
    [lookup(objects), vmi('g', [{ name: 'data', persistentVolumeClaim: { claimName: 'data', readOnly: true } }]), /read-only/],
  ];
  for (const [objectsLookup, subject, message] of cases) {
    const verdict = claimMigratabilityOf(subject, objectsLookup);
    assert.equal(verdict.migratable, false, String(message));
    if (verdict.migratable) continue;
    assert.equal(verdict.reason, 'DisksNotLiveMigratable');
    assert.match(verdict.message, message);
  }
});
