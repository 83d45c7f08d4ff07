/**
 * Node failure on three lab hosts (a server in host-0, agents in host-1
 * and host-2), with a short `--node-monitor-grace-period`: a killed host's
 * Node turns NotReady (unreachable taints), its VMIs go Failed
 * (NodeUnresponsive), a VM with runStrategy Always runs again on another
 * node, and the agent, once back, starts nothing. The fencing test is in
 * node-fencing.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { resources } from '../../src/client/index.js';
import { leaseRenewIntervalMs } from '../../src/api/kinds/node-lifecycle.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { blankImage, qemuPidsUnder } from '../agent/support.js';
import { graceSeconds, nodeOf, nodeStatus, phaseOf, placeOn, skip, startFailureCluster, vm, vmiOf } from './node-failure-support.js';

test('a dead node turns NotReady, its VMIs fail and its VM runs again elsewhere; nothing restarts when it returns', { skip, timeout: 580_000 }, async (t) => {
  const { cluster } = await startFailureCluster();
  t.after(() => cluster.close());
  const { lab, client, root } = cluster;
  const [, , host2] = lab.hosts;
  assert.ok(host2 !== undefined);

  await t.test('every Node carries the grace period for its agent', async () => {
    await eventually(async () => (await client.list(resources.nodes)).items.every((n) => n.metadata.annotations?.['vireo.io/node-monitor-grace-period'] === `${graceSeconds}s`) || undefined, { what: 'the grace period on every Node', timeoutMs: 30_000 });
  });

  await t.test('a killed host: NotReady within the grace period, its VMIs Failed, its VM running on another node, nothing restarted when it returns', async () => {
    const first = await placeOn(cluster, 'mover', host2.name, vm('mover', blankImage));
    // A VMI without a VM: it fails and stays failed.
    await client.create(resources.virtualMachineInstances, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'lone', namespace: 'default' }, spec: { ...((first.spec ?? {}) as Record<string, unknown>), nodeSelector: { 'kubernetes.io/hostname': host2.name } } });
    await eventually(async () => phaseOf(await vmiOf(cluster, 'lone')) === 'Running' || undefined, { what: 'VMI lone running on host-2', timeoutMs: 120_000, intervalMs: 250 });

    const killedAt = Date.now();
    await lab.kill(host2);
    await eventually(async () => (await nodeStatus(cluster, host2.name)) === 'NotReady' || undefined, { what: 'kubectl get nodes to show host-2 NotReady', timeoutMs: (graceSeconds + 20) * 1000, intervalMs: 250 });
    const notReadyMs = Date.now() - killedAt;
    t.diagnostic(`host-2 NotReady ${notReadyMs} ms after its death (grace ${graceSeconds} s)`);
    // The grace runs from the last renew the server saw, up to one renew interval before the kill.
    assert.ok(notReadyMs >= graceSeconds * 1000 - leaseRenewIntervalMs(graceSeconds * 1000) - 500, `NotReady after ${notReadyMs} ms: not before the grace period`);
    assert.ok(notReadyMs <= (graceSeconds + 10) * 1000, `NotReady after ${notReadyMs} ms: within grace + 10 s`);
    const node = await client.get(resources.nodes, undefined, host2.name);
    const ready = recordsAt(node, 'status', 'conditions').find((c) => c.type === 'Ready');
    assert.equal(ready?.status, 'Unknown');
    assert.equal(ready?.reason, 'NodeStatusUnknown');
    // The taints are a second write, just after the conditions.
    await eventually(async () => {
      const taints = recordsAt(await client.get(resources.nodes, undefined, host2.name), 'spec', 'taints').map((t) => `${String(t.key)}:${String(t.effect)}`);
      return (taints.includes('node.kubernetes.io/unreachable:NoSchedule') && taints.includes('node.kubernetes.io/unreachable:NoExecute')) || undefined;
    }, { what: 'the unreachable taints on host-2', timeoutMs: 10_000 });

    const lone = await eventually(async () => {
      const vmi = await vmiOf(cluster, 'lone');
      return phaseOf(vmi) === 'Failed' ? vmi : undefined;
    }, { what: 'VMI lone Failed', timeoutMs: 30_000, intervalMs: 250 });
    assert.equal(stringAt(lone, 'status', 'reason'), 'NodeUnresponsive');
    const events = await kubectl(['get', 'events', '--field-selector', 'involvedObject.name=lone', '-o', 'jsonpath={.items[*].reason}'], cluster.kc);
    assert.match(events.stdout, /NodeUnresponsive/);

    const moved = await eventually(async () => {
      const vmi = await vmiOf(cluster, 'mover');
      return phaseOf(vmi) === 'Running' && vmi?.metadata.uid !== first.metadata.uid ? vmi : undefined;
    }, { what: 'VM mover running again', timeoutMs: 120_000, intervalMs: 250 });
    t.diagnostic(`mover running on ${nodeOf(moved) ?? '?'} ${Date.now() - killedAt} ms after host-2's death`);
    assert.notEqual(nodeOf(moved), host2.name);

    // The agent returns: Ready again, taints gone, and the failed VMI is not started again.
    await cluster.startAgent(host2);
    await eventually(async () => (await nodeStatus(cluster, host2.name)) === 'Ready' || undefined, { what: 'host-2 Ready again', timeoutMs: 60_000, intervalMs: 250 });
    await eventually(async () => {
      const back = await client.get(resources.nodes, undefined, host2.name);
      return !recordsAt(back, 'spec', 'taints').some((t) => t.key === 'node.kubernetes.io/unreachable') || undefined;
    }, { what: 'the unreachable taints removed', timeoutMs: 30_000 });
    // Nothing to wait on for something that must not happen: the agent has listed its VMIs (Ready) and cleaned up its directories.
    await eventually(() => !existsSync(join(root, host2.name, 'agent', 'vmis', first.metadata.uid ?? '')) || undefined, { what: "host-2's agent to clean up the directory of mover's dead guest", timeoutMs: 60_000, intervalMs: 250 });
    assert.deepEqual(qemuPidsUnder(join(root, host2.name)), []);
    assert.equal(phaseOf(await vmiOf(cluster, 'lone')), 'Failed');
    await client.delete(resources.virtualMachineInstances, 'default', 'lone');
    await client.delete(resources.virtualMachines, 'default', 'mover');
    await eventually(async () => (await vmiOf(cluster, 'mover')) === undefined && (await vmiOf(cluster, 'lone')) === undefined, { what: 'mover and lone gone', timeoutMs: 60_000 });
  });

});
