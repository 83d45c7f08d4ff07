/**
 * CDI end to end on one node: a VM's dataVolumeTemplate imports the test
 * guest's qcow2 over HTTP from a local server into a local volume (the
 * node agent's import runner), the VM boots from that volume, and the
 * DataVolume reports CDI's phases and a progress that reaches 100%.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_READY_MARKER, ensureTestGuest } from '../../src/agent/images/index.js';
import { resources } from '../../src/client/index.js';
import { startImageServer } from '../../src/testing/image-server.js';
import { eventually } from '../../src/testing/wait.js';
import { ConsoleCapture, History, skipWithoutQemu, startVmEnv, vms } from '../e2e/vm-support.js';

function importedVm(name: string, url: string): KObject {
  return vmFromTemplate(name, { http: { url } });
}

/** A VM whose root disk is the DataVolume `<name>-root` of its template, filled from `source`. */
function vmFromTemplate(name: string, source: Record<string, unknown>): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: 'default' },
    spec: {
      runStrategy: 'Always',
      dataVolumeTemplates: [
        {
          metadata: { name: `${name}-root` },
          spec: { source, storage: { resources: { requests: { storage: '256Mi' } } } },
        },
      ],
      template: {
        spec: {
          terminationGracePeriodSeconds: 0,
          domain: { devices: { autoattachGraphicsDevice: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }] }, memory: { guest: '128Mi' }, resources: {} },
          volumes: [{ name: 'root', dataVolume: { name: `${name}-root` } }],
        },
      },
    },
  };
}

test('a VM boots from a DataVolume imported over HTTP into a local volume', { skip: skipWithoutQemu, timeout: 300_000 }, async (t) => {
  const env = await startVmEnv(t);
  const guest = await ensureTestGuest();
  const images = await startImageServer();
  t.after(() => images.stop());
  images.serve('/tiny.qcow2', { file: guest.disk });
  const dvHistory = await History.start(t, env.client, resources.dataVolumes, 'imported-root');

  await env.client.create(vms, importedVm('imported', `${images.url}/tiny.qcow2`));
  const dv = await eventually(async () => {
    const current = await env.client.tryGet(resources.dataVolumes, 'default', 'imported-root');
    return stringAt(current, 'status', 'phase') === 'Succeeded' ? current : undefined;
  }, { what: 'the DataVolume import to succeed', timeoutMs: 180_000, intervalMs: 200 });
  assert.equal(stringAt(dv, 'status', 'progress'), '100.0%');
  assert.ok(dv?.metadata.ownerReferences?.some((r) => r.kind === 'VirtualMachine' && r.name === 'imported'), 'the DataVolume is owned by its VM');
  const phases = dvHistory.transitions((obj) => stringAt(obj, 'status', 'phase'));
  assert.ok(phases.includes('ImportInProgress') || phases.includes('ImportScheduled'), `the import was seen running: ${phases.join(' → ')}`);
  assert.equal(phases[phases.length - 1], 'Succeeded');
  assert.ok(images.bytesServed('/tiny.qcow2') > 0, 'the image came from the HTTP server');

  // The volume: a file on the node, under the agent's volumes.
  const pvc = await env.client.get(resources.persistentVolumeClaims, 'default', 'imported-root');
  assert.equal(stringAt(pvc, 'status', 'phase'), 'Bound');
  const uid = pvc.metadata.uid ?? '';
  assert.ok(existsSync(join(env.agentDir, 'volumes', `pvc-${uid}`, 'disk.img')), 'the imported disk is a local volume file');

  const console = await eventually(async () => {
    const vmi = await env.client.tryGet(resources.virtualMachineInstances, 'default', 'imported');
    return stringAt(vmi, 'status', 'phase') === 'Running' ? ConsoleCapture.open(env, 'imported') : undefined;
  }, { what: 'the VM to run', timeoutMs: 60_000, intervalMs: 200 });
  t.after(() => { console.close(); });
  await eventually(() => console.text().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to boot from the imported volume', timeoutMs: 120_000, intervalMs: 200 });

  // A second VM from a DataVolume that clones the first one's: a copy on the same node, no new download.
  const served = images.bytesServed('/tiny.qcow2');
  await env.client.create(vms, vmFromTemplate('cloned', { pvc: { namespace: 'default', name: 'imported-root' } }));
  const copy = await eventually(async () => {
    const current = await env.client.tryGet(resources.dataVolumes, 'default', 'cloned-root');
    return stringAt(current, 'status', 'phase') === 'Succeeded' ? current : undefined;
  }, { what: 'the cloning DataVolume to succeed', timeoutMs: 120_000, intervalMs: 200 });
  assert.equal(stringAt(copy, 'status', 'progress'), '100.0%');
  const clonedConsole = await eventually(async () => {
    const vmi = await env.client.tryGet(resources.virtualMachineInstances, 'default', 'cloned');
    return stringAt(vmi, 'status', 'phase') === 'Running' ? ConsoleCapture.open(env, 'cloned') : undefined;
  }, { what: 'the clone VM to run', timeoutMs: 60_000, intervalMs: 200 });
  t.after(() => { clonedConsole.close(); });
  await eventually(() => clonedConsole.text().includes(TEST_GUEST_READY_MARKER), { what: 'the guest to boot from the cloned volume', timeoutMs: 120_000, intervalMs: 200 });
  assert.equal(images.bytesServed('/tiny.qcow2'), served, 'the clone downloaded nothing');
});
