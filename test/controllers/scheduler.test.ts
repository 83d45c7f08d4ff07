import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { Informer, resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { Scheduler } from '../../src/scheduler/index.js';
import { VirtualMachineController } from '../../src/controllers/vm/index.js';
import type { Env } from './support.js';
import { condition, eventsFor, eventually, laggingClient, nodeManifest, printable, read, startEnv, vmiSpec, vmManifest } from './support.js';

let env: Env;
let scheduler: Scheduler;
let vmController: VirtualMachineController;
let stopInformer: () => Promise<void>;

before(async () => {
  env = await startEnv();
  // Two nodes: a small one in zone a, a big one in zone b.
  await env.client.create(resources.nodes, nodeManifest('small', { cpu: '2', memory: '1Gi', labels: { zone: 'a', rack: '3' } }));
  await env.client.create(resources.nodes, nodeManifest('big', { cpu: '8', memory: '8Gi', labels: { zone: 'b', rack: '7' } }));
  // The scheduler's VMI cache trails its own bindings, as under load: placements must not overbook regardless.
  const vmiInformer = new Informer(laggingClient(env.client, 150), resources.virtualMachineInstances, silentLogger);
  scheduler = new Scheduler(env.client, silentLogger, { memoryOverheadBytes: 0, vmiInformer });
  stopInformer = () => vmiInformer.stop();
  vmController = new VirtualMachineController(env.client, silentLogger);
  await scheduler.start();
  await vmController.start();
});
after(async () => {
  await vmController.stop();
  await scheduler.stop();
  await stopInformer();
  await env.close();
});

const vmis = resources.virtualMachineInstances;

function vmi(name: string, memory: string, extra: Record<string, unknown> = {}): KObject {
  return { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace: 'default' }, spec: vmiSpec(memory, extra) };
}

async function nodeOf(name: string): Promise<string> {
  return eventually(async () => stringAt(await read(env.client, vmis, name), 'status', 'nodeName'), { what: `VMI ${name} to be scheduled` });
}

async function unschedulable(name: string): Promise<string> {
  return eventually(async () => {
    const c = condition(await read(env.client, vmis, name), 'PodScheduled');
    return c?.status === 'False' && c.reason === 'Unschedulable' ? String(c.message) : undefined;
  }, { what: `VMI ${name} to be unschedulable` });
}

async function cleanup(...names: string[]): Promise<void> {
  for (const name of names) await env.client.delete(vmis, 'default', name).catch(() => undefined);
}

test('a VMI goes to the node its memory fits, and is bound with phase Scheduled', async () => {
  await env.client.create(vmis, vmi('fits', '2Gi'));
  assert.equal(await nodeOf('fits'), 'big');
  const bound = await read(env.client, vmis, 'fits');
  assert.equal(stringAt(bound, 'status', 'phase'), 'Scheduled');
  assert.equal(bound?.metadata.labels?.['kubevirt.io/nodeName'], 'big', 'labelled with its node, as KubeVirt does');
  assert.equal(condition(bound, 'PodScheduled'), undefined);
  const event = await eventually(async () => (await eventsFor(env.client, 'fits')).find((e) => e.reason === 'Scheduled'), { what: 'a Scheduled event' });
  assert.equal(event.message, 'Successfully assigned default/fits to big');
  await cleanup('fits');
});

test('nodeSelector and required node affinity pick the node', async () => {
  await env.client.create(vmis, vmi('selected', '128Mi', { nodeSelector: { zone: 'a' } }));
  assert.equal(await nodeOf('selected'), 'small');
  const affinity = (operator: string, values: string[]): Record<string, unknown> => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'rack', operator, values }] }] } },
  });
  await env.client.create(vmis, vmi('rack-gt', '128Mi', { affinity: affinity('Gt', ['5']) }));
  assert.equal(await nodeOf('rack-gt'), 'big');
  await env.client.create(vmis, vmi('rack-notin', '128Mi', { affinity: affinity('NotIn', ['7']) }));
  assert.equal(await nodeOf('rack-notin'), 'small');
  await cleanup('selected', 'rack-gt', 'rack-notin');
});

