/**
 * Bad input on a real node: an image that is not there yet (KubeVirt's
 * ErrImagePull, then it starts once imported), a volume type the agent
 * cannot serve, and a QEMU that refuses to start (its own error shown).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { condition, createBound, importBlankImage, phase, qemuPidsUnder, startAgentFixture, vmiDir, vmiManifest, waitVmi } from './support.js';

test('a missing containerDisk image shows ErrImagePull and keeps the VMI Scheduled; importing it starts the VMI', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await createBound(fixture, vmiManifest('pull'));
  // KubeVirt's reasons: ErrImagePull after a failed pull, ImagePullBackOff once retries back off.
  const waiting = await waitVmi(fixture, 'pull', (v) => ['ErrImagePull', 'ImagePullBackOff'].includes(condition(v, 'Synchronized')?.reason ?? ''), 'ErrImagePull');
  assert.equal(phase(waiting), 'Scheduled');
  assert.equal(condition(waiting, 'Synchronized')?.status, 'False');
  assert.match(condition(waiting, 'Synchronized')?.message ?? '', /image "localhost\/vireo\/blank:latest" not found in the node's image store/);
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), []);
  await importBlankImage(fixture.images);
  const running = await waitVmi(fixture, 'pull', (v) => phase(v) === 'Running', 'the VMI to run once the image is there');
  assert.equal(condition(running, 'Synchronized'), undefined, 'the pull error is cleared');
});

test('a volume type the agent cannot serve fails the VMI with a message that names it', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importBlankImage(fixture.images);
  // A Windows sysprep answer file: no Windows guests here yet.
  const created = await createBound(fixture, vmiManifest('sysprep', { volumes: [{ name: 'answers', sysprep: { configMap: { name: 'answers' } } }], disks: [{ name: 'answers', cdrom: { bus: 'sata' } }] }));
  const failed = await waitVmi(fixture, 'sysprep', (v) => phase(v) === 'Failed', 'the VMI to fail');
  assert.equal(condition(failed, 'Synchronized')?.reason, 'FailedCreate');
  assert.match(condition(failed, 'Synchronized')?.message ?? '', /volume "answers" is a sysprep volume, which this node agent does not support yet/);
  await waitVmi(fixture, 'sysprep', (v) => (v.metadata.finalizers ?? []).length === 0, 'the finalizer to be released');
  assert.ok(!existsSync(vmiDir(fixture, created.metadata.uid ?? '')));
});

test('a QEMU that refuses to start fails the VMI with QEMU\'s own error', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await importBlankImage(fixture.images);
  const manifest = vmiManifest('badcpu');
  const spec = manifest.spec as { domain: Record<string, unknown> };
  spec.domain.cpu = { model: 'Nonexistent-CPU' };
  await createBound(fixture, manifest);
  const failed = await waitVmi(fixture, 'badcpu', (v) => phase(v) === 'Failed', 'the VMI to fail');
  assert.match(condition(failed, 'Synchronized')?.message ?? '', /qemu-system-x86_64: .*Nonexistent-CPU/);
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), []);
});
