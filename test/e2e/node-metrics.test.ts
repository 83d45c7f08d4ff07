/**
 * A node's metrics through the API server's node proxy, read with the real
 * kubectl, and `vireo top vm`, on a running VM (a blank disk: its firmware
 * idles, no guest needs to boot); unknown nodes and VMs are refused with
 * what to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSamples } from '../../src/agent/metrics/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { blankImage, importBlankImage } from '../agent/support.js';
import { vireo } from '../subresources/support.js';
import { phaseOf, skipWithoutQemu, startVmEnv, vmManifest, vmis, vms } from './vm-support.js';

test('kubectl reads a node\'s per-VM metrics through the node proxy; vireo top vm shows the running VM', { skip: skipWithoutQemu }, async (t) => {
  const env = await startVmEnv(t);
  await importBlankImage(env.images);
  const { kubeconfig } = env.server;
  await env.client.create(vms, vmManifest('idler', { runStrategy: 'Always', image: blankImage, graceSeconds: 0 }));
  const vmi = await eventually(async () => {
    const found = await env.client.tryGet(vmis, 'default', 'idler');
    return phaseOf(found) === 'Running' ? found : undefined;
  }, { what: 'the VMI to run', timeoutMs: 60_000 });
  const node = (vmi.status as { nodeName: string }).nodeName;

  const families = ['kubevirt_vmi_cpu_usage_seconds_total', 'kubevirt_vmi_vcpu_seconds_total', 'kubevirt_vmi_memory_resident_bytes', 'kubevirt_vmi_storage_read_traffic_bytes_total'];
  let names = new Set<string>();
  // QEMU's answers come with the scrape after they arrived (a scrape waits for them only briefly).
  const samples = await eventually(async () => {
    const raw = await kubectl(['get', '--raw', `/api/v1/nodes/${node}/proxy/metrics`], { kubeconfig });
    assert.equal(raw.code, 0, raw.stderr);
    const mine = parseSamples(raw.stdout).filter((s) => s.labels.name === 'idler' && s.labels.namespace === 'default');
    names = new Set(mine.map((s) => s.name));
    return families.every((family) => names.has(family)) ? mine : undefined;
  }, { what: `the families ${families.join(', ')} in the node's metrics`, timeoutMs: 20_000, intervalMs: 250 });
  assert.ok(samples.every((s) => s.labels.node === node), 'every series names the node');
  // The VMI's labels are series labels: the scheduler's kubevirt.io/nodeName among them.
  assert.ok(samples.every((s) => s.labels.kubernetes_vmi_label_kubevirt_io_nodeName === node), 'VMI labels are series labels');

  const missing = await kubectl(['get', '--raw', '/api/v1/nodes/no-such-node/proxy/metrics'], { kubeconfig });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /not found/);

  const top = await vireo(['top', 'vm', 'idler', '--interval', '1'], { kubeconfig });
  assert.equal(top.code, 0, top.stderr);
  const [header, row] = top.stdout.trim().split('\n');
  assert.match(header ?? '', /^NAME\s+NODE\s+CPU\(cores\)\s+MEMORY\(bytes\)\s+DISK-READ\/s\s+DISK-WRITE\/s\s+NET-RX\/s\s+NET-TX\/s$/);
  const cells = (row ?? '').split(/\s+/);
  assert.equal(cells[0], 'idler');
  assert.equal(cells[1], node);
  assert.match(cells[2] ?? '', /^\d+m$/, `CPU in millicores: ${row ?? ''}`);
  assert.match(cells[3] ?? '', /^\d+(\.\d)?(Mi|Gi)$/, `QEMU's resident memory: ${row ?? ''}`);

  const all = await vireo(['top', 'vm', '-A'], { kubeconfig });
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /^NAMESPACE\s+NAME\s+NODE/);
  assert.match(all.stdout, /\ndefault\s+idler\s+/);

  const unknown = await vireo(['top', 'vm', 'nobody'], { kubeconfig });
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /VM nobody has no VirtualMachineInstance in namespace default: it is not running/);
});
