/**
 * Every volume type the agent serves, on a real QEMU: emptyDisk and
 * hostDisk files, ConfigMap/Secret ISOs with their keys as files, and
 * cloud-init user data from a Secret that appears after the VMI.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { condition, createBound, getVmi, importBlankImage, phase, startAgentFixture, vmiDir, vmiManifest, waitVmi } from './support.js';

/** A file of an ISO, read with isoinfo (Rock Ridge names). */
function isoFile(iso: string, path: string): string {
  return execFileSync('isoinfo', ['-R', '-i', iso, '-x', path], { encoding: 'utf8' });
}

function isoLabel(iso: string): string {
  return /Volume id: (\S+)/.exec(execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' }))?.[1] ?? '';
}

test('emptyDisk, hostDisk, configMap, secret and a cloud-init secretRef become disks; a missing Secret holds the start until it exists', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importBlankImage(fixture.images);
  const hostDisk = join(fixture.dataDir, '..', 'host', 'data.img');
  await fixture.client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app', namespace: 'default' }, data: { 'app.conf': 'color=blue\n', unused: 'x' } });
  await fixture.client.create(resources.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { password: Buffer.from('s3cret').toString('base64') } });
  const volumes = [
    { name: 'scratch', emptyDisk: { capacity: '64Mi' } },
    { name: 'host', hostDisk: { path: hostDisk, type: 'DiskOrCreate', capacity: '32Mi' } },
    { name: 'config', configMap: { name: 'app' } },
    { name: 'creds', secret: { secretName: 'creds', volumeLabel: 'CREDS' } },
    { name: 'cloudinit', cloudInitNoCloud: { secretRef: { name: 'userdata' } } },
  ];
  const disks = volumes.map((v) => ({ name: v.name, disk: { bus: 'virtio' } }));
  const created = await createBound(fixture, vmiManifest('vols', { volumes, disks }));
  const waiting = await waitVmi(fixture, 'vols', (v) => condition(v, 'Synchronized')?.reason === 'VolumeNotReady', 'the missing Secret to be reported');
  assert.match(condition(waiting, 'Synchronized')?.message ?? '', /secret "userdata" \(secretRef\) not found in namespace "default"/);
  assert.equal(phase(waiting), 'Scheduled');

  await fixture.client.create(resources.secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'userdata', namespace: 'default' }, data: { userdata: Buffer.from('#cloud-config\nhostname: from-secret\n').toString('base64') } });
  await waitVmi(fixture, 'vols', (v) => phase(v) === 'Running', 'the VMI to run once the Secret exists', 30_000);

  const disksDir = join(vmiDir(fixture, created.metadata.uid ?? ''), 'disks');
  assert.match(execFileSync('qemu-img', ['info', '-U', join(disksDir, 'scratch.qcow2')], { encoding: 'utf8' }), /virtual size: 64 MiB/);
  assert.equal(statSync(hostDisk).size, 32 * 1024 * 1024, 'DiskOrCreate made a sparse raw file of the capacity');
  assert.equal(isoFile(join(disksDir, 'config.iso'), '/app.conf'), 'color=blue\n');
  assert.equal(isoFile(join(disksDir, 'config.iso'), '/unused'), 'x');
  assert.equal(isoLabel(join(disksDir, 'config.iso')), 'cfgdata');
  assert.equal(isoFile(join(disksDir, 'creds.iso'), '/password'), 's3cret');
  assert.equal(isoLabel(join(disksDir, 'creds.iso')), 'CREDS');
  assert.equal(isoLabel(join(disksDir, 'cloudinit.iso')), 'cidata');
  assert.match(isoFile(join(disksDir, 'cloudinit.iso'), '/user-data'), /hostname: from-secret/);
  assert.match(isoFile(join(disksDir, 'cloudinit.iso'), '/meta-data'), new RegExp(`instance-id: ${created.metadata.uid ?? ''}\nlocal-hostname: vols`));

  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'vols');
  await eventually(async () => (await getVmi(fixture, 'vols')) === undefined, { what: 'the VMI to be gone' });
  assert.ok(!existsSync(disksDir), 'the VMI\'s own disks are gone');
  assert.ok(existsSync(hostDisk), 'a hostDisk is the node\'s file: it stays');
});
