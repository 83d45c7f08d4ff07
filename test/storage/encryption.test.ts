/**
 * Encrypted local volumes end to end (StorageClass `encryption: luks`, key
 * from a Secret): the real server, agent and a TCG guest. What the guest
 * writes never reaches the volume file in the clear, a restarted VM reads
 * it back through the key, a VM whose key Secret is gone waits with
 * VolumeNotReady, and a class with a bad value leaves its claim Pending
 * with a ProvisioningFailed event.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, openVmEnv, phaseOf, skipWithoutQemu, vmis, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { claim, pvcVm } from './support.js';

const pvcs = resources.persistentVolumeClaims;
const bootMs = 120_000;
const marker = 'vireo-plaintext-marker-0123456789';

/** Fills the start of /dev/vdb with the marker at the first boot; at later boots reports whether it reads back. */
const userData = [
  '#!/bin/sh',
  `M=${marker}`,
  'if [ "$(head -c ${#M} /dev/vdb)" = "$M" ]; then echo "enc: marker found"; else',
  '  i=0; while [ $i -lt 512 ]; do printf "%s" "$M"; i=$((i+1)); done > /dev/vdb; sync; echo "enc: marker written"',
  'fi',
  '',
].join('\n');

function storageClass(name: string, parameters: Record<string, string>): KObject {
  return { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner: 'vireo.io/local', volumeBindingMode: 'Immediate', reclaimPolicy: 'Delete', parameters };
}

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-encryption-test');
  await importTestGuest(env.images);
});

after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
});

async function runningVmi(name: string, notUid: string | undefined): Promise<KObject> {
  return eventually(async () => {
    const vmi = await env.client.tryGet(vmis, 'default', name);
    return vmi !== undefined && vmi.metadata.uid !== notUid && phaseOf(vmi) === 'Running' ? vmi : undefined;
  }, { what: `VMI ${name} to run`, timeoutMs: bootMs, intervalMs: 100 });
}

async function stopVm(name: string): Promise<void> {
  await env.client.patch(vms, 'default', name, 'merge', { spec: { runStrategy: 'Halted' } });
  await eventually(async () => (await env.client.tryGet(vmis, 'default', name)) === undefined, { what: `VMI ${name} to go`, timeoutMs: 60_000, intervalMs: 100 });
}

const keySecret: KObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'vault-key', namespace: 'default' }, type: 'Opaque', data: { key: Buffer.from('correct horse battery staple').toString('base64') } };

for (const format of ['qcow2', 'raw'] as const) {
  test(`a ${format} LUKS volume: the guest's plaintext never reaches the file, a restarted VM reads it back, a missing key Secret makes the VMI wait`, { skip: skipWithoutQemu, timeout: 300_000 }, async (t) => {
    const className = `encrypted-${format}`;
    const claimName = `vault-${format}`;
    const vmName = `keeper-${format}`;
    const secret = { ...keySecret, metadata: { name: `vault-key-${format}`, namespace: 'default' } };
    await env.client.create(resources.secrets, secret);
    await env.client.create(resources.storageClasses, storageClass(className, {
      format,
      encryption: 'luks',
      encryptionSecretName: `vault-key-${format}`,
      encryptionSecretNamespace: 'default',
      ...(format === 'qcow2' ? { preallocation: 'metadata' } : {}),
    }));
    await env.client.create(pvcs, claim(claimName, '16Mi', { storageClassName: className }));
    await env.client.create(vms, pvcVm(vmName, { claimName, userData, graceSeconds: 5 }));
    const first = await runningVmi(vmName, undefined);
    const serial = await ConsoleCapture.open(env, vmName);
    t.after(() => { serial.close(); });
    await eventually(() => serial.text().includes('enc: marker written'), { what: 'the guest to write its marker', timeoutMs: bootMs, intervalMs: 200 });

    // The PV says it is encrypted; the file is LUKS and does not hold the marker anywhere.
    const pvc = await env.client.get(pvcs, 'default', claimName);
    const pv = await env.client.get(resources.persistentVolumes, undefined, stringAt(pvc, 'spec', 'volumeName') ?? '');
    assert.equal(pv.metadata.annotations?.['vireo.io/encryption'], 'luks');
    assert.equal(pv.metadata.annotations?.['vireo.io/encryption-secret'], `default/vault-key-${format}`);
    const file = join(stringAt(pv, 'spec', 'local', 'path') ?? '', 'disk.img');
    const info = JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', file], { encoding: 'utf8' })) as { format: string; encrypted?: boolean };
    assert.deepEqual({ format: info.format, encrypted: info.encrypted }, { format: format === 'qcow2' ? 'qcow2' : 'luks', encrypted: true });
    const bytes = readFileSync(file);
    assert.ok(bytes.length > 0);
    assert.equal(bytes.includes(Buffer.from(marker)), false, 'the marker the guest wrote 512 times is not in the volume file in the clear');
    assert.equal(bytes.includes(Buffer.from('correct horse battery staple')), false, 'nor is the key');
    assert.equal(readFileSync(join(env.agentDir, 'vmis', first.metadata.uid ?? '', 'master-key.aes')).length, 32, 'the VMI has its own master key');

    // A new VMI on the same volume reads the marker back through the key.
    serial.close();
    await stopVm(vmName);
    await env.client.patch(vms, 'default', vmName, 'merge', { spec: { runStrategy: 'Always' } });
    const second = await runningVmi(vmName, first.metadata.uid);
    const again = await ConsoleCapture.open(env, vmName);
    t.after(() => { again.close(); });
    await eventually(() => again.text().includes('enc: marker found'), { what: 'the restarted guest to read its marker', timeoutMs: bootMs, intervalMs: 200 });

    // Without its key Secret, the next start waits and says why.
    again.close();
    await stopVm(vmName);
    await env.client.delete(resources.secrets, 'default', `vault-key-${format}`);
    await env.client.patch(vms, 'default', vmName, 'merge', { spec: { runStrategy: 'Always' } });
    const waiting = await eventually(async () => {
      const vmi = await env.client.tryGet(vmis, 'default', vmName);
      const sync = recordsAt(vmi, 'status', 'conditions').find((c) => c.type === 'Synchronized');
      return vmi !== undefined && vmi.metadata.uid !== second.metadata.uid && stringAt(sync, 'reason') === 'VolumeNotReady' ? sync : undefined;
    }, { what: 'the VMI to wait for its key', timeoutMs: 60_000, intervalMs: 100 });
    assert.match(stringAt(waiting, 'message') ?? '', new RegExp(`encrypted \\(LUKS\\) with the key in Secret default/vault-key-${format}, which does not exist`));
    await stopVm(vmName);
  });
}

test('a class with a bad encryption value leaves its claim Pending with a ProvisioningFailed event', { skip: skipWithoutQemu, timeout: 60_000 }, async () => {
  await env.client.create(resources.storageClasses, storageClass('badenc', { encryption: 'aes' }));
  await env.client.create(pvcs, claim('badenc', '16Mi', { storageClassName: 'badenc' }));
  const event = await eventually(async () => {
    const list = await env.client.list(resources.events, { namespace: 'default' });
    return list.items.find((e) => stringAt(e, 'involvedObject', 'name') === 'badenc' && stringAt(e, 'reason') === 'ProvisioningFailed');
  }, { what: 'the ProvisioningFailed event', timeoutMs: 30_000, intervalMs: 100 });
  assert.match(stringAt(event, 'message') ?? '', /StorageClass "badenc" has parameter encryption "aes": use "luks"/);
  assert.equal(stringAt(await env.client.get(pvcs, 'default', 'badenc'), 'status', 'phase'), 'Pending');
});
