import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { at } from '../../api/kinds/read.js';
import { buildVmi, uuidV5 } from './vmi-builder.js';

test('the firmware UUID is KubeVirt\'s name-based UUID', () => {
  // uuid.uuid5(UUID('6a1a24a1-4061-4607-8bf4-a3963d0c5895'), 'testvm'), as CalculateLegacyUUID computes it.
  assert.equal(uuidV5('6a1a24a1-4061-4607-8bf4-a3963d0c5895', 'testvm'), '5a9fc181-957e-5c32-9e5a-2de5e9673531');
});

test('every volume gets a disk, and the VM name gives a stable firmware UUID', () => {
  const vm: KObject = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'testvm', namespace: 'ns', uid: 'u', generation: 3 },
    spec: { template: { spec: { domain: { devices: { disks: [{ name: 'a' }] } }, volumes: [{ name: 'a' }, { name: 'b' }] } } },
  };
  const vmi = buildVmi(vm, { paused: true });
  assert.deepEqual(at(vmi, 'spec', 'domain', 'devices', 'disks'), [{ name: 'a' }, { name: 'b' }]);
  assert.equal(at(vmi, 'spec', 'domain', 'firmware', 'uuid'), '5a9fc181-957e-5c32-9e5a-2de5e9673531');
  assert.equal(at(vmi, 'spec', 'startStrategy'), 'Paused');
  assert.equal(vmi.metadata.annotations?.['kubevirt.io/vm-generation'], '3');
});
