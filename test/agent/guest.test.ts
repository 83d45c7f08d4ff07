/**
 * The real test guest under TCG on a real agent: it boots, applies
 * cloud-init (NoCloud from its disk, ConfigDrive with kernelBoot), talks on
 * a shared serial console, powers off cleanly on its own and on the ACPI
 * button when its VMI is deleted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, ensureTestGuest, importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { condition, createBound, getVmi, phase, qemuPidsUnder, startAgentFixture, vmiDir, vmiManifest, waitVmi } from './support.js';

const bootTimeoutMs = 90_000;

function collect(stream: Readable): () => string {
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  return () => text;
}

function cloudInitVolume(kind: 'cloudInitNoCloud' | 'cloudInitConfigDrive', script: string): { volumes: unknown[]; disks: unknown[] } {
  return { volumes: [{ name: 'cloudinit', [kind]: { userData: script } }], disks: [{ name: 'cloudinit', disk: { bus: 'virtio' } }] };
}

test('the test guest boots, runs its NoCloud script, shares its console, and powering off makes the VMI Succeeded', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importTestGuest(fixture.images);
  const manifest = vmiManifest('tiny', { image: TEST_GUEST_IMAGE, graceSeconds: 30, ...cloudInitVolume('cloudInitNoCloud', '#!/bin/sh\necho "nocloud-script-ran on $(hostname)"\n') });
  (manifest.spec as { domain: { memory: { guest: string } } }).domain.memory.guest = '128Mi';
  const created = await createBound(fixture, manifest);
  await waitVmi(fixture, 'tiny', (v) => phase(v) === 'Running', 'the VMI to run');
  const log = await eventually(async () => {
    const text = await fixture.agent.serialLog('default', 'tiny');
    return text.includes(TEST_GUEST_READY_MARKER) ? text : undefined;
  }, { what: 'the guest to be ready', timeoutMs: bootTimeoutMs, intervalMs: 200 });
  assert.match(log, /nocloud-script-ran on tiny/, 'the user-data script ran, with the VMI name as hostname');
  assert.match(log, /Linux version/, 'the kept log has the whole boot, from the kernel\'s first line');

  const a = await fixture.agent.openStream('default', 'tiny', 'console');
  const b = await fixture.agent.openStream('default', 'tiny', 'console');
  const seenA = collect(a);
  const seenB = collect(b);
  a.write('\necho hello-$((6*7))\n');
  await eventually(() => seenA().includes('hello-42') && seenB().includes('hello-42'), { what: 'both sessions to see the answer', timeoutMs: 30_000 });
  b.write('poweroff\n');
  const done = await waitVmi(fixture, 'tiny', (v) => phase(v) === 'Succeeded', 'the VMI to succeed', 60_000);
  assert.equal(condition(done, 'Ready')?.reason, 'GuestShutdown');
  await eventually(() => a.readableEnded && b.readableEnded, { what: 'the console sessions to end' });
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), []);
  // The ended guest's console output stays readable until its VMI is deleted.
  assert.match(await fixture.agent.serialLog('default', 'tiny'), /hello-42/);
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'tiny');
  await eventually(async () => (await getVmi(fixture, 'tiny')) === undefined && !existsSync(vmiDir(fixture, created.metadata.uid ?? '')), { what: 'the VMI and its directory to go' });
});

test('kernelBoot with ConfigDrive boots; deleting the VMI powers the guest off by ACPI within its grace period', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importTestGuest(fixture.images);
  const { volumes, disks } = cloudInitVolume('cloudInitConfigDrive', '#!/bin/sh\necho configdrive-script-ran\n');
  await createBound(fixture, {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'kb', namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: 120,
      domain: {
        firmware: { kernelBoot: { kernelArgs: (await ensureTestGuest()).kernelArgs, container: { image: TEST_GUEST_IMAGE, kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' } } },
        devices: { autoattachGraphicsDevice: false, disks },
        memory: { guest: '128Mi' },
        resources: {},
      },
      volumes,
    },
  });
  await eventually(async () => (await fixture.agent.serialLog('default', 'kb').catch(() => '')).includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootTimeoutMs, intervalMs: 200 });
  assert.match(await fixture.agent.serialLog('default', 'kb'), /configdrive-script-ran/);
  const running = await getVmi(fixture, 'kb');
  assert.equal(running === undefined ? undefined : phase(running), 'Running');

  const started = Date.now();
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'kb');
  await eventually(async () => (await getVmi(fixture, 'kb')) === undefined, { what: 'the VMI to be gone', timeoutMs: 60_000 });
  // Killed at the end of the grace period it would have taken 120 s; the guest answered the power button.
  assert.ok(Date.now() - started < 60_000, `the guest powered off by itself (${Date.now() - started} ms)`);
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), []);
});
