import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../api/object.js';
import { DomainConfigError } from './errors.js';
import { hotplugCommands, hotplugNodeName } from './hotplug.js';

function vmi(disk: Record<string, unknown>): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'v', namespace: 'default', uid: 'u' },
    spec: { domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, disk] } }, volumes: [{ name: 'hot', persistentVolumeClaim: { claimName: 'hot', hotpluggable: true } }] },
  };
}

test('a hotplugged disk becomes QMP file/format nodes and a scsi-hd QEMU places itself', () => {
  const node = hotplugNodeName('hot');
  assert.match(node, /^hp-[0-9a-f]{16}$/);
  assert.ok(node.length <= 31, 'QEMU node names stop at 31 characters');
  const commands = hotplugCommands(vmi({ name: 'hot', disk: { bus: 'scsi' }, serial: 'S1', cache: 'writeback' }), 'hot', { name: 'hot', file: '/v/disk.img', format: 'raw', directIo: true });
  assert.deepEqual(commands.file, { driver: 'file', filename: '/v/disk.img', 'node-name': `${node}-file`, cache: { direct: false, 'no-flush': false }, discard: 'unmap', 'read-only': false });
  assert.deepEqual(commands.format, { driver: 'raw', file: `${node}-file`, 'node-name': node, cache: { direct: false, 'no-flush': false }, discard: 'unmap', 'read-only': false });
  assert.deepEqual(commands.device, { driver: 'scsi-hd', bus: 'scsi0.0', drive: node, id: 'ua-hot', serial: 'S1', 'write-cache': 'on', werror: 'stop', rerror: 'stop' });
  assert.equal(commands.secret, undefined);
});

test('an encrypted hotplugged disk brings its sealed key as a secret object', () => {
  const commands = hotplugCommands(vmi({ name: 'hot', disk: { bus: 'scsi' } }), 'hot', { name: 'hot', file: '/v/disk.img', format: 'qcow2', encryption: { format: 'luks', key: { data: 'ZGF0YQ==', iv: 'aXY=' } } });
  const node = hotplugNodeName('hot');
  assert.deepEqual(commands.secret, { 'qom-type': 'secret', id: `${node}-key`, data: 'ZGF0YQ==', format: 'base64', keyid: 'masterKey0', iv: 'aXY=' });
  assert.deepEqual(commands.format.encrypt, { format: 'luks', 'key-secret': `${node}-key` });
});

test('only scsi disks can be hotplugged', () => {
  assert.throws(() => hotplugCommands(vmi({ name: 'hot', disk: { bus: 'virtio' } }), 'hot', { name: 'hot', file: '/v/d', format: 'raw' }), (err: unknown) => err instanceof DomainConfigError && /does not use a scsi bus/.test(err.message));
});