test('the least loaded node wins, and bound VMIs count against their node', async () => {
  // Without constraints the big node is least allocated; fill it and the next goes to the small one.
  await env.client.create(vmis, vmi('load-1', '7Gi'));
  assert.equal(await nodeOf('load-1'), 'big');
  await env.client.create(vmis, vmi('load-2', '768Mi'));
  assert.equal(await nodeOf('load-2'), 'small');
  await env.client.create(vmis, vmi('load-3', '1536Mi'));
  const message = await unschedulable('load-3');
  assert.equal(message, '0/2 nodes are available: 2 Insufficient memory.');
  assert.equal(stringAt(await read(env.client, vmis, 'load-3'), 'status', 'phase'), 'Scheduling');
  // Room freed by a VMI that ends is given to the waiting one.
  await env.client.patch(vmis, 'default', 'load-1', 'merge', { status: { phase: 'Succeeded' } });
  assert.equal(await nodeOf('load-3'), 'big');
  assert.equal(condition(await read(env.client, vmis, 'load-3'), 'PodScheduled'), undefined, 'the Unschedulable condition goes once bound');
  await cleanup('load-1', 'load-2', 'load-3');
});

test('VMIs created at once never overbook a node, though the cache lags behind each binding', async () => {
  await env.client.create(resources.nodes, nodeManifest('tight', { cpu: '4', memory: '1Gi', labels: { pool: 'tight' } }));
  const names = Array.from({ length: 6 }, (_, i) => `burst-${i}`);
  await Promise.all(names.map((name) => env.client.create(vmis, vmi(name, '256Mi', { nodeSelector: { pool: 'tight' } }))));
  const outcome = await eventually(async () => {
    const all = await Promise.all(names.map((name) => read(env.client, vmis, name)));
    const bound = all.filter((v) => stringAt(v, 'status', 'nodeName') === 'tight').length;
    const waiting = all.filter((v) => condition(v, 'PodScheduled')?.reason === 'Unschedulable').length;
    return bound + waiting === names.length ? { bound, waiting } : undefined;
  }, { what: 'every burst VMI to be placed or refused' });
  assert.deepEqual(outcome, { bound: 4, waiting: 2 });
  await cleanup(...names);
  await env.client.delete(resources.nodes, undefined, 'tight');
});

test('taints keep VMIs away unless tolerated; the message says why per node', async () => {
  await env.client.patch(resources.nodes, undefined, 'big', 'merge', { spec: { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] } });
  try {
    await env.client.create(vmis, vmi('tainted', '3Gi'));
    assert.equal(await unschedulable('tainted'), '0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: db}.');
    await env.client.create(vmis, vmi('tolerant', '3Gi', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }] }));
    assert.equal(await nodeOf('tolerant'), 'big');
    await env.client.create(vmis, vmi('picky', '128Mi', { nodeSelector: { zone: 'b' } }));
    assert.equal(await unschedulable('picky'), "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: db}.");
  } finally {
    await env.client.patch(resources.nodes, undefined, 'big', 'merge', { spec: { taints: null } });
  }
  // Removing the taint is a node change: the waiting VMIs are retried.
  assert.equal(await nodeOf('tainted'), 'big');
  assert.equal(await nodeOf('picky'), 'big');
  await cleanup('tainted', 'tolerant', 'picky');
});

test('cordoned and not-ready nodes take no VMIs', async () => {
  await env.client.patch(resources.nodes, undefined, 'small', 'merge', { spec: { unschedulable: true } });
  await env.client.patch(resources.nodes, undefined, 'big', 'merge', { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady' }] } }, { subresource: 'status' });
  try {
    await env.client.create(vmis, vmi('nowhere', '128Mi'));
    assert.equal(await unschedulable('nowhere'), '0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 1 node(s) were unschedulable.');
  } finally {
    await env.client.patch(resources.nodes, undefined, 'small', 'merge', { spec: { unschedulable: false } });
  }
  assert.equal(await nodeOf('nowhere'), 'small');
  await env.client.patch(resources.nodes, undefined, 'big', 'merge', { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } }, { subresource: 'status' });
  await cleanup('nowhere');
});

test('a VM whose VMI fits nowhere shows ErrorUnschedulable, and runs once a node can take it', async () => {
  await env.client.create(resources.virtualMachines, vmManifest('huge', { runStrategy: 'Always' }, { domain: { devices: {}, memory: { guest: '16Gi' } } }));
  await eventually(async () => (await printable(env.client, 'huge')) === 'ErrorUnschedulable', { what: 'ErrorUnschedulable' });
  const warning = await eventually(async () => (await eventsFor(env.client, 'huge')).find((e) => e.reason === 'FailedScheduling'), { what: 'a FailedScheduling event' });
  assert.equal(warning.type, 'Warning');
  assert.equal(warning.message, '0/2 nodes are available: 2 Insufficient memory.');
  await env.client.create(resources.nodes, nodeManifest('giant', { cpu: '32', memory: '64Gi' }));
  assert.equal(await nodeOf('huge'), 'giant');
  await eventually(async () => (await printable(env.client, 'huge')) === 'Starting', { what: 'Starting once scheduled' });
});
