import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../api/errors.js';
import { applyVolumeRequest, parseAddVolumeOptions, parseRemoveVolumeOptions, volumeRequestProblem } from './volumes.js';

const pvcSource = { persistentVolumeClaim: { claimName: 'data' } };

test('AddVolumeOptions: KubeVirt\'s required fields and hotplug rules', () => {
  const ok = parseAddVolumeOptions({ name: 'data', disk: { name: 'other', disk: { bus: 'scsi' } }, volumeSource: pvcSource, dryRun: ['All'] });
  assert.deepEqual(ok, { name: 'data', disk: { name: 'data', disk: { bus: 'scsi' } }, volumeSource: { persistentVolumeClaim: { claimName: 'data', hotpluggable: true } }, dryRun: true });
  const refusal = (body: unknown): string => {
    try {
      parseAddVolumeOptions(body);
    } catch (err) {
      assert.ok(err instanceof ApiError);
      return err.message;
    }
    assert.fail(`${JSON.stringify(body)} was accepted`);
  };
  assert.equal(refusal(undefined), 'Request with no body, a new name is expected as the request body');
  assert.equal(refusal({ disk: {}, volumeSource: pvcSource }), 'AddVolumeOptions requires name to be set');
  assert.equal(refusal({ name: 'd', volumeSource: pvcSource }), 'AddVolumeOptions requires disk to not be nil');
  assert.equal(refusal({ name: 'd', disk: { disk: { bus: 'scsi' } } }), 'AddVolumeOptions requires VolumeSource to not be nil');
  assert.match(refusal({ name: 'd', disk: { disk: { bus: 'scsi' } }, volumeSource: { containerDisk: { image: 'x' } } }), /volume d is not a PVC or DataVolume/);
  assert.equal(refusal({ name: 'd', disk: { disk: { bus: 'virtio' } }, volumeSource: pvcSource }), 'hotplugged Disk d does not use a scsi bus');
  assert.equal(refusal({ name: 'd', disk: { cdrom: { bus: 'scsi' } }, volumeSource: pvcSource }), 'new hotplugged Disk d cannot have type cdrom');
  assert.equal(parseRemoveVolumeOptions({ name: 'd' }).name, 'd');
});

test('volume requests against a spec: unique names and sources, only hotplugged volumes removed', () => {
  const volumes = [{ name: 'root', containerDisk: { image: 'x' } }, { name: 'data', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } }];
  const add = parseAddVolumeOptions({ name: 'data', disk: { disk: { bus: 'scsi' } }, volumeSource: pvcSource });
  assert.equal(volumeRequestProblem(volumes, add), 'Unable to add volume [data] because volume with that name already exists');
  const sameSource = parseAddVolumeOptions({ name: 'other', disk: { disk: { bus: 'scsi' } }, volumeSource: pvcSource });
  assert.equal(volumeRequestProblem(volumes, sameSource), 'Unable to add volume source [data] because it already exists');
  assert.equal(volumeRequestProblem(volumes, { name: 'root', dryRun: false }), 'Unable to remove volume [root] because it is not hotpluggable');
  assert.equal(volumeRequestProblem(volumes, { name: 'gone', dryRun: false }), 'Unable to remove volume [gone] because it does not exist');
  const spec = { domain: { devices: { disks: [{ name: 'root' }, { name: 'data', disk: { bus: 'scsi' } }] } }, volumes };
  assert.deepEqual(applyVolumeRequest(spec, { name: 'data', dryRun: false }), { domain: { devices: { disks: [{ name: 'root' }] } }, volumes: [volumes[0]] });
  const added = applyVolumeRequest({ domain: {} }, sameSource);
  assert.deepEqual(added, { domain: { devices: { disks: [{ name: 'other', disk: { bus: 'scsi' } }] } }, volumes: [{ name: 'other', persistentVolumeClaim: { claimName: 'data', hotpluggable: true } }] });
});
