/**
 * Volume hotplug end to end: the real API server with its controllers,
 * scheduler and node agent (TCG), the real `vireo` CLI. A running VM gets
 * a claim hot-plugged (`vireo addvolume`), the guest sees a new SCSI disk
 * appear and, after `vireo removevolume`, disappear; `status.volumeStatus`
 * moves through KubeVirt's phases; `--persist` changes the VM's spec too;
 * KubeVirt's refusals come back as virtctl words them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, closeVmEnv, openVmEnv, phaseOf, skipWithoutQemu, vmis, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { vireo } from '../subresources/support.js';
import { claim, pvcVm } from './support.js';

const pvcs = resources.persistentVolumeClaims;
const bootMs = 120_000;

/** Prints the guest's block devices whenever they change, so the test sees disks come and go. */
const userData = [
  '#!/bin/sh',
  '( last=""; while true; do cur=$(ls /sys/block | tr "\\n" " "); if [ "$cur" != "$last" ]; then echo "blocks: $cur"; last="$cur"; fi; sleep 1; done ) </dev/null >/dev/console 2>&1 &',
  '',
].join('\n');

let env: VmEnv;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-hotplug-test');
  await importTestGuest(env.images);
});

after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
});

/** The volumeStatus entry of `volume`, if any. */
function volumeStatus(vmi: KObject | undefined, volume: string): Record<string, unknown> | undefined {
  return recordsAt(vmi, 'status', 'volumeStatus').find((s) => s.name === volume);
}

/** Polls the VMI until `done`, collecting each phase `volume` showed, in order. */
async function followPhases(name: string, volume: string, done: (vmi: KObject) => boolean): Promise<{ phases: string[]; vmi: KObject }> {
  const phases: string[] = [];
  const vmi = await eventually(async () => {
    const current = await env.client.get(vmis, 'default', name);
    const phase = stringAt(volumeStatus(current, volume), 'phase');
    if (phase !== undefined && phases[phases.length - 1] !== phase) phases.push(phase);
    return done(current) ? current : undefined;
  }, { what: `volume ${volume} of VMI ${name}`, timeoutMs: 60_000, intervalMs: 20 });
  return { phases, vmi };
}

/** Each `ls /sys/block` the guest printed, in order. */
function blockLists(text: string): string[] {
  return [...text.matchAll(/blocks: ([a-z0-9 ]*?) ?\r?\n/g)].map((m) => m[1] ?? '');
}

function lastBlocks(serial: ConsoleCapture): string | undefined {
  return blockLists(serial.text()).at(-1);
}

const kubevirtOrder = ['Pending', 'Bound', 'AttachedToNode', 'Ready'];

