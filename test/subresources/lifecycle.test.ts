/**
 * start, stop, restart and migrate over real HTTPS: each run strategy
 * changes the VM the way KubeVirt's virt-api does, success is 202 with an
 * empty body, refusals are Status bodies with KubeVirt's messages, and
 * kubectl's `replace --raw` drives the same endpoint.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { kubectl, kubectlBinary } from '../../src/testing/kubectl.js';
import { createVm, createVmi, getVm, getVmi, specOf, startFixture, statusOf, subresources } from './support.js';
import type { Fixture } from './support.js';

let fx: Fixture;
before(async () => { fx = await startFixture(); });
after(async () => { await fx.stop(); });

interface StatusBody {
  kind: string;
  code: number;
  reason: string;
  message: string;
}

async function put(name: string, op: string, body?: unknown, resource = 'virtualmachines'): Promise<{ status: number; text: string; json(): StatusBody }> {
  const res = await fx.test.fetch('PUT', `${subresources}/default/${resource}/${name}/${op}`, body === undefined ? {} : { body: JSON.stringify(body) });
  return { status: res.status, text: res.body, json: () => res.json() as StatusBody };
}

async function refused(name: string, op: string, code: number, body?: unknown): Promise<StatusBody> {
  const res = await put(name, op, body);
  assert.equal(res.status, code, res.text);
  const status = res.json();
  assert.equal(status.kind, 'Status');
  assert.equal(status.code, code);
  return status;
}

async function accepted(name: string, op: string, body?: unknown): Promise<void> {
  const res = await put(name, op, body);
  assert.equal(res.status, 202, res.text);
  assert.equal(res.text, '');
}

test('start on a Halted VM sets runStrategy Always and answers 202 with an empty body', async () => {
  await createVm(fx.test, 'halted-1', { runStrategy: 'Halted' });
  await accepted('halted-1', 'start');
  assert.equal(specOf(await getVm(fx.test, 'halted-1')).runStrategy, 'Always');
});

test('start on a VM with the deprecated spec.running flips running, not runStrategy', async () => {
  await createVm(fx.test, 'running-false', { running: false });
  await accepted('running-false', 'start', {});
  const spec = specOf(await getVm(fx.test, 'running-false'));
  assert.equal(spec.running, true);
  assert.equal(spec.runStrategy, undefined);
});

test('a paused start of a Halted VM leaves a Start request with paused data for the VM controller', async () => {
  await createVm(fx.test, 'paused-start', { runStrategy: 'Halted' });
  await accepted('paused-start', 'start', { kind: 'StartOptions', apiVersion: 'subresources.kubevirt.io/v1', paused: true });
  const vm = await getVm(fx.test, 'paused-start');
  assert.deepEqual(statusOf(vm).stateChangeRequests, [{ action: 'Start', data: { paused: 'true' } }]);
  assert.equal(specOf(vm).runStrategy, 'Halted');
});

test('start on a Manual VM appends a Start request; with a finished VMI it asks Stop(uid) then Start', async () => {
  await createVm(fx.test, 'manual-1', { runStrategy: 'Manual' });
  await accepted('manual-1', 'start');
  assert.deepEqual(statusOf(await getVm(fx.test, 'manual-1')).stateChangeRequests, [{ action: 'Start' }]);

  await createVm(fx.test, 'manual-2', { runStrategy: 'Manual' });
  const vmi = await createVmi(fx.test, 'manual-2', { phase: 'Succeeded' });
  await accepted('manual-2', 'start');
  assert.deepEqual(statusOf(await getVm(fx.test, 'manual-2')).stateChangeRequests, [{ action: 'Stop', uid: vmi.metadata.uid }, { action: 'Start' }]);
});

test('start refuses a running VM, an Always VM and a VM with a request underway (409)', async () => {
  await createVm(fx.test, 'already', { runStrategy: 'Manual' });
  await createVmi(fx.test, 'already', { phase: 'Running', nodeName: 'node-a' });
  const running = await refused('already', 'start', 409);
  assert.equal(running.reason, 'Conflict');
  assert.equal(running.message, 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "already": VM is already running');

  await createVm(fx.test, 'always-start', { runStrategy: 'Always' });
  assert.match((await refused('always-start', 'start', 409)).message, /Always does not support manual start requests/);

  await createVm(fx.test, 'underway', { runStrategy: 'Manual' });
  await accepted('underway', 'start');
  assert.match((await refused('underway', 'start', 409)).message, /already underway/);
});

test('stop on an Always VM sets Halted; a grace period is written to the running VMI', async () => {
  await createVm(fx.test, 'always-stop', { runStrategy: 'Always' });
  await createVmi(fx.test, 'always-stop', { phase: 'Running', nodeName: 'node-a' });
  await accepted('always-stop', 'stop', { gracePeriod: 7 });
  assert.equal(specOf(await getVm(fx.test, 'always-stop')).runStrategy, 'Halted');
  assert.equal(specOf(await getVmi(fx.test, 'always-stop')).terminationGracePeriodSeconds, 7);
});

test('stop on a Manual VM asks Stop with the VMI uid, and refuses a VM that is not running', async () => {
  await createVm(fx.test, 'manual-stop', { runStrategy: 'Manual' });
  const notRunning = await refused('manual-stop', 'stop', 409);
  assert.equal(notRunning.message, 'Operation cannot be fulfilled on virtualmachine.kubevirt.io "manual-stop": VM is not running');
  const vmi = await createVmi(fx.test, 'manual-stop', { phase: 'Running', nodeName: 'node-a' });
  await accepted('manual-stop', 'stop');
  assert.deepEqual(statusOf(await getVm(fx.test, 'manual-stop')).stateChangeRequests, [{ action: 'Stop', uid: vmi.metadata.uid }]);
});

test('stop on a Halted VM that is still shutting down needs a shorter grace period', async () => {
  await createVm(fx.test, 'halted-stopping', { runStrategy: 'Halted' });
  await createVmi(fx.test, 'halted-stopping', { phase: 'Running', nodeName: 'node-a' }, { spec: { terminationGracePeriodSeconds: 30 } });
  assert.match((await refused('halted-stopping', 'stop', 409)).message, /Halted only supports manual stop requests with a shorter graceperiod/);
  await accepted('halted-stopping', 'stop', { gracePeriod: 0 });
  assert.equal(specOf(await getVmi(fx.test, 'halted-stopping')).terminationGracePeriodSeconds, 0);
  assert.equal((statusOf(await getVm(fx.test, 'halted-stopping')).stateChangeRequests as unknown[]).length, 1);
});

test('restart asks Stop(uid) then Start; Halted and stopped VMs are refused; only gracePeriodSeconds 0 forces', async () => {
  await createVm(fx.test, 'restart-1', { runStrategy: 'Always' });
  assert.match((await refused('restart-1', 'restart', 409)).message, /VM is not running/);
  const vmi = await createVmi(fx.test, 'restart-1', { phase: 'Running', nodeName: 'node-a' });
  assert.match((await refused('restart-1', 'restart', 400, { gracePeriodSeconds: 5 })).message, /only gracePeriod=0 is supported/);
  await accepted('restart-1', 'restart', { gracePeriodSeconds: 0 });
  assert.deepEqual(statusOf(await getVm(fx.test, 'restart-1')).stateChangeRequests, [{ action: 'Stop', uid: vmi.metadata.uid }, { action: 'Start' }]);
  assert.equal(specOf(await getVmi(fx.test, 'restart-1')).terminationGracePeriodSeconds, 0);

  await createVm(fx.test, 'restart-halted', { runStrategy: 'Halted' });
  assert.match((await refused('restart-halted', 'restart', 409)).message, /RunStrategy Halted does not support manual restart requests/);
});

test('a dry run answers 202 and changes nothing', async () => {
  const before = await createVm(fx.test, 'dry', { runStrategy: 'Halted' });
  await accepted('dry', 'start', { dryRun: ['All'] });
  const afterwards = await getVm(fx.test, 'dry');
  assert.equal(afterwards.metadata.resourceVersion, before.metadata.resourceVersion);
  assert.equal(specOf(afterwards).runStrategy, 'Halted');
});

test('client mistakes are 4xx Status answers that say what to fix', async () => {
  const missing = await refused('no-such-vm', 'start', 404);
  assert.equal(missing.message, 'virtualmachines.kubevirt.io "no-such-vm" not found');
  await createVm(fx.test, 'bad-body', { runStrategy: 'Halted' });
  assert.match((await refused('bad-body', 'start', 400, { pause: true })).message, /StartOptions has no field "pause": it accepts paused, dryRun/);
  assert.match((await refused('bad-body', 'stop', 400, { gracePeriod: 'soon' })).message, /StopOptions.gracePeriod must be a whole number/);
  assert.match((await refused('bad-body', 'start', 400, { dryRun: ['Some'] })).message, /supported values: "All"/);

  const get = await fx.test.fetch('GET', `${subresources}/default/virtualmachines/bad-body/start`);
  assert.equal(get.status, 405);
  const unknown = await fx.test.fetch('PUT', `${subresources}/default/virtualmachines/bad-body/explode`);
  assert.equal(unknown.status, 404);
  assert.match((unknown.json() as StatusBody).message, /not virtualmachines\/bad-body\/explode/);
  const noToken = await fx.test.fetch('PUT', `${subresources}/default/virtualmachines/bad-body/start`, { token: null });
  assert.equal(noToken.status, 401);
});

test('migrate creates a VirtualMachineInstanceMigration for the running VMI', async () => {
  await createVm(fx.test, 'migrating', { runStrategy: 'Always' });
  assert.equal((await put('migrating', 'migrate')).status, 404);
  // Without networks: the migration needs no pod network on the test node.
  await createVmi(fx.test, 'migrating', { phase: 'Running', nodeName: 'node-a' }, { spec: { domain: { devices: { autoattachPodInterface: false }, memory: { guest: '64Mi' } }, networks: [] } });
  await accepted('migrating', 'migrate', { addedNodeSelector: { zone: 'b' } });
  const list = await fx.test.fetch('GET', '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstancemigrations');
  const items = (list.json() as { items: { metadata: { generateName: string }; spec: unknown }[] }).items;
  assert.deepEqual(items.map((m) => [m.metadata.generateName, m.spec]), [['kubevirt-migrate-vm-', { vmiName: 'migrating', addedNodeSelector: { zone: 'b' } }]]);
});

test('kubectl replace --raw drives start and stop', { skip: kubectlBinary() === undefined ? 'kubectl is not installed' : false }, async () => {
  await createVm(fx.test, 'by-kubectl', { runStrategy: 'Halted' });
  const empty = join(fx.test.dir, 'empty.json');
  writeFileSync(empty, '{}');
  const start = await kubectl(['replace', '--raw', `${subresources}/default/virtualmachines/by-kubectl/start`, '-f', empty], { kubeconfig: fx.test.kubeconfig });
  assert.equal(start.code, 0, start.stderr);
  assert.equal(specOf(await getVm(fx.test, 'by-kubectl')).runStrategy, 'Always');
  const again = await kubectl(['replace', '--raw', `${subresources}/default/virtualmachines/by-kubectl/start`, '-f', empty], { kubeconfig: fx.test.kubeconfig });
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /Always does not support manual start requests/);
  const stop = await kubectl(['replace', '--raw', `${subresources}/default/virtualmachines/by-kubectl/stop`, '-f', empty], { kubeconfig: fx.test.kubeconfig });
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(specOf(await getVm(fx.test, 'by-kubectl')).runStrategy, 'Halted');
});
