/**
 * Issue 8's end-to-end proof: a real `vireo server` process (API,
 * controllers and its own node agent), Debian's `prometheus` scraping its
 * `/metrics` over HTTPS with the cluster's CA and token as the job
 * `vireo-server`, with Vireo's rule file loaded. One guest writes to a disk
 * and sends traffic on its pod NIC; through Prometheus' HTTP API its vCPU
 * time, disk writes and transmitted bytes move, the recording rules record
 * (`node:kubevirt_vmi_phase:sum` has the node's running VMI) and every rule
 * evaluates without an error.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KObject } from '../../src/api/object.js';
import { ImageStore, TEST_GUEST_IMAGE, importTestGuest } from '../../src/agent/images/index.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { hasBinary } from '../../src/testing/binaries.js';
import { freePort, startServerProcess } from '../../src/testing/process.js';
import type { ServerProcess } from '../../src/testing/process.js';
import { startPrometheus } from '../../src/testing/prometheus.js';
import type { PrometheusInstance } from '../../src/testing/prometheus.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { skipWithoutQemu } from './vm-support.js';

const ruleFile = fileURLToPath(new URL('../../../monitoring/prometheus/vireo-rules.yaml', import.meta.url));
const skip = skipWithoutQemu !== false ? skipWithoutQemu : hasBinary('prometheus') ? false : 'prometheus is not installed (scripts/setup installs it)';
const root = mkdtempSync(join(tmpdir(), 'vireo-prometheus-e2e-'));
const serverDir = join(root, 'server');
const selector = 'namespace="default",name="worker"';
let server: ServerProcess | undefined;
let client: HttpClient | undefined;
let prometheus: PrometheusInstance | undefined;

/** The guest's work: writes to its data disk (vdb) and pings its gateway, every second. */
const workScript = [
  '#!/bin/sh',
  'gw=$(ip route | awk \'/^default/ {print $3; exit}\')',
  'i=0',
  'while true; do',
  '  i=$((i+1))',
  '  dd if=/dev/urandom of=/dev/vdb bs=64k count=16 seek=$((i % 32 * 16)) conv=fsync 2>/dev/null',
  '  ping -c 3 -s 1000 -W 1 "$gw" >/dev/null 2>&1',
  '  echo "work $i"',
  '  sleep 1',
  'done',
  '',
].join('\n');

function workerVm(): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'worker', namespace: 'default', labels: { 'app.kubernetes.io/name': 'worker' } },
    spec: {
      runStrategy: 'Always',
      template: {
        metadata: { labels: { 'app.kubernetes.io/name': 'worker' } },
        spec: {
          terminationGracePeriodSeconds: 0,
          domain: {
            devices: {
              autoattachGraphicsDevice: false,
              // root is vda, data vdb: the work script writes to vdb.
              disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'data', disk: { bus: 'virtio' } }, { name: 'cloudinit', disk: { bus: 'virtio' } }],
              interfaces: [{ name: 'default', masquerade: {} }],
            },
            // The test guest's smallest memory is 96Mi (less runs out in its initramfs).
            memory: { guest: '128Mi' },
            resources: {},
          },
          networks: [{ name: 'default', pod: {} }],
          volumes: [
            { name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } },
            { name: 'data', emptyDisk: { capacity: '64Mi' } },
            { name: 'cloudinit', cloudInitNoCloud: { userData: workScript } },
          ],
        },
      },
    },
  };
}

before(async () => {
  if (skip !== false) return;
  const port = await freePort();
  server = await startServerProcess({ dataDir: serverDir, port, timeoutMs: 60_000 });
  client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  await importTestGuest(new ImageStore(join(serverDir, 'images')));
  await client.create(resources.namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'kubevirt' } }).catch(() => undefined);
  await client.create(resources.kubeVirts, { apiVersion: 'kubevirt.io/v1', kind: 'KubeVirt', metadata: { name: 'kubevirt', namespace: 'kubevirt' }, spec: { configuration: { developerConfiguration: { useEmulation: true } } } });
  prometheus = await startPrometheus({
    files: { 'ca.crt': server.caCert },
    ruleFiles: [ruleFile],
    scrapeConfigs: [{
      job_name: 'vireo-server',
      scheme: 'https',
      metrics_path: '/metrics',
      tls_config: { ca_file: 'ca.crt' },
      authorization: { type: 'Bearer', credentials: server.token },
      static_configs: [{ targets: [`127.0.0.1:${port}`] }],
    }],
  });
});

