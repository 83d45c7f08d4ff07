/**
 * VirtualMachines end to end: the real API server with its VM controller,
 * scheduler and node agent boots real guests under TCG. A guest that
 * powers itself off is restarted under `runStrategy: Always` and left
 * stopped under `RerunOnFailure`; creating and deleting VMs over and over
 * leaves no QEMU, directory or cgroup behind, whether the guest is killed
 * at once or shuts down on the ACPI power button.
 */
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { arrayAt, booleanAt, has, recordsAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { eventually } from '../../src/testing/wait.js';
import { blankImage, importBlankImage, qemuPidsUnder } from '../agent/support.js';
import { Cgroups } from '../../src/agent/cgroups.js';
import { ConsoleCapture, History, leftoverQemus, listVmiCgroups, phaseOf, printableOf, skipWithoutQemu, startVmEnv, vmiDirs, vmManifest, vmis, vms } from './vm-support.js';
import type { VmEnv } from './vm-support.js';

/** Generous: two cores shared with other guests booting under TCG. */
const bootMs = 180_000;
const settleMs = 60_000;

/**
 * A NoCloud script that powers the guest off once it is fully up (the
 * ready line printed), in the background so cloud-init's final stage can
 * finish and print that line. Every boot of a new VMI runs it again: the
 * containerDisk overlay and the NoCloud disk are made fresh per VMI.
 */
const powerOffWhenReady = [
  '#!/bin/sh',
  'echo "e2e: this guest powers itself off once it is ready"',
  '( while [ ! -e /run/vireo-ready ]; do sleep 1; done; sleep 1; poweroff ) </dev/null >/dev/null 2>&1 &',
  '',
].join('\n');

/** The line busybox init prints (guest/rootfs/lib/vireo/shutdown) on a clean power-off. */
const shutdownLine = 'vireo-guest: shutting down';

function guestVm(name: string, runStrategy: string, options: { userData?: string; graceSeconds?: number } = {}): KObject {
  return vmManifest(name, { runStrategy, image: TEST_GUEST_IMAGE, graceSeconds: options.graceSeconds ?? 30, memory: '128Mi', ...(options.userData === undefined ? {} : { userData: options.userData }) });
}

async function getVmi(env: VmEnv, name: string): Promise<KObject | undefined> {
  return env.client.tryGet(vmis, 'default', name);
}

/** Waits for a Running VMI `name` whose uid is none of `notUids`; returns it. */
async function runningVmi(env: VmEnv, name: string, notUids: readonly string[], timeoutMs: number): Promise<KObject> {
  return eventually(async () => {
    const vmi = await getVmi(env, name);
    return vmi !== undefined && !notUids.includes(vmi.metadata.uid ?? '') && phaseOf(vmi) === 'Running' ? vmi : undefined;
  }, { what: `a new VMI ${name} to run`, timeoutMs, intervalMs: 50 });
}

/**
 * Waits until a new VMI `name` runs and its guest has booted: the console
 * (through the API) shows cloud-init reading this VMI's instance-id, then
 * the ready line.
 */
async function bootedGuest(t: TestContext, env: VmEnv, name: string, notUids: readonly string[]): Promise<{ uid: string; console: ConsoleCapture }> {
  const vmi = await runningVmi(env, name, notUids, bootMs);
  const uid = vmi.metadata.uid ?? '';
  const serial = await ConsoleCapture.open(env, name);
  t.after(() => { serial.close(); });
  await eventually(() => serial.text().includes(TEST_GUEST_READY_MARKER), { what: `the guest of VMI ${uid} to be ready`, timeoutMs: bootMs, intervalMs: 200 });
  assert.ok(serial.text().includes(`cloud-init: instance-id ${uid}`), `the console is that of VMI ${uid}:\n${serial.text()}`);
  return { uid, console: serial };
}

/** The phases the VMI `uid` went through, in order. */
function phasesOf(history: History, uid: string): string[] {
  return history.transitions((o) => (o.metadata.uid === uid ? phaseOf(o) : undefined));
}

function vmCondition(vm: KObject | undefined, type: string): Record<string, unknown> | undefined {
  return recordsAt(vm, 'status', 'conditions').find((c) => c.type === type);
}

test('runStrategy Always: a guest that powers itself off gets a new VMI, whose guest boots again', { skip: skipWithoutQemu, timeout: 900_000 }, async (t) => {
  const env = await startVmEnv(t);
  await importTestGuest(env.images);
  const vmHistory = await History.start(t, env.client, vms, 'phoenix');
  const vmiHistory = await History.start(t, env.client, vmis, 'phoenix');
  await env.client.create(vms, guestVm('phoenix', 'Always', { userData: powerOffWhenReady }));

  const first = await bootedGuest(t, env, 'phoenix', []);
  // The guest powers itself off: a clean shutdown, the VMI Succeeded.
  await eventually(() => phasesOf(vmiHistory, first.uid).includes('Succeeded'), { what: 'the first VMI to succeed', timeoutMs: settleMs, intervalMs: 100 });
  await eventually(() => first.console.closed, { what: 'the first console to end with its guest', timeoutMs: settleMs });
  assert.ok(first.console.text().includes(shutdownLine), `the first guest shut down cleanly:\n${first.console.text()}`);
  const ended = vmiHistory.objects().find((o) => o.metadata.uid === first.uid && phaseOf(o) === 'Succeeded');
  assert.equal(recordsAt(ended, 'status', 'conditions').find((c) => c.type === 'Ready')?.reason, 'GuestShutdown');

  const second = await bootedGuest(t, env, 'phoenix', [first.uid]);
  assert.notEqual(second.uid, first.uid);
  await eventually(() => vmHistory.transitions(printableOf).length >= 5, { what: 'the VM to show Running again', timeoutMs: settleMs, intervalMs: 100 });

  vmHistory.assertComplete();
  vmiHistory.assertComplete();
  // One VMI after the other, under one name: the first was gone before the second was made.
  const created = vmiHistory.createdUids();
  assert.deepEqual(created.slice(0, 2), [first.uid, second.uid]);
  const order = vmiHistory.events.map((e) => `${e.type} ${e.object.metadata.uid ?? ''}`);
  assert.ok(order.indexOf(`DELETED ${first.uid}`) >= 0 && order.indexOf(`DELETED ${first.uid}`) < order.indexOf(`ADDED ${second.uid}`), `the first VMI was deleted before the second was created: ${order.join(', ')}`);
  assert.deepEqual(phasesOf(vmiHistory, first.uid).slice(-2), ['Running', 'Succeeded']);
  // KubeVirt's printableStatus as it happened: the restart shows as Stopped, then Starting again.
  // (The second guest powers itself off too, and so on: only the first five are asserted.)
  assert.deepEqual(vmHistory.transitions(printableOf).slice(0, 5), ['Starting', 'Running', 'Stopped', 'Starting', 'Running']);
  const statuses = vmHistory.objects();
  assert.ok(statuses.every((vm) => !has(vm, 'status', 'startFailure')), 'a guest that ran and powered off is no crash loop');
  assert.ok(statuses.some((vm) => booleanAt(vm, 'status', 'ready') === true && vmCondition(vm, 'Ready')?.status === 'True'), 'the VM was ready while its guest ran');
});

test('runStrategy RerunOnFailure: a guest that powers itself off ends Succeeded and is not run again', { skip: skipWithoutQemu, timeout: 600_000 }, async (t) => {
  const env = await startVmEnv(t);
  await importTestGuest(env.images);
  const vmHistory = await History.start(t, env.client, vms, 'once-ok');
  const vmiHistory = await History.start(t, env.client, vmis, 'once-ok');
  await env.client.create(vms, guestVm('once-ok', 'RerunOnFailure', { userData: powerOffWhenReady }));

  const guest = await bootedGuest(t, env, 'once-ok', []);
  await eventually(() => phasesOf(vmiHistory, guest.uid).includes('Succeeded'), { what: 'the VMI to succeed', timeoutMs: settleMs, intervalMs: 100 });
  assert.deepEqual(phasesOf(vmiHistory, guest.uid).slice(-2), ['Running', 'Succeeded']);
  // KubeVirt deletes a Succeeded VMI of a RerunOnFailure VM and starts none: the VM shows Stopped.
  await eventually(async () => (await getVmi(env, 'once-ok')) === undefined, { what: 'the succeeded VMI to be deleted', timeoutMs: settleMs, intervalMs: 100 });
  // The pass that saw the VMI gone has decided; it would have started a new one in that same pass.
  const stopped = await eventually(async () => {
    const vm = await env.client.get(vms, 'default', 'once-ok');
    return printableOf(vm) === 'Stopped' && vmCondition(vm, 'Ready')?.reason === 'VMINotExists' ? vm : undefined;
  }, { what: 'the VM to show Stopped with no VMI', timeoutMs: settleMs, intervalMs: 100 });
  assert.equal(booleanAt(stopped, 'status', 'created'), false);
  assert.deepEqual(arrayAt(stopped, 'status', 'stateChangeRequests'), [], 'no rerun was requested for a clean power-off');
  // A quiet window to catch a late restart (an observation, not a synchronisation).
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  vmHistory.assertComplete();
  vmiHistory.assertComplete();
  assert.deepEqual(vmiHistory.createdUids(), [guest.uid], 'exactly one VMI was ever made');
  assert.equal(await getVmi(env, 'once-ok'), undefined);
  assert.equal(printableOf(await env.client.get(vms, 'default', 'once-ok')), 'Stopped');
  assert.deepEqual(vmHistory.transitions(printableOf), ['Starting', 'Running', 'Stopped']);
});

test('50 create/delete cycles of a VM leave no QEMU, VMI directory or cgroup behind (kill and ACPI shutdown)', { skip: skipWithoutQemu, timeout: 900_000 }, async (t) => {
  const env = await startVmEnv(t);
  await importBlankImage(env.images);
  await importTestGuest(env.images);
  const name = 'cycle';
  const vmiHistory = await History.start(t, env.client, vmis, name);
  const cycles = 50;
  /** These cycles boot the test guest and delete it with a grace period: the agent presses the ACPI power button. */
  const graceful = new Set([10, 25, 40]);
  const uids: string[] = [];
  const cgroupsInUse = (await Cgroups.detect()).mode !== 'none';
  const started = Date.now();
  for (let i = 0; i < cycles; i++) {
    const gracefulCycle = graceful.has(i);
    const manifest = gracefulCycle ? guestVm(name, 'Always', { graceSeconds: 120 }) : vmManifest(name, { runStrategy: 'Always', image: blankImage, graceSeconds: 0 });
    await env.client.create(vms, manifest);
    let capture: ConsoleCapture | undefined;
    let uid: string;
    if (gracefulCycle) {
      const vmi = await runningVmi(env, name, uids, bootMs);
      uid = vmi.metadata.uid ?? '';
      capture = await ConsoleCapture.open(env, name);
      t.after(() => { capture?.close(); });
      const guest = capture;
      await eventually(() => guest.text().includes(TEST_GUEST_READY_MARKER), { what: `cycle ${i}: the guest to be ready`, timeoutMs: bootMs, intervalMs: 200 });
    } else {
      uid = (await runningVmi(env, name, uids, settleMs)).metadata.uid ?? '';
    }
    uids.push(uid);
    const dir = join(env.agentDir, 'vmis', uid);
    assert.equal(qemuPidsUnder(dir).length, 1, `cycle ${i}: the running VMI has its QEMU`);
    if (cgroupsInUse) assert.notDeepEqual(await listVmiCgroups([uid]), [], `cycle ${i}: the running VMI has its cgroup`);

    await env.client.delete(vms, 'default', name);
    await eventually(async () => (await env.client.tryGet(vms, 'default', name)) === undefined && (await getVmi(env, name)) === undefined, {
      what: `cycle ${i}: the VM and its VMI ${uid} to be gone`,
      // A guest that ignored the power button would be killed only after its 120 s grace: fail before that.
      timeoutMs: gracefulCycle ? 100_000 : settleMs,
      intervalMs: 50,
    });
    // The agent's finalizer holds the VMI until its node side is gone.
    assert.deepEqual(qemuPidsUnder(dir), [], `cycle ${i}: no QEMU of VMI ${uid} outlives it`);
    assert.equal(existsSync(dir), false, `cycle ${i}: the directory of VMI ${uid} went with it`);
    if (capture !== undefined) {
      const guest = capture;
      await eventually(() => guest.closed, { what: `cycle ${i}: the console to end`, timeoutMs: settleMs });
      assert.ok(guest.text().includes(shutdownLine), `cycle ${i}: the guest shut down on the ACPI button:\n${guest.text()}`);
    }
  }
  t.diagnostic(`${cycles} cycles in ${Math.round((Date.now() - started) / 1000)} s`);

  vmiHistory.assertComplete();
  assert.equal(new Set(uids).size, cycles);
  assert.deepEqual(vmiHistory.createdUids(), uids, 'exactly one VMI per VM, none made for a VM being deleted');
  assert.deepEqual(leftoverQemus(env), []);
  assert.deepEqual(vmiDirs(env), []);
  assert.deepEqual(await listVmiCgroups(uids), [], 'no VMI cgroup is left');
});
