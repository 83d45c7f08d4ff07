import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { arrayAt, at, recordAt, stringAt } from '../../src/api/kinds/read.js';
import { Informer, resources } from '../../src/client/index.js';
import type { ClientWatchEvent } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { VirtualMachineController, vmFinalizer } from '../../src/controllers/vm/index.js';
import type { Env } from './support.js';
import { condition, eventsFor, eventually, laggingClient, printable, read, readyCondition, report, startEnv, vmManifest, vmiAppears, vmiGone } from './support.js';

let env: Env;
let controller: VirtualMachineController;
let informers: Informer[] = [];

before(async () => {
  env = await startEnv();
  // A crash-loop backoff of about a second, so a test sees it both hold and release.
  // Caches that trail the controller's own writes, as under load: every pass must stay right on stale reads.
  const lag = laggingClient(env.client, 100);
  const vmInformer = new Informer(lag, resources.virtualMachines, silentLogger);
  const vmiInformer = new Informer(lag, resources.virtualMachineInstances, silentLogger);
  informers = [vmInformer, vmiInformer];
  controller = new VirtualMachineController(env.client, silentLogger, { crashLoopBaseMs: 1000, crashLoopMaxMs: 2000, random: () => 0, vmInformer, vmiInformer });
  await controller.start();
});
after(async () => {
  await controller.stop();
  await Promise.all(informers.map((i) => i.stop()));
  await env.close();
});

const vms = resources.virtualMachines;
const vmis = resources.virtualMachineInstances;

async function createVm(name: string, spec?: Record<string, unknown>, templateSpec?: Record<string, unknown>): Promise<KObject> {
  return env.client.create(vms, vmManifest(name, spec, templateSpec));
}

async function vmStatus(name: string): Promise<Record<string, unknown>> {
  return recordAt(await read(env.client, vms, name), 'status') ?? {};
}

/** What the start/stop/restart subresources write (a status patch, racing the controller's own status writes). */
async function requestStateChange(name: string, requests: Record<string, unknown>[]): Promise<void> {
  await env.client.patch(vms, 'default', name, 'merge', { status: { stateChangeRequests: requests } }, { subresource: 'status' });
}

