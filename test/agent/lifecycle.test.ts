/**
 * A VMI's life on a real node agent with real QEMU (TCG): bound → Running
 * with a live QEMU, pause/unpause from QMP's own state, deletion that
 * leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../../src/api/errors.js';
import { agentFinalizer } from '../../src/agent/index.js';
import { Cgroups } from '../../src/agent/cgroups.js';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { condition, getVmi, phase, qemuPidsUnder, runningBlankVmi, startAgentFixture, waitVmi } from './support.js';

test('a bound VMI runs one QEMU, pauses and unpauses as QMP reports, and deleting it leaves nothing behind', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const { vmi: running, dir, pid } = await runningBlankVmi(fixture, 'life', { graceSeconds: 1 });
  assert.equal(condition(running, 'Ready')?.status, 'True');
  assert.equal(condition(running, 'SoftwareEmulation')?.status, 'True');
  assert.ok(running.metadata.finalizers?.includes(agentFinalizer), 'the agent holds its finalizer while the node has the VMI');
  assert.ok(readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(join(dir, 'qmp.sock')), 'the recorded pid is this VMI\'s QEMU');
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), [pid]);
  const uid = running.metadata.uid ?? '';
  const cgroups = await Cgroups.detect();
  if (cgroups.mode !== 'none') {
    for (const path of cgroups.paths(uid)) {
      assert.ok(readFileSync(join(path, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid)), `QEMU is in its VMI's cgroup ${path}`);
    }
    if (cgroups.mode === 'v1') assert.equal(readFileSync(join(cgroups.paths(uid)[0] ?? '', 'cpu.shares'), 'utf8').trim(), '102', 'a running 1-vCPU guest without a CPU request weighs 100m');
  }
  const status = running.status as { nodeName?: string; phaseTransitionTimestamps?: { phase: string }[]; qosClass?: string };
  assert.equal(status.nodeName, fixture.nodeName);
  assert.ok(status.phaseTransitionTimestamps?.some((p) => p.phase === 'Running'));

  await eventually(async () => {
    const events = await fixture.client.list(resources.events, { namespace: 'default', fieldSelector: 'involvedObject.name=life' });
    return events.items.some((e) => e.reason === 'Started' && e.type === 'Normal');
  }, { what: 'the Started event' });

  await fixture.agent.guestAction('default', 'life', 'pause');
  const paused = await waitVmi(fixture, 'life', (v) => condition(v, 'Paused')?.status === 'True', 'the Paused condition');
  assert.equal(condition(paused, 'Paused')?.reason, 'PausedByUser');
  await assert.rejects(fixture.agent.guestAction('default', 'life', 'pause'), (err: unknown) => err instanceof ApiError && err.reason === 'Conflict' && err.message === 'VMI is already paused');
  await fixture.agent.guestAction('default', 'life', 'unpause');
  await waitVmi(fixture, 'life', (v) => condition(v, 'Paused') === undefined, 'the Paused condition to go');
  await assert.rejects(fixture.agent.guestAction('default', 'life', 'unpause'), (err: unknown) => err instanceof ApiError && err.message === 'VMI is not paused');
  // A hard reset restarts the guest inside the same QEMU.
  await fixture.agent.guestAction('default', 'life', 'reset');
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), [pid]);
  assert.equal(phase((await getVmi(fixture, 'life')) ?? running), 'Running');

  // SeaBIOS ignores the ACPI power button: the agent kills QEMU when the 1 s grace period ends.
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'life');
  await eventually(async () => (await getVmi(fixture, 'life')) === undefined, { what: 'the VMI to be gone', timeoutMs: 20_000 });
  assert.ok(!existsSync(`/proc/${pid}`) || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir), 'QEMU is gone');
  assert.ok(!existsSync(dir), 'the VMI directory is gone');
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), []);
  for (const path of cgroups.paths(uid)) assert.ok(!existsSync(path), `the VMI's cgroup ${path} is gone`);
  await assert.rejects(fixture.agent.guestAction('default', 'life', 'pause'), (err: unknown) => err instanceof ApiError && err.message === 'VMI is not running');
});

test('several console sessions at once on one VMI, and VNC on its socket', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await runningBlankVmi(fixture, 'streams', { spec: { domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, memory: { guest: '64Mi' }, resources: {} } } });
  const a = await fixture.agent.openStream('default', 'streams', 'console');
  const b = await fixture.agent.openStream('default', 'streams', 'console');
  assert.ok(!a.destroyed && !b.destroyed, 'two sessions are open at once');
  a.destroy();
  b.destroy();
  const vnc = await fixture.agent.openStream('default', 'streams', 'vnc');
  const banner = await new Promise<string>((resolve) => vnc.once('data', (c: Buffer) => { resolve(c.toString('latin1')); }));
  assert.match(banner, /^RFB 003\.00\d\n/, 'QEMU\'s VNC server greets');
  vnc.destroy();
});

test('startStrategy Paused: the guest waits paused until unpaused', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  await runningBlankVmi(fixture, 'held', { spec: { startStrategy: 'Paused' } });
  const held = await waitVmi(fixture, 'held', (v) => condition(v, 'Paused')?.status === 'True', 'the VMI to wait paused');
  assert.equal(condition(held, 'Paused')?.reason, 'PausedStartStrategy');
  await fixture.agent.guestAction('default', 'held', 'unpause');
  await waitVmi(fixture, 'held', (v) => condition(v, 'Paused') === undefined, 'the guest to run');
});
