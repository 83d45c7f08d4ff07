/**
 * The guest agent's families written from decoded replies. The filesystems
 * are checked against a real guest in test/agent/metrics.test.ts; the load
 * is checked here only: `guest-get-load` needs qemu-ga 10.0, and the test
 * guest (Debian 12) runs 7.2.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { guestFsInfo, guestLoad } from '../guest-agent/schema.js';
import { Exposition, parseSamples } from './exposition.js';
import { writeGuestAgentStats } from './guest-agent-stats.js';

test('each filesystem gives capacity and used bytes by disk_name, mount_point and file_system_type; a size the agent did not give is left out', () => {
  const filesystems = guestFsInfo([
    { name: 'vda1', mountpoint: '/', type: 'ext4', 'total-bytes': 1000, 'used-bytes': 400, disk: [] },
    { name: 'sr0', mountpoint: '/media/a "cd"', type: 'iso9660', disk: [] },
  ], 'return');
  const out = new Exposition();
  writeGuestAgentStats({ at: 1, filesystems }, 'node="n",namespace="ns",name="vm"', out);
  const samples = parseSamples(out.text());
  assert.deepEqual(samples, [
    { name: 'kubevirt_vmi_filesystem_capacity_bytes', labels: { node: 'n', namespace: 'ns', name: 'vm', disk_name: 'vda1', mount_point: '/', file_system_type: 'ext4' }, value: 1000 },
    { name: 'kubevirt_vmi_filesystem_used_bytes', labels: { node: 'n', namespace: 'ns', name: 'vm', disk_name: 'vda1', mount_point: '/', file_system_type: 'ext4' }, value: 400 },
  ]);
});

test('the load averages of a qemu-ga 10 reply become the three load gauges; without a reply there are none', () => {
  const out = new Exposition();
  writeGuestAgentStats({ at: 1, load: guestLoad({ load1m: 0.5, load5m: 0.25, load15m: 0.125 }, 'return') }, 'name="vm"', out);
  const text = out.text();
  assert.match(text, /^# TYPE kubevirt_vmi_guest_load_1m gauge$/m);
  assert.deepEqual(parseSamples(text).map((s) => [s.name, s.value]), [['kubevirt_vmi_guest_load_1m', 0.5], ['kubevirt_vmi_guest_load_5m', 0.25], ['kubevirt_vmi_guest_load_15m', 0.125]]);
  assert.throws(() => guestLoad({ load1m: 'high', load5m: 0, load15m: 0 }, 'return'), /return\.load1m: expected a number/);

  const none = new Exposition();
  writeGuestAgentStats(undefined, 'name="vm"', none);
  writeGuestAgentStats({ at: 1 }, 'name="vm"', none);
  assert.equal(none.text(), '');
});
