/**
 * The node lifecycle controller against a real in-process API server, with
 * a grace period of 1.5 s: the test renews (or stops renewing) a Node's
 * Lease as an agent would.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { silentLogger } from '../../src/log/logger.js';
import { NodeLifecycleController } from '../../src/controllers/nodelifecycle/index.js';
import { agentFinalizer } from '../../src/agent/index.js';
import { Scheduler } from '../../src/scheduler/index.js';
import type { Env } from './support.js';
import { condition, eventsFor, eventually, nodeManifest, startEnv, vmiSpec } from './support.js';

const graceMs = 1_500;
let env: Env;
let controller: NodeLifecycleController;

before(async () => {
  env = await startEnv();
  controller = new NodeLifecycleController(env.client, silentLogger, { gracePeriodMs: graceMs });
  await controller.start();
});
after(async () => {
  await controller.stop();
  await env.close();
});

async function renew(node: string): Promise<void> {
  const spec = { holderIdentity: node, leaseDurationSeconds: 40, renewTime: new Date().toISOString().replace('Z', '000Z') };
  const existing = await env.client.tryGet(resources.leases, 'kube-node-lease', node);
  if (existing === undefined) await env.client.create(resources.leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: node, namespace: 'kube-node-lease' }, spec });
  else await env.client.patch(resources.leases, 'kube-node-lease', node, 'merge', { spec });
}

async function runningVmi(name: string, node: string): Promise<KObject> {
  const created = await env.client.create(resources.virtualMachineInstances, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name, namespace: 'default', finalizers: [agentFinalizer] }, spec: vmiSpec('64Mi') });
  return env.client.patch(resources.virtualMachineInstances, 'default', created.metadata.name ?? '', 'merge', { status: { phase: 'Running', nodeName: node } });
}

function ready(node: KObject): Record<string, unknown> | undefined {
  return recordsAt(node, 'status', 'conditions').find((c) => c.type === 'Ready');
}

function unreachableTaints(node: KObject): string[] {
  return recordsAt(node, 'spec', 'taints').filter((t) => t.key === 'node.kubernetes.io/unreachable').map((t) => String(t.effect)).sort();
}

test('a node whose Lease is renewed stays Ready and gets the grace period annotation', async () => {
  await env.client.create(resources.nodes, nodeManifest('alive', { cpu: '2', memory: '1Gi' }));
  await renew('alive');
  const started = Date.now();
  while (Date.now() - started < graceMs * 2) {
    await renew('alive');
    await new Promise((resolve) => setTimeout(resolve, graceMs / 5));
  }
  const node = await env.client.get(resources.nodes, undefined, 'alive');
  assert.equal(ready(node)?.status, 'True');
  assert.deepEqual(unreachableTaints(node), []);
  assert.equal(node.metadata.annotations?.['vireo.io/node-monitor-grace-period'], '1500ms');
});

test('a silent node: Unknown and tainted after the grace period, its VMIs Failed, a deleted one released; renewed: taints gone', async () => {
  await env.client.create(resources.nodes, nodeManifest('silent', { cpu: '2', memory: '1Gi' }));
  const renewedAt = Date.now();
  await renew('silent');
  const running = await runningVmi('on-silent', 'silent');
  const ended = await runningVmi('ended-on-silent', 'silent');
  await env.client.patch(resources.virtualMachineInstances, 'default', 'ended-on-silent', 'merge', { status: { phase: 'Succeeded' } });
  const node = await eventually(async () => {
    const n = await env.client.get(resources.nodes, undefined, 'silent');
    return ready(n)?.status === 'Unknown' ? n : undefined;
  }, { what: 'silent Unknown', timeoutMs: 10_000 });
  assert.ok(Date.now() - renewedAt >= graceMs - 100, 'not before the grace period');
  assert.equal(ready(node)?.reason, 'NodeStatusUnknown');
  assert.match(String(ready(node)?.message), /stopped renewing its Lease/);
  await eventually(async () => unreachableTaints(await env.client.get(resources.nodes, undefined, 'silent')).join() === 'NoExecute,NoSchedule' || undefined, { what: 'unreachable taints' });
  const failed = await eventually(async () => {
    const vmi = await env.client.get(resources.virtualMachineInstances, 'default', 'on-silent');
    return stringAt(vmi, 'status', 'phase') === 'Failed' ? vmi : undefined;
  }, { what: 'on-silent Failed' });
  assert.equal(failed.metadata.uid, running.metadata.uid);
  assert.equal(stringAt(failed, 'status', 'reason'), 'NodeUnresponsive');
  assert.ok((await eventsFor(env.client, 'on-silent')).some((e) => stringAt(e, 'reason') === 'NodeUnresponsive'));
  // An ended VMI keeps its phase; deleted, it loses the finalizer no dead agent would release.
  assert.equal(stringAt(await env.client.get(resources.virtualMachineInstances, 'default', 'ended-on-silent'), 'status', 'phase'), 'Succeeded');
  await env.client.delete(resources.virtualMachineInstances, 'default', 'ended-on-silent');
  await env.client.delete(resources.virtualMachineInstances, 'default', 'on-silent');
  await eventually(async () => (await env.client.tryGet(resources.virtualMachineInstances, 'default', 'on-silent')) === undefined && (await env.client.tryGet(resources.virtualMachineInstances, 'default', 'ended-on-silent')) === undefined, { what: 'both VMIs gone' });
  assert.ok(ended.metadata.finalizers?.includes(agentFinalizer));

  await renew('silent');
  await eventually(async () => unreachableTaints(await env.client.get(resources.nodes, undefined, 'silent')).length === 0 || undefined, { what: 'taints removed after a renew' });
});

test('a cordon taint and others stay when the unreachable ones come and go', async () => {
  await env.client.create(resources.nodes, nodeManifest('tainted', { cpu: '2', memory: '1Gi', taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] }));
  await renew('tainted');
  await eventually(async () => unreachableTaints(await env.client.get(resources.nodes, undefined, 'tainted')).length === 2 || undefined, { what: 'unreachable taints', timeoutMs: 10_000 });
  await renew('tainted');
  const node = await eventually(async () => {
    const n = await env.client.get(resources.nodes, undefined, 'tainted');
    return unreachableTaints(n).length === 0 ? n : undefined;
  }, { what: 'taints removed' });
  assert.deepEqual(recordsAt(node, 'spec', 'taints').map((t) => t.key), ['dedicated']);
});

test('a VMI whose local volume is on a dead node stays unscheduled, saying why; one without volumes goes to a live node', async () => {
  const scheduler = new Scheduler(env.client, silentLogger, { memoryOverheadBytes: 0 });
  await scheduler.start();
  try {
    await env.client.create(resources.nodes, nodeManifest('dead', { cpu: '4', memory: '4Gi' }));
    await env.client.create(resources.nodes, nodeManifest('live', { cpu: '4', memory: '4Gi' }));
    await renew('live');
    const keepLive = setInterval(() => { void renew('live').catch(() => undefined); }, graceMs / 4);
    try {
      await renew('dead');
      await eventually(async () => unreachableTaints(await env.client.get(resources.nodes, undefined, 'dead')).length === 2 || undefined, { what: 'dead tainted', timeoutMs: 10_000 });
      await env.client.create(resources.persistentVolumes, {
        apiVersion: 'v1',
        kind: 'PersistentVolume',
        metadata: { name: 'pv-on-dead' },
        spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'local', hostPath: { path: '/nonexistent' }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['dead'] }] }] } } },
      });
      await env.client.create(resources.persistentVolumeClaims, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data', namespace: 'default' }, spec: { storageClassName: 'local', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, volumeName: 'pv-on-dead' } });
      await env.client.create(resources.virtualMachineInstances, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'pinned', namespace: 'default' }, spec: vmiSpec('64Mi', { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }], domain: { devices: { disks: [{ name: 'data', disk: { bus: 'virtio' } }] }, memory: { guest: '64Mi' }, resources: {} } }) });
      await env.client.create(resources.virtualMachineInstances, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'free', namespace: 'default' }, spec: vmiSpec('64Mi') });
      const message = await eventually(async () => {
        const c = condition(await env.client.get(resources.virtualMachineInstances, 'default', 'pinned'), 'PodScheduled');
        return c?.status === 'False' && c.reason === 'Unschedulable' && String(c.message).includes('conflict') ? String(c.message) : undefined;
      }, { what: 'pinned unschedulable, with the live node failing on the volume' });
      assert.match(message, /untolerated taint \{node\.kubernetes\.io\/unreachable: \}/);
      assert.match(message, /volume node affinity conflict/);
      // KubeVirt's phase for a VMI whose pod is Pending: Scheduling, with no node.
      const pinned = await env.client.get(resources.virtualMachineInstances, 'default', 'pinned');
      assert.equal(stringAt(pinned, 'status', 'phase'), 'Scheduling');
      assert.equal(stringAt(pinned, 'status', 'nodeName'), undefined);
      await eventually(async () => stringAt(await env.client.get(resources.virtualMachineInstances, 'default', 'free'), 'status', 'nodeName') === 'live' || undefined, { what: 'free scheduled to live' });
    } finally {
      clearInterval(keepLive);
    }
  } finally {
    await scheduler.stop();
  }
});
