/**
 * The QEMU guest agent end to end, with a real guest under TCG: the test
 * guest runs Debian's qemu-ga on the VMI's `org.qemu.guest_agent.0` port,
 * the VMI gets KubeVirt's AgentConnected condition and `guestOSInfo`, and an
 * online VirtualMachineSnapshot freezes the guest's mounted data disk
 * around the cut (the guest's fsfreeze hook prints it on the console) and
 * says `[GuestAgent, Online]`; the guest writes on after the thaw. The
 * `freeze`/`unfreeze` subresources stall the guest's writes until unfrozen
 * (or until their `unfreezeTimeout`), with `fsFreezeStatus: frozen` on the
 * VMI meanwhile. Once the agent is stopped inside the guest, the VMI loses
 * AgentConnected, a freeze is refused, and the next snapshot is
 * crash-consistent: `[NoGuestAgent, Online]`, no freeze.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { arrayAt, booleanAt, recordAt, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, phaseOf, skipWithoutQemu, startVmEnv, vmis, vms } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { claim, pvcVm } from './support.js';

const pvcs = resources.persistentVolumeClaims;
const vmSnapshots = resources.virtualMachineSnapshots;
const bootMs = 120_000;
const vmiPath = '/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/guest';

/**
 * Formats the data disk, mounts it, and writes a counter to it twice a
 * second (synced, so a freeze blocks it), printing every fourth; when the
 * claim grows (the test's signal) it stops the guest agent.
 */
const userData = [
  '#!/bin/sh',
  'mkdir -p /mnt/data',
  'mke2fs -q /dev/vdb && mount -t ext4 /dev/vdb /mnt/data && echo "data: mounted"',
  '(i=0; while true; do i=$((i+1)); echo "$i" > /mnt/data/counter; sync; [ $((i % 4)) = 0 ] && echo "writer: $i"; sleep 0.5; done) &',
  's=$(cat /sys/block/vdb/size)',
  'while [ "$(cat /sys/block/vdb/size)" = "$s" ]; do sleep 1; done',
  'killall qemu-ga && echo "agent: stopped"',
  '',
].join('\n');

function conditionOf(obj: KObject | undefined, type: string): Record<string, unknown> | undefined {
  return recordsAt(obj, 'status', 'conditions').find((c) => c.type === type);
}

async function vmiWhere(env: VmEnv, what: string, done: (vmi: KObject) => boolean): Promise<KObject> {
  return eventually(async () => {
    const vmi = await env.client.tryGet(vmis, 'default', 'guest');
    if (vmi !== undefined && done(vmi)) return vmi;
    throw new Error(`status ${JSON.stringify(vmi?.status ?? null)}`);
  }, { what, timeoutMs: bootMs, intervalMs: 200 });
}

async function snapshot(env: VmEnv, name: string): Promise<KObject> {
  await env.client.create(vmSnapshots, { apiVersion: 'snapshot.kubevirt.io/v1beta1', kind: 'VirtualMachineSnapshot', metadata: { name, namespace: 'default' }, spec: { source: { apiGroup: 'kubevirt.io', kind: 'VirtualMachine', name: 'guest' } } });
  return eventually(async () => {
    const snap = await env.client.tryGet(vmSnapshots, 'default', name);
    if (snap !== undefined && booleanAt(snap, 'status', 'readyToUse') === true) return snap;
    throw new Error(`status ${JSON.stringify(snap?.status ?? null)}`);
  }, { what: `snapshot ${name} to be ready`, timeoutMs: 60_000, intervalMs: 100 });
}

async function consoleSays(capture: ConsoleCapture, text: string, what: string): Promise<void> {
  await eventually(() => capture.text().includes(text), { what: `${what} (console says "${text}")`, timeoutMs: bootMs, intervalMs: 200 });
}

/** The highest counter the guest's writer printed so far. */
function lastWrite(capture: ConsoleCapture): number {
  return Math.max(0, ...[...capture.text().matchAll(/writer: (\d+)/g)].map((m) => Number(m[1])));
}

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

