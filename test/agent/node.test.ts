/**
 * The agent registers its Node as a kubelet does and heartbeats a Lease.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpus } from 'node:os';
import { resources } from '../../src/client/index.js';
import { parseQuantity } from '../../src/api/validation/quantity.js';
import { at, recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { startAgentFixture } from './support.js';

test('the agent registers its Node (labels, capacity, allocatable, nodeInfo, Ready) and holds its Lease', async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const node = await fixture.client.get(resources.nodes, undefined, fixture.nodeName);
  assert.deepEqual(
    Object.fromEntries(['kubernetes.io/hostname', 'kubernetes.io/os', 'kubernetes.io/arch', 'kubevirt.io/schedulable', 'node-role.kubernetes.io/control-plane'].map((k) => [k, node.metadata.labels?.[k]])),
    { 'kubernetes.io/hostname': fixture.nodeName, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'kubevirt.io/schedulable': 'true', 'node-role.kubernetes.io/control-plane': '' },
  );
  assert.equal(stringAt(node, 'status', 'capacity', 'cpu'), String(cpus().length));
  const capacity = parseQuantity(at(node, 'status', 'capacity', 'memory'));
  const allocatable = parseQuantity(at(node, 'status', 'allocatable', 'memory'));
  assert.ok(capacity !== undefined && allocatable !== undefined && allocatable < capacity && allocatable > 0, 'allocatable memory is capacity minus a reserve');
  assert.equal(stringAt(node, 'status', 'nodeInfo', 'kubeletVersion'), 'v1.32.0+vireo');
  assert.match(stringAt(node, 'status', 'nodeInfo', 'containerRuntimeVersion') ?? '', /^qemu:\/\/\d+\.\d+/);
  assert.equal(stringAt(node, 'status', 'nodeInfo', 'architecture'), 'amd64');
  assert.notEqual(stringAt(node, 'status', 'nodeInfo', 'osImage') ?? '', '');
  const ready = recordsAt(node, 'status', 'conditions').find((c) => c.type === 'Ready');
  assert.equal(ready?.status, 'True');
  assert.ok(recordsAt(node, 'status', 'addresses').some((a) => a.type === 'InternalIP'));

  const lease = await fixture.client.get(resources.leases, 'kube-node-lease', fixture.nodeName);
  assert.equal(stringAt(lease, 'spec', 'holderIdentity'), fixture.nodeName);
  assert.equal(at(lease, 'spec', 'leaseDurationSeconds'), 40);
  assert.ok(Date.now() - Date.parse(stringAt(lease, 'spec', 'renewTime') ?? '') < 30_000, 'renewed just now');
  assert.equal(lease.metadata.ownerReferences?.[0]?.uid, node.metadata.uid, 'the Node owns its Lease');

  // A restarted agent finds its Node and Lease and keeps them.
  await fixture.restartAgent();
  const again = await fixture.client.get(resources.nodes, undefined, fixture.nodeName);
  assert.equal(again.metadata.uid, node.metadata.uid);
});
