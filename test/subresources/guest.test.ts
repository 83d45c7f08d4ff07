/**
 * pause, unpause, softreboot, reset and consolelog reach the node's agent
 * (a real guest process: pause is SIGSTOP, seen in /proc), and are refused
 * with KubeVirt's messages when the VMI is missing, not running, already
 * paused, or on a node without an agent.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { eventually } from '../../src/testing/wait.js';
import { createVmi, runningVmi, setVmiStatus, startFixture, subresources } from './support.js';
import type { Fixture } from './support.js';

let fx: Fixture;
before(async () => { fx = await startFixture(); });
after(async () => { await fx.stop(); });

interface StatusBody {
  code: number;
  reason: string;
  message: string;
}

function put(name: string, op: string, body?: unknown): Promise<{ status: number; body: string }> {
  return fx.client.raw('PUT', `${subresources}/default/virtualmachineinstances/${name}/${op}`, body);
}

async function refused(name: string, op: string, code: number): Promise<StatusBody> {
  const res = await put(name, op);
  assert.equal(res.status, code, res.body);
  return JSON.parse(res.body) as StatusBody;
}

/** The state letter of a process in /proc (T = stopped). */
function processState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

test('pause stops the guest process and unpause resumes it; each answers 202 with an empty body', async () => {
  await runningVmi(fx, 'pausable');
  const pid = fx.agent.guestPid('default', 'pausable');
  const paused = await put('pausable', 'pause');
  assert.deepEqual(paused, { status: 202, body: '' });
  await eventually(() => processState(pid) === 'T', { what: 'the guest process to stop' });
  // Before the agent reports the Paused condition, the server cannot know: the agent itself refuses.
  assert.match((await refused('pausable', 'pause', 409)).message, /VMI is already paused/);
  assert.match((await refused('pausable', 'unpause', 409)).message, /VMI is not paused/);
  await setVmiStatus(fx.test, 'pausable', { phase: 'Running', nodeName: 'node-a', conditions: [{ type: 'Paused', status: 'True' }] });
  assert.deepEqual(await put('pausable', 'unpause'), { status: 202, body: '' });
  await eventually(() => processState(pid) !== 'T', { what: 'the guest process to run again' });
});

test('softreboot and reset reach the agent of the VMI\'s node', async () => {
  await runningVmi(fx, 'rebooter');
  assert.equal((await put('rebooter', 'softreboot')).status, 202);
  assert.equal((await put('rebooter', 'reset', {})).status, 202);
  const seen = fx.agent.actions.filter((a) => a.name === 'rebooter').map((a) => a.action);
  assert.deepEqual(seen, ['softreboot', 'reset']);
});

test('a dry-run pause checks everything but does not reach the agent', async () => {
  await runningVmi(fx, 'dry-pause');
  assert.equal((await put('dry-pause', 'pause', { dryRun: ['All'] })).status, 202);
  assert.equal(fx.agent.actions.filter((a) => a.name === 'dry-pause').length, 0);
});

test('the VMI\'s own state refuses first: missing 404, not running 409, Paused condition 409, liveness probe 403', async () => {
  const missing = await refused('ghost', 'pause', 404);
  assert.equal(missing.message, 'virtualmachineinstances.kubevirt.io "ghost" not found');
  await createVmi(fx.test, 'pending', { phase: 'Pending' });
  const pending = await refused('pending', 'softreboot', 409);
  assert.match(pending.message, /^Operation cannot be fulfilled on virtualmachineinstance\.kubevirt\.io "pending": VMI is not running \(phase Pending\)/);
  await createVmi(fx.test, 'paused-already', { phase: 'Running', nodeName: 'node-a', conditions: [{ type: 'Paused', status: 'True' }] });
  assert.match((await refused('paused-already', 'pause', 409)).message, /VMI is already paused/);
  assert.match((await refused('paused-already', 'softreboot', 409)).message, /VMI is paused/);
  await createVmi(fx.test, 'not-paused', { phase: 'Running', nodeName: 'node-a' });
  assert.match((await refused('not-paused', 'unpause', 409)).message, /VMI is not paused/);
  await createVmi(fx.test, 'probed', { phase: 'Running', nodeName: 'node-a' }, { spec: { livenessProbe: { tcpSocket: { port: 22 } } } });
  assert.equal((await refused('probed', 'pause', 403)).reason, 'Forbidden');
});

test('a VMI on a node without an agent is a 503 that names the node', async () => {
  await createVmi(fx.test, 'elsewhere', { phase: 'Running', nodeName: 'node-z' });
  const res = await refused('elsewhere', 'pause', 503);
  assert.equal(res.reason, 'ServiceUnavailable');
  assert.match(res.message, /^node node-z has no agent connected/);
  // The control plane's own directory looks for the Node's published agent endpoint: node-z has none, which is no server failure.
  const bare = await fx.test.fetch('PUT', `${subresources}/default/virtualmachineinstances/elsewhere/reset`);
  assert.equal(bare.status, 400);
  assert.match((bare.json() as { message: string }).message, /^node node-z does not exist, so no agent can be reached there: start vireo agent/);
});

test('consolelog returns the kept serial output as text; empty before the VMI has a node', async () => {
  await runningVmi(fx, 'chatty');
  await fx.agent.openStream('default', 'chatty', 'console').then((s) => { s.end('boot line 1\r\n'); });
  await eventually(async () => (await fx.client.raw('GET', `${subresources}/default/virtualmachineinstances/chatty/consolelog`)).body.includes('boot line 1'), {
    what: 'the serial log to hold the guest output',
  });
  await createVmi(fx.test, 'unscheduled', { phase: 'Scheduling' });
  assert.deepEqual(await fx.client.raw('GET', `${subresources}/default/virtualmachineinstances/unscheduled/consolelog`), { status: 200, body: '' });
  assert.equal((await fx.client.raw('PUT', `${subresources}/default/virtualmachineinstances/chatty/consolelog`)).status, 405);
});