test('runStrategy Always creates the VMI from the template, owned by the VM, and reports Starting', async () => {
  const vm = await createVm('always');
  const vmi = await vmiAppears(env.client, 'always');
  assert.deepEqual(vmi.metadata.ownerReferences, [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachine', name: 'always', uid: vm.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  assert.deepEqual(vmi.metadata.labels, { app: 'always' });
  assert.equal(vmi.metadata.annotations?.['example.com/note'], 'from-template');
  assert.equal(vmi.metadata.annotations?.['kubevirt.io/vm-generation'], '1');
  assert.match(stringAt(vmi, 'spec', 'domain', 'firmware', 'uuid') ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  await eventually(async () => (await printable(env.client, 'always')) === 'Starting', { what: 'Starting' });
  const status = await vmStatus('always');
  assert.equal(status.created, true);
  assert.equal(status.ready, false);
  assert.equal(status.runStrategy, 'Always');
  assert.equal(status.observedGeneration, 1);
  assert.equal(status.desiredGeneration, 1);
  assert.equal(condition(await read(env.client, vms, 'always'), 'Ready')?.reason, 'VMIConditionMissing');
  const events = await eventually(async () => (await eventsFor(env.client, 'always')).find((e) => e.reason === 'SuccessfulCreate'), { what: 'a SuccessfulCreate event' });
  assert.equal(events.type, 'Normal');
  assert.equal(stringAt(events, 'source', 'component'), 'virtualmachine-controller');
  assert.equal(stringAt(events, 'involvedObject', 'uid'), vm.metadata.uid);
});

test('the agent reporting Running and Ready makes the VM Running and ready; Paused mirrors', async () => {
  await createVm('runs');
  await vmiAppears(env.client, 'runs');
  await report(env.client, 'runs', 'Scheduled');
  await report(env.client, 'runs', 'Running', [readyCondition('True')]);
  await eventually(async () => (await printable(env.client, 'runs')) === 'Running', { what: 'Running' });
  await eventually(async () => (await vmStatus('runs')).ready === true, { what: 'ready' });
  assert.equal(condition(await read(env.client, vms, 'runs'), 'Ready')?.status, 'True');
  await report(env.client, 'runs', 'Running', [readyCondition('False'), { type: 'Paused', status: 'True', reason: 'PausedByUser', message: 'VMI was paused by user' }]);
  await eventually(async () => (await printable(env.client, 'runs')) === 'Paused', { what: 'Paused' });
  assert.equal(condition(await read(env.client, vms, 'runs'), 'Paused')?.reason, 'PausedByUser');
});

test('a steady VM is not rewritten: only the change that matters produces a status write', async () => {
  await createVm('steady');
  await vmiAppears(env.client, 'steady');
  await report(env.client, 'steady', 'Running', [readyCondition('True')]);
  await eventually(async () => (await printable(env.client, 'steady')) === 'Running', { what: 'Running' });
  const settled = await env.client.get(vms, 'default', 'steady');
  const seen: string[] = [];
  const abort = new AbortController();
  const watching = env.client.watch(vms, { namespace: 'default', fieldSelector: 'metadata.name=steady', resourceVersion: settled.metadata.resourceVersion ?? '' }, (e: ClientWatchEvent) => {
    seen.push(stringAt(e.object, 'status', 'printableStatus') ?? '');
  }, abort.signal);
  // Changes that cannot change the VM's status, each a reconcile; then one that does.
  for (let i = 0; i < 3; i++) await env.client.patch(vmis, 'default', 'steady', 'merge', { metadata: { labels: { app: 'steady', poke: String(i) } } });
  await report(env.client, 'steady', 'Running', [readyCondition('True'), { type: 'Paused', status: 'True', reason: 'PausedByUser' }]);
  await eventually(() => seen.includes('Paused'), { what: 'the Paused write' });
  abort.abort();
  await watching;
  assert.deepEqual(seen, ['Paused'], 'no write before the one the VMI change called for');
});

test('Always recreates a VMI that stopped after running, without crash-loop backoff', async () => {
  await createVm('restarts');
  const first = await vmiAppears(env.client, 'restarts');
  await report(env.client, 'restarts', 'Running', [readyCondition('True')]);
  await report(env.client, 'restarts', 'Succeeded');
  const second = await vmiAppears(env.client, 'restarts', first.metadata.uid);
  assert.notEqual(second.metadata.uid, first.metadata.uid);
  assert.equal((await vmStatus('restarts')).startFailure, undefined);
});

test('Always backs off with CrashLoopBackOff when VMIs fail before they run', async () => {
  await createVm('crashes');
  const first = await vmiAppears(env.client, 'crashes');
  await report(env.client, 'crashes', 'Failed');
  await eventually(async () => (await printable(env.client, 'crashes')) === 'CrashLoopBackOff', { what: 'CrashLoopBackOff' });
  const failure = recordAt(await vmStatus('crashes'), 'startFailure');
  assert.equal(failure?.consecutiveFailCount, 1);
  assert.equal(failure?.lastFailedVMIUID, first.metadata.uid);
  // The failed VMI goes with the status write or just after it (a loaded machine sees the status first).
  await eventually(async () => (await read(env.client, vmis, 'crashes')) === undefined, { what: 'no VMI while backing off' });
  const second = await vmiAppears(env.client, 'crashes', first.metadata.uid);
  await report(env.client, 'crashes', 'Failed');
  await eventually(async () => at(await vmStatus('crashes'), 'startFailure', 'consecutiveFailCount') === 2, { what: 'a second counted failure' });
  assert.equal(at(await vmStatus('crashes'), 'startFailure', 'lastFailedVMIUID'), second.metadata.uid);
  // A VMI that reaches Running ends the crash loop.
  const third = await vmiAppears(env.client, 'crashes', second.metadata.uid);
  await report(env.client, 'crashes', 'Running');
  await eventually(async () => (await vmStatus('crashes')).startFailure === undefined, { what: 'startFailure cleared' });
  assert.equal((await read(env.client, vmis, 'crashes'))?.metadata.uid, third.metadata.uid);
});

test('RerunOnFailure reruns a failed VMI but not a succeeded one', async () => {
  await createVm('rerun', { runStrategy: 'RerunOnFailure' });
  const first = await vmiAppears(env.client, 'rerun');
  await report(env.client, 'rerun', 'Running');
  await report(env.client, 'rerun', 'Failed');
  const second = await vmiAppears(env.client, 'rerun', first.metadata.uid);
  await eventually(async () => arrayAt(await vmStatus('rerun'), 'stateChangeRequests').length === 0, { what: 'the rerun Start request to be cleared' });
  await report(env.client, 'rerun', 'Running');
  await report(env.client, 'rerun', 'Succeeded');
  await vmiGone(env.client, 'rerun', second.metadata.uid);
  await eventually(async () => (await printable(env.client, 'rerun')) === 'Stopped', { what: 'Stopped' });
  assert.equal(await read(env.client, vmis, 'rerun'), undefined, 'a succeeded VMI is not rerun');
  assert.equal(condition(await read(env.client, vms, 'rerun'), 'Ready')?.reason, 'VMINotExists');
});

test('Once runs the VMI once and leaves it when it ends', async () => {
  await createVm('once', { runStrategy: 'Once' });
  const vmi = await vmiAppears(env.client, 'once');
  await report(env.client, 'once', 'Running');
  await report(env.client, 'once', 'Succeeded');
  await eventually(async () => (await printable(env.client, 'once')) === 'Stopped', { what: 'Stopped' });
  assert.equal((await read(env.client, vmis, 'once'))?.metadata.uid, vmi.metadata.uid, 'the finished VMI stays, and no other is made');
});

test('Halted deletes the VMI; Manual starts and stops only on request', async () => {
  await createVm('halts');
  const vmi = await vmiAppears(env.client, 'halts');
  await env.client.patch(vms, 'default', 'halts', 'merge', { spec: { runStrategy: 'Halted' } });
  await vmiGone(env.client, 'halts', vmi.metadata.uid);
  await eventually(async () => (await printable(env.client, 'halts')) === 'Stopped', { what: 'Stopped' });
  await eventually(async () => (await eventsFor(env.client, 'halts')).some((e) => e.reason === 'SuccessfulDelete'), { what: 'a SuccessfulDelete event' });

  await createVm('manual', { runStrategy: 'Manual' });
  await eventually(async () => (await printable(env.client, 'manual')) === 'Stopped', { what: 'a Manual VM to stay Stopped' });
  assert.equal(await read(env.client, vmis, 'manual'), undefined);
  await requestStateChange('manual', [{ action: 'Start' }]);
  const started = await vmiAppears(env.client, 'manual');
  await eventually(async () => arrayAt(await vmStatus('manual'), 'stateChangeRequests').length === 0, { what: 'the Start request to be cleared' });
  await requestStateChange('manual', [{ action: 'Stop', uid: started.metadata.uid }]);
  await vmiGone(env.client, 'manual', started.metadata.uid);
  await eventually(async () => arrayAt(await vmStatus('manual'), 'stateChangeRequests').length === 0, { what: 'the Stop request to be cleared' });
});

test('a restart request (Stop this VMI, then Start) replaces the VMI', async () => {
  await createVm('restart');
  const first = await vmiAppears(env.client, 'restart');
  await report(env.client, 'restart', 'Running');
  await requestStateChange('restart', [{ action: 'Stop', uid: first.metadata.uid }, { action: 'Start' }]);
  const second = await vmiAppears(env.client, 'restart', first.metadata.uid);
  assert.notEqual(second.metadata.uid, first.metadata.uid);
  await eventually(async () => arrayAt(await vmStatus('restart'), 'stateChangeRequests').length === 0, { what: 'both requests to be cleared' });
});

test('a Start request on a Halted VM switches it to Always; a paused start starts paused', async () => {
  await createVm('wakes', { runStrategy: 'Halted' });
  await eventually(async () => (await printable(env.client, 'wakes')) === 'Stopped', { what: 'Stopped' });
  await requestStateChange('wakes', [{ action: 'Start', data: { paused: 'true' } }]);
  await eventually(async () => at(await read(env.client, vms, 'wakes'), 'spec', 'runStrategy') === 'Always', { what: 'runStrategy Always' });
  const vmi = await vmiAppears(env.client, 'wakes');
  assert.equal(stringAt(vmi, 'spec', 'startStrategy'), 'Paused');
});

test('a change that leaves the template alone moves observedGeneration; a template change sets RestartRequired', async () => {
  await createVm('edited');
  await vmiAppears(env.client, 'edited');
  await report(env.client, 'edited', 'Running');
  await env.client.patch(vms, 'default', 'edited', 'merge', { spec: { runStrategy: 'Manual' } });
  await eventually(async () => (await vmStatus('edited')).observedGeneration === 2, { what: 'observedGeneration 2' });
  assert.equal((await read(env.client, vmis, 'edited'))?.metadata.annotations?.['kubevirt.io/vm-generation'], '2');
  assert.equal(condition(await read(env.client, vms, 'edited'), 'RestartRequired'), undefined);
  await env.client.patch(vms, 'default', 'edited', 'merge', { spec: { template: { spec: { domain: { memory: { guest: '256Mi' } } } } } });
  await eventually(async () => condition(await read(env.client, vms, 'edited'), 'RestartRequired')?.status === 'True', { what: 'RestartRequired' });
  const status = await vmStatus('edited');
  assert.equal(status.observedGeneration, 2);
  assert.equal(status.desiredGeneration, 3);
});

test('deleting the VM stops its VMI and holds the VM, Terminating, until the VMI is gone', async () => {
  await createVm('gone');
  const vmi = await vmiAppears(env.client, 'gone');
  await eventually(async () => (await read(env.client, vms, 'gone'))?.metadata.finalizers?.includes(vmFinalizer) === true, { what: 'the VM controller finalizer' });
  // What the node agent does while QEMU shuts down: hold the VMI.
  await env.client.patch(vmis, 'default', 'gone', 'merge', { metadata: { finalizers: ['test/holding'] } });
  await env.client.delete(vms, 'default', 'gone');
  await eventually(async () => (await read(env.client, vmis, 'gone'))?.metadata.deletionTimestamp !== undefined, { what: 'the VMI to be stopped' });
  await eventually(async () => (await printable(env.client, 'gone')) === 'Terminating', { what: 'the VM to show Terminating' });
  assert.ok((await read(env.client, vms, 'gone')) !== undefined, 'the VM stays while its VMI does');
  await env.client.patch(vmis, 'default', 'gone', 'merge', { metadata: { finalizers: [] } });
  await vmiGone(env.client, 'gone', vmi.metadata.uid);
  await eventually(async () => (await read(env.client, vms, 'gone')) === undefined, { what: 'the VM to go once its VMI is gone' });
});

test('deleting the VM with propagationPolicy Orphan leaves its guest running', async () => {
  await createVm('orphaned');
  const vmi = await vmiAppears(env.client, 'orphaned');
  await eventually(async () => (await read(env.client, vms, 'orphaned'))?.metadata.finalizers?.includes(vmFinalizer) === true, { what: 'the VM controller finalizer' });
  await env.client.delete(vms, 'default', 'orphaned', { propagationPolicy: 'Orphan' });
  await eventually(async () => (await read(env.client, vms, 'orphaned')) === undefined, { what: 'the VM to go' });
  const left = await read(env.client, vmis, 'orphaned');
  assert.equal(left?.metadata.uid, vmi.metadata.uid);
  assert.equal(left?.metadata.deletionTimestamp, undefined, 'the orphaned VMI is not stopped');
  assert.deepEqual(left?.metadata.ownerReferences ?? [], []);
  await env.client.delete(vmis, 'default', 'orphaned');
});