after(async () => {
  await client?.delete(resources.virtualMachines, 'default', 'worker').catch(() => undefined);
  await eventually(async () => (await client?.tryGet(resources.virtualMachineInstances, 'default', 'worker')) === undefined, { timeoutMs: 60_000, what: 'the VMI to go' }).catch(() => undefined);
  await prometheus?.stop();
  server?.child.kill('SIGTERM');
  await server?.exited;
  client?.close();
  for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** The value of a one-sample query, or undefined while it has none. */
async function single(expr: string): Promise<number | undefined> {
  const samples = await prometheus?.query(expr);
  return samples?.[0]?.value;
}

test('Prometheus scrapes a vireo server, sees a working guest\'s CPU, disk and network move, and evaluates the rules', { skip, timeout: 240_000 }, async () => {
  const p = prometheus;
  const c = client;
  assert.ok(p !== undefined && c !== undefined);
  await eventually(async () => {
    const answer = await p.api('targets');
    const [target] = (answer.data as { activeTargets: { health: string; lastError: string; labels: Record<string, string> }[] }).activeTargets;
    if (target?.health === 'up') return true;
    throw new Error(`target ${JSON.stringify(target)}`);
  }, { timeoutMs: 30_000, intervalMs: 500, what: 'the vireo-server target to be up' });

  await c.create(resources.virtualMachines, workerVm());
  const vmi = await eventually(async () => {
    const found = await c.tryGet(resources.virtualMachineInstances, 'default', 'worker');
    return (found?.status as { phase?: string } | undefined)?.phase === 'Running' ? found : undefined;
  }, { timeoutMs: 120_000, intervalMs: 500, what: 'the VMI to run' });
  const node = (vmi.status as { nodeName?: string }).nodeName ?? '';
  assert.notEqual(node, '');

  // Each moves while the guest works: an increase over the run (a
  // counter that stood still, or a series that never came, fails).
  for (const expr of [
    `sum(rate(kubevirt_vmi_vcpu_seconds_total{${selector}}[1m]))`,
    `sum(increase(kubevirt_vmi_storage_write_traffic_bytes_total{${selector}}[5m]))`,
    `sum(increase(kubevirt_vmi_network_transmit_bytes_total{${selector}}[5m]))`,
  ]) {
    await eventually(async () => ((await single(expr)) ?? 0) > 0, { timeoutMs: 90_000, intervalMs: 1000, what: `${expr} > 0` });
  }
  const series = await p.query(`kubevirt_vmi_network_transmit_bytes_total{${selector}}`);
  assert.equal(series[0]?.metric.node, node, 'per-VMI series carry the node');
  assert.equal(series[0]?.metric.kubernetes_vmi_label_app_kubernetes_io_name, 'worker', 'per-VMI series carry the VMI labels');

  const running = await eventually(async () => {
    const samples = await p.query('node:kubevirt_vmi_phase:sum{phase="running"}');
    return samples.find((s) => s.metric.node === node);
  }, { timeoutMs: 30_000, intervalMs: 500, what: `node:kubevirt_vmi_phase:sum to have a running VMI on ${node}` });
  assert.ok(running.value >= 1);
  await eventually(async () => ((await single(`vmi:kubevirt_vmi_vcpu:count{${selector}}`)) ?? 0) >= 1, { timeoutMs: 30_000, intervalMs: 500, what: 'vmi:kubevirt_vmi_vcpu:count' });
  // The guest's balloon statistics feed the memory rules: part of its memory is usable, not all.
  const headroom = await eventually(async () => single(`vmi:kubevirt_vmi_memory_headroom_ratio:sum{${selector}}`), { timeoutMs: 30_000, intervalMs: 500, what: 'vmi:kubevirt_vmi_memory_headroom_ratio:sum' });
  assert.ok(headroom > 0 && headroom < 1, `headroom ratio ${headroom}`);

  // Every rule has been evaluated, none with an error.
  await eventually(async () => {
    const answer = await p.api('rules');
    const rules = (answer.data as { groups: { rules: { name: string; health: string; lastError?: string }[] }[] }).groups.flatMap((g) => g.rules);
    const bad = rules.filter((rule) => rule.health !== 'ok' || (rule.lastError ?? '') !== '');
    if (rules.length > 0 && bad.length === 0) return true;
    throw new Error(`rules not ok: ${JSON.stringify(bad.slice(0, 5))}`);
  }, { timeoutMs: 30_000, intervalMs: 500, what: 'every rule to evaluate' });
});
