/**
 * QEMU outlives the agent: a new agent reattaches to the same process;
 * what ended or was deleted while no agent watched is reported and cleaned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resources } from '../../src/client/index.js';
import { eventually } from '../../src/testing/wait.js';
import { condition, getVmi, phase, qemuPidsUnder, runningBlankVmi, startAgentFixture, waitVmi } from './support.js';

test('a new agent keeps the running QEMU (same pid) and drives it', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const { vmi, pid } = await runningBlankVmi(fixture, 'keep');
  const startedAt = readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[21];

  await fixture.restartAgent();
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), [pid], 'the same QEMU, and only it');
  assert.equal(readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[21], startedAt, 'not restarted');
  // The new agent holds QMP: pausing works and shows.
  await fixture.agent.guestAction('default', 'keep', 'pause');
  await waitVmi(fixture, 'keep', (v) => condition(v, 'Paused')?.status === 'True', 'the Paused condition from the new agent');
  assert.equal(phase((await getVmi(fixture, 'keep')) ?? vmi), 'Running');
});

test('a QEMU killed from outside fails its VMI, and the node is cleaned', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const { dir, pid } = await runningBlankVmi(fixture, 'killed');
  process.kill(pid, 'SIGKILL');
  const failed = await waitVmi(fixture, 'killed', (v) => phase(v) === 'Failed', 'the VMI to fail');
  assert.equal(condition(failed, 'Ready')?.status, 'False');
  assert.match(condition(failed, 'Ready')?.message ?? '', /QEMU stopped unexpectedly \(killed by SIGKILL\)/);
  await eventually(() => !existsSync(join(dir, 'disks')) && !existsSync(join(dir, 'qmp.sock')), { what: 'the overlay and sockets to go' });
  // Only the console log of the ended guest stays (for `vireo logs`), until the VMI is deleted.
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'killed');
  await eventually(async () => (await getVmi(fixture, 'killed')) === undefined && !existsSync(dir), { what: 'the VMI and its directory to go' });
});

test('what happened while no agent ran: a killed QEMU fails its VMI; a deleted VMI loses its QEMU', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const { dir: deadDir, pid: deadPid } = await runningBlankVmi(fixture, 'dead');
  const { dir: goneDir, pid: gonePid } = await runningBlankVmi(fixture, 'gone', { graceSeconds: 30 });

  await fixture.agent.stop();
  process.kill(deadPid, 'SIGKILL');
  // The finalizer keeps the VMI until an agent has cleaned up; then the force of a gone VMI is immediate.
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'gone');
  await fixture.client.patch(resources.virtualMachineInstances, 'default', 'gone', 'merge', { metadata: { finalizers: null } });
  assert.equal(await getVmi(fixture, 'gone'), undefined);

  await fixture.restartAgent();
  const failed = await waitVmi(fixture, 'dead', (v) => phase(v) === 'Failed', 'dead to be reported Failed');
  assert.match(condition(failed, 'Ready')?.message ?? '', /ended while the agent was not running/);
  await fixture.client.delete(resources.virtualMachineInstances, 'default', 'dead');
  await eventually(() => !existsSync(deadDir) && !existsSync(goneDir), { what: 'both directories to go' });
  assert.ok(!qemuPidsUnder(fixture.dataDir).includes(gonePid), 'the QEMU of the deleted VMI was killed');
});