test('the guest agent: AgentConnected, guestOSInfo, a frozen online snapshot, and a crash-consistent one once the agent stops', { skip: skipWithoutQemu, timeout: 300_000 }, async (t: TestContext) => {
  const env = await startVmEnv(t);
  await importTestGuest(env.images);
  await env.client.create(pvcs, claim('data', '64Mi'));
  await env.client.create(vms, pvcVm('guest', { claimName: 'data', userData, graceSeconds: 0 }));
  await vmiWhere(env, 'the VMI to run', (vmi) => phaseOf(vmi) === 'Running');
  const capture = await ConsoleCapture.open(env, 'guest');
  t.after(() => { capture.close(); });
  await consoleSays(capture, 'vireo-guest: qemu-ga started on /dev/vport', 'the guest to start its agent');
  await consoleSays(capture, 'data: mounted', 'the guest to mount its data disk');

  // The agent answers: AgentConnected and the guest's OS as qemu-ga reads it.
  const connected = await vmiWhere(env, 'the VMI to say its agent is connected', (vmi) => conditionOf(vmi, 'AgentConnected')?.status === 'True' && stringAt(vmi, 'status', 'guestOSInfo', 'id') !== undefined);
  const os = recordAt(connected, 'status', 'guestOSInfo');
  assert.equal(os?.id, 'vireo-tiny');
  assert.equal(os?.prettyName, 'Vireo tiny test guest');
  assert.equal(os?.versionId, '1');
  assert.equal(os?.machine, 'x86_64');
  assert.match(String(os?.kernelRelease), /^\d+\.\d+\.\d+-\d+-amd64$/);
  assert.equal(stringAt(connected, 'status', 'fsFreezeStatus'), undefined, 'not frozen');

  // An online snapshot with the agent: the data disk is frozen for the cut and thawed after.
  const withAgent = await snapshot(env, 'with-agent');
  assert.deepEqual(arrayAt(withAgent, 'status', 'indications'), ['GuestAgent', 'Online']);
  await consoleSays(capture, 'vireo-guest: fsfreeze thaw', 'the guest to be thawed');
  const text = capture.text();
  assert.equal(count(text, 'vireo-guest: fsfreeze freeze'), 1, text);
  assert.ok(text.indexOf('vireo-guest: fsfreeze freeze') < text.indexOf('vireo-guest: fsfreeze thaw'), 'frozen, then thawed');
  const atThaw = lastWrite(capture);
  await eventually(() => lastWrite(capture) > atThaw + 4, { what: `the guest to write on after the thaw (last: ${atThaw})`, timeoutMs: 60_000, intervalMs: 200 });
  const thawed = await env.client.get(vmis, 'default', 'guest');
  assert.equal(phaseOf(thawed), 'Running');
  assert.equal(stringAt(thawed, 'status', 'fsFreezeStatus'), undefined, 'thawed');

  // The freeze subresource really freezes: the guest's writes stall until unfreeze.
  const put = (op: string, body?: unknown): ReturnType<typeof env.server.fetch> =>
    env.server.fetch('PUT', `${vmiPath}/${op}`, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const bad = await put('freeze', { unfreezeTimeout: 'soon' });
  assert.equal(bad.status, 400, bad.body);
  assert.match(bad.body, /unfreezeTimeout must be a duration/);
  const freeze = await put('freeze', { unfreezeTimeout: '2m' });
  assert.equal(freeze.status, 202, freeze.body);
  await vmiWhere(env, 'the VMI to say it is frozen', (vmi) => stringAt(vmi, 'status', 'fsFreezeStatus') === 'frozen');
  await eventually(() => count(capture.text(), 'vireo-guest: fsfreeze freeze') === 2, { what: 'the guest to be frozen again', timeoutMs: 30_000, intervalMs: 100 });
  const atFreeze = lastWrite(capture);
  // Nothing to wait for here: the point is that nothing happens. One line may have been on its way.
  await sleep(5_000);
  assert.ok(lastWrite(capture) <= atFreeze + 4, `the guest wrote on while frozen: ${atFreeze} → ${lastWrite(capture)}`);
  const unfreeze = await put('unfreeze');
  assert.equal(unfreeze.status, 202, unfreeze.body);
  await vmiWhere(env, 'the VMI to say it is thawed', (vmi) => stringAt(vmi, 'status', 'fsFreezeStatus') === undefined);
  await eventually(() => lastWrite(capture) > atFreeze + 8, { what: 'the guest to write on after unfreeze', timeoutMs: 60_000, intervalMs: 200 });
  // A freeze nobody undoes is undone after its unfreezeTimeout.
  const brief = await put('freeze', { unfreezeTimeout: '3s' });
  assert.equal(brief.status, 202, brief.body);
  await eventually(() => count(capture.text(), 'vireo-guest: fsfreeze thaw') === 3, { what: 'the guest to be thawed by the unfreeze timeout', timeoutMs: 60_000, intervalMs: 200 });
  await vmiWhere(env, 'the VMI to say it is thawed', (vmi) => stringAt(vmi, 'status', 'fsFreezeStatus') === undefined);

  // The agent stops inside the guest: the condition goes, a freeze is refused, and the next snapshot is crash-consistent.
  await env.client.patch(pvcs, 'default', 'data', 'merge', { spec: { resources: { requests: { storage: '80Mi' } } } });
  await consoleSays(capture, 'agent: stopped', 'the guest to stop its agent');
  await vmiWhere(env, 'the VMI to lose AgentConnected', (vmi) => conditionOf(vmi, 'AgentConnected') === undefined);
  const refused = await put('freeze');
  assert.equal(refused.status, 409, refused.body);
  assert.match(refused.body, /guest agent is not connected/);
  const withoutAgent = await snapshot(env, 'without-agent');
  assert.deepEqual(arrayAt(withoutAgent, 'status', 'indications'), ['NoGuestAgent', 'Online']);
  assert.equal(count(capture.text(), 'vireo-guest: fsfreeze freeze'), 3, 'no freeze without an agent');
  const atSecond = lastWrite(capture);
  await eventually(() => lastWrite(capture) > atSecond + 4, { what: 'the guest to write on', timeoutMs: 60_000, intervalMs: 200 });
  assert.equal(phaseOf(await env.client.get(vmis, 'default', 'guest')), 'Running');
});
