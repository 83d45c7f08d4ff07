/**
 * Hotplug outlives the agent: a claim hot-plugged into a running guest is
 * still attached, and still reported Ready, after the agent restarts (the
 * new agent finds it in QEMU's `query-block`, it does not plug it twice),
 * and the new agent can unplug it. The guest is the blank SeaBIOS image:
 * SCSI hot-unplug needs no cooperation from an OS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { QmpClient } from '../../src/agent/qmp/index.js';
import { resources } from '../../src/client/index.js';
import { selectedNodeAnnotation } from '../../src/storage/local/index.js';
import { skipWithoutQemu } from '../e2e/vm-support.js';
import { qemuPidsUnder, runningBlankVmi, startAgentFixture, waitVmi } from './support.js';
import type { AgentFixture } from './support.js';

function volumeStatus(vmi: KObject, name: string): Record<string, unknown> | undefined {
  return recordsAt(vmi, 'status', 'volumeStatus').find((s) => s.name === name);
}

async function subresource(fixture: AgentFixture, verb: 'addvolume' | 'removevolume', body: unknown): Promise<void> {
  const reply = await fixture.client.raw('PUT', `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/hp/${verb}`, body);
  assert.equal(reply.status, 202, `${verb}: ${reply.body}`);
}

test('a hotplugged claim stays attached and Ready across an agent restart, and the new agent unplugs it', { skip: skipWithoutQemu, timeout: 120_000 }, async (t) => {
  const fixture = await startAgentFixture();
  t.after(() => fixture.close());
  const { pid, dir } = await runningBlankVmi(fixture, 'hp');
  await fixture.client.create(resources.persistentVolumeClaims, {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'hot', namespace: 'default', annotations: { [selectedNodeAnnotation]: fixture.nodeName } },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '16Mi' } } },
  });
  await subresource(fixture, 'addvolume', { name: 'hot', disk: { disk: { bus: 'scsi' } }, volumeSource: { persistentVolumeClaim: { claimName: 'hot', hotpluggable: true } } });
  const ready = (v: KObject): boolean => stringAt(volumeStatus(v, 'hot'), 'phase') === 'Ready';
  const attached = await waitVmi(fixture, 'hp', ready, 'the hotplugged claim to be Ready', 60_000);
  const target = stringAt(volumeStatus(attached, 'hot'), 'target');

  // While no agent holds QMP, QEMU itself says the disk is plugged: one device for the claim's drive.
  await fixture.agent.stop();
  const qmp = await QmpClient.connect(join(dir, 'qmp.sock'));
  const plugged = (await qmp.execute('query-block')).filter((b) => b.qdev?.includes('hot') === true);
  qmp.close();
  assert.equal(plugged.length, 1, `query-block: ${JSON.stringify(plugged)}`);

  await fixture.restartAgent();
  assert.deepEqual(qemuPidsUnder(fixture.dataDir), [pid], 'the same QEMU, and only it');
  // A fresh status from the new agent: the VMI's resourceVersion moves past the restart, and the volume stays Ready with its target.
  const before = attached.metadata.resourceVersion;
  await fixture.client.patch(resources.virtualMachineInstances, 'default', 'hp', 'merge', { metadata: { labels: { poke: 'after-restart' } } });
  const after = await waitVmi(fixture, 'hp', (v) => v.metadata.resourceVersion !== before && ready(v) && stringAt(v, 'metadata', 'labels', 'poke') === 'after-restart', 'the new agent to report the volume');
  assert.equal(stringAt(volumeStatus(after, 'hot'), 'target'), target);
  assert.equal(recordsAt(after, 'status', 'volumeStatus').filter((s) => s.name === 'hot').length, 1);
  assert.equal(recordsAt(after, 'status', 'conditions').find((c) => c.type === 'Synchronized')?.status ?? 'True', 'True', 'no failed hotplug reported');

  await subresource(fixture, 'removevolume', { name: 'hot' });
  await waitVmi(fixture, 'hp', (v) => volumeStatus(v, 'hot') === undefined && !recordsAt(v, 'spec', 'volumes').some((vol) => vol.name === 'hot'), 'the new agent to unplug the claim', 60_000);
});