test('a running VM gets a claim hotplugged and unplugged with vireo addvolume/removevolume, the guest sees the disk come and go', { skip: skipWithoutQemu, timeout: 240_000 }, async (t) => {
  await env.client.create(pvcs, claim('hot', '16Mi'));
  await env.client.create(pvcs, claim('kept', '16Mi'));
  await env.client.create(vms, pvcVm('hp', { userData, graceSeconds: 5 }));
  await eventually(async () => phaseOf(await env.client.tryGet(vmis, 'default', 'hp')) === 'Running', { what: 'VMI hp to run', timeoutMs: bootMs, intervalMs: 100 });
  const serial = await ConsoleCapture.open(env, 'hp');
  t.after(() => { serial.close(); });
  t.after(() => { if (process.env.HOTPLUG_DEBUG === '1') process.stderr.write(serial.text().slice(-3000)); });
  await eventually(() => lastBlocks(serial) === 'vda vdb', { what: 'the guest to list its boot disks', timeoutMs: bootMs, intervalMs: 200 });
  const kubeconfig = env.server.kubeconfig;

  // KubeVirt's refusals, as virtctl prints them.
  const missing = await vireo(['addvolume', 'hp', '--volume-name=nope'], { kubeconfig });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /Volume nope is not a DataVolume or PersistentVolumeClaim/);
  const notHotplugged = await vireo(['removevolume', 'hp', '--volume-name=root'], { kubeconfig });
  assert.notEqual(notHotplugged.code, 0);
  assert.match(notHotplugged.stderr, /error removing volume, Unable to remove volume \[root\] because it is not hotpluggable/);
  const badCache = await vireo(['addvolume', 'hp', '--volume-name=hot', '--cache=fast'], { kubeconfig });
  assert.match(badCache.stderr, /invalid cache value fast/);
  const dry = await vireo(['addvolume', 'hp', '--volume-name=hot', '--dry-run'], { kubeconfig });
  assert.equal(dry.code, 0, dry.stderr);
  assert.equal(volumeStatus(await env.client.get(vmis, 'default', 'hp'), 'hot'), undefined, 'a dry run changes nothing');

  // Hotplug: the VMI spec gets the volume and a scsi disk; the agent attaches it; the guest sees sda.
  const add = await vireo(['addvolume', 'hp', '--volume-name=hot'], { kubeconfig });
  assert.equal(add.code, 0, add.stderr);
  assert.equal(add.stdout, 'Successfully submitted add volume request to VM hp for volume hot\n');
  const attached = await followPhases('hp', 'hot', (vmi) => stringAt(volumeStatus(vmi, 'hot'), 'phase') === 'Ready');
  const seen = attached.phases.filter((p) => kubevirtOrder.includes(p));
  assert.deepEqual(seen, kubevirtOrder.filter((p) => seen.includes(p)), `phases in KubeVirt's order: ${attached.phases.join(' → ')}`);
  assert.ok(attached.phases.length >= 2, `the volume went through phases before Ready: ${attached.phases.join(' → ')}`);
  const ready = volumeStatus(attached.vmi, 'hot');
  assert.deepEqual(ready, { name: 'hot', target: 'sda', phase: 'Ready', reason: 'VolumeReady', message: 'Successfully attach hotplugged volume hot to VM', hotplugVolume: {} });
  assert.deepEqual(recordsAt(attached.vmi, 'spec', 'volumes').find((v) => v.name === 'hot'), { name: 'hot', persistentVolumeClaim: { claimName: 'hot', hotpluggable: true } });
  assert.deepEqual(recordsAt(attached.vmi, 'spec', 'domain', 'devices', 'disks').find((d) => d.name === 'hot'), { name: 'hot', disk: { bus: 'scsi' }, serial: 'hot' });
  await eventually(() => lastBlocks(serial) === 'sda vda vdb', { what: 'the guest to see the hotplugged disk', timeoutMs: 60_000, intervalMs: 200 });
  assert.equal(stringAt(await env.client.get(pvcs, 'default', 'hot'), 'status', 'phase'), 'Bound', 'the WaitForFirstConsumer claim was provisioned for the hotplug');
  const again = await vireo(['addvolume', 'hp', '--volume-name=hot'], { kubeconfig });
  assert.match(again.stderr, /error adding volume, Unable to add volume \[hot\] because volume with that name already exists/);

  // Unplug: the guest lets go, the status entry and the spec entry go.
  const remove = await vireo(['removevolume', 'hp', '--volume-name=hot'], { kubeconfig });
  assert.equal(remove.code, 0, remove.stderr);
  assert.equal(remove.stdout, 'Successfully submitted remove volume request to VM hp for volume hot\n');
  await followPhases('hp', 'hot', (vmi) => volumeStatus(vmi, 'hot') === undefined);
  await eventually(() => lastBlocks(serial) === 'vda vdb', { what: 'the guest to lose the disk', timeoutMs: 60_000, intervalMs: 200 });

  // --persist: through the VM, its template keeps the volume; no restart is asked for.
  const persist = await vireo(['addvolume', 'hp', '--volume-name=kept', '--persist', '--serial=KEPT1'], { kubeconfig });
  assert.equal(persist.code, 0, persist.stderr);
  await followPhases('hp', 'kept', (vmi) => stringAt(volumeStatus(vmi, 'kept'), 'phase') === 'Ready');
  const persisted = await env.client.get(vms, 'default', 'hp');
  assert.deepEqual(recordsAt(persisted, 'spec', 'template', 'spec', 'volumes').find((v) => v.name === 'kept'), { name: 'kept', persistentVolumeClaim: { claimName: 'kept', hotpluggable: true } });
  assert.deepEqual(recordsAt(persisted, 'spec', 'template', 'spec', 'domain', 'devices', 'disks').find((d) => d.name === 'kept'), { name: 'kept', disk: { bus: 'scsi' }, serial: 'KEPT1' });
  assert.equal(recordsAt(persisted, 'status', 'volumeRequests').length, 0, 'the applied request is cleared');
  await eventually(async () => {
    const current = await env.client.get(vms, 'default', 'hp');
    return recordsAt(current, 'status', 'conditions').some((c) => c.type === 'Ready' && c.status === 'True') && !recordsAt(current, 'status', 'conditions').some((c) => c.type === 'RestartRequired');
  }, { what: 'the VM to stay Ready without RestartRequired', timeoutMs: 10_000 });
  await eventually(() => lastBlocks(serial) === 'sda vda vdb', { what: 'the guest to see the persisted disk', timeoutMs: 60_000, intervalMs: 200 });
  const unpersist = await vireo(['removevolume', 'hp', '--volume-name=kept', '--persist'], { kubeconfig });
  assert.equal(unpersist.code, 0, unpersist.stderr);
  await followPhases('hp', 'kept', (vmi) => volumeStatus(vmi, 'kept') === undefined);
  const after = await env.client.get(vms, 'default', 'hp');
  assert.equal(recordsAt(after, 'spec', 'template', 'spec', 'volumes').some((v) => v.name === 'kept'), false);
});
