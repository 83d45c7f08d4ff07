import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { at, recordAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { ReplicaSetController } from '../../src/controllers/replicaset/index.js';
import type { Env } from './support.js';
import { condition, eventsFor, eventually, read, readyCondition, startEnv, vmiSpec } from './support.js';

let env: Env;
let controller: ReplicaSetController;

before(async () => {
  env = await startEnv();
  controller = new ReplicaSetController(env.client, silentLogger);
  await controller.start();
});
after(async () => {
  await controller.stop();
  await env.close();
});

const sets = resources.virtualMachineInstanceReplicaSets;
const vmis = resources.virtualMachineInstances;

function replicaSet(name: string, replicas: number): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceReplicaSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: vmiSpec('64Mi') },
    },
  };
}

/** The live VMIs of set `name`. */
async function members(name: string): Promise<KObject[]> {
  const list = await env.client.list(vmis, { namespace: 'default', labelSelector: `app=${name}` });
  return list.items.filter((v) => v.metadata.deletionTimestamp === undefined);
}

async function count(name: string, n: number): Promise<KObject[]> {
  return eventually(async () => {
    const found = await members(name);
    return found.length === n ? found : undefined;
  }, { what: `${n} VMIs of ${name}` });
}

async function status(name: string): Promise<Record<string, unknown>> {
  return recordAt(await read(env.client, sets, name), 'status') ?? {};
}

test('a replica set creates its replicas, owned by it, and reports them for the scale subresource', async () => {
  const rs = await env.client.create(sets, replicaSet('web', 3));
  const created = await count('web', 3);
  for (const vmi of created) {
    assert.match(vmi.metadata.name ?? '', /^web-[a-z0-9]{5}$/);
    assert.deepEqual(vmi.metadata.ownerReferences, [{ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceReplicaSet', name: 'web', uid: rs.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  }
  await eventually(async () => (await status('web')).replicas === 3, { what: 'status.replicas 3' });
  assert.equal((await status('web')).labelSelector, 'app=web');
  const raw = await env.server.fetch('GET', '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstancereplicasets/web/scale');
  assert.equal(raw.status, 200, raw.body);
  assert.deepEqual(at(raw.json(), 'status'), { replicas: 3, selector: 'app=web' });
  await eventually(async () => (await eventsFor(env.client, 'web')).filter((e) => e.reason === 'SuccessfulCreate').length === 3, { what: 'three SuccessfulCreate events' });
});

test('scaling through the scale subresource adds and removes VMIs; ready ones count as ready', async () => {
  await env.client.create(sets, replicaSet('api', 2));
  const two = await count('api', 2);
  const first = two[0];
  assert.ok(first !== undefined);
  await env.client.patch(vmis, 'default', first.metadata.name ?? '', 'merge', { status: { phase: 'Running', nodeName: 'n1', conditions: [readyCondition('True')] } });
  await eventually(async () => (await status('api')).readyReplicas === 1, { what: 'readyReplicas 1' });
  const scaled = await env.server.fetch('PATCH', '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstancereplicasets/api/scale', {
    body: JSON.stringify({ spec: { replicas: 4 } }),
    headers: { 'content-type': 'application/merge-patch+json' },
  });
  assert.equal(scaled.status, 200, scaled.body);
  await count('api', 4);
  await env.client.patch(sets, 'default', 'api', 'merge', { spec: { replicas: 1 } });
  const left = await count('api', 1);
  assert.equal(left[0]?.metadata.uid, first.metadata.uid, 'the ready, running VMI is the one kept');
  await eventually(async () => (await status('api')).replicas === 1, { what: 'status.replicas 1' });
});

test('finished VMIs are replaced; a paused set neither creates nor deletes', async () => {
  await env.client.create(sets, replicaSet('batch', 2));
  const [done] = await count('batch', 2);
  assert.ok(done !== undefined);
  await env.client.patch(sets, 'default', 'batch', 'merge', { spec: { paused: true } });
  await eventually(async () => condition(await read(env.client, sets, 'batch'), 'ReplicaPaused')?.status === 'True', { what: 'ReplicaPaused' });
  await env.client.patch(vmis, 'default', done.metadata.name ?? '', 'merge', { status: { phase: 'Failed' } });
  await eventually(async () => (await status('batch')).replicas === 1, { what: 'the finished VMI to stop counting' });
  assert.equal((await members('batch')).length, 2, 'paused: the finished VMI is neither deleted nor replaced');
  await env.client.patch(sets, 'default', 'batch', 'merge', { spec: { paused: false } });
  await eventually(async () => {
    const now = await members('batch');
    return now.length === 2 && !now.some((v) => v.metadata.uid === done.metadata.uid);
  }, { what: 'the finished VMI to be replaced' });
  await eventually(async () => condition(await read(env.client, sets, 'batch'), 'ReplicaPaused') === undefined, { what: 'ReplicaPaused to clear' });
  const reasons = (await eventsFor(env.client, 'batch')).map((e) => e.reason);
  assert.ok(reasons.includes('SuccessfulPaused') && reasons.includes('SuccessfulResumed'), reasons.join(','));
});

test('an orphan the selector matches is adopted instead of creating another', async () => {
  await env.client.create(vmis, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'stray', namespace: 'default', labels: { app: 'adopt' } }, spec: vmiSpec('64Mi') });
  const rs = await env.client.create(sets, replicaSet('adopt', 1));
  await eventually(async () => (await read(env.client, vmis, 'stray'))?.metadata.ownerReferences?.[0]?.uid === rs.metadata.uid, { what: 'the orphan to be adopted' });
  await eventually(async () => (await status('adopt')).replicas === 1, { what: 'status.replicas 1' });
  assert.equal((await members('adopt')).length, 1);
});
