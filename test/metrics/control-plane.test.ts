/**
 * The server's `/metrics`: kube-apiserver's, client-go's, controller-runtime's
 * and KubeVirt's virt-controller families with their names, types and label
 * sets (tables below, from those projects' catalogues), parsed from real
 * scrapes of an in-process server with a VM and its VMI; the counts move
 * with real kubectl requests; the metrics token reads metrics and nothing
 * else (real kubectl gets Forbidden), on the server and on an agent
 * endpoint; and `vireo metrics scrape-config` is accepted by `promtool` and
 * drives a real `prometheus` on loopback that scrapes the server.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startPrometheus } from '../../src/testing/prometheus.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpClient, resources } from '../../src/client/index.js';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { kubectl } from '../../src/testing/kubectl.js';
import { eventually } from '../../src/testing/wait.js';
import { hasBinary } from '../../src/testing/binaries.js';
import { AgentEndpoint, MetricsAccess } from '../../src/agent/index.js';
import { agentCertificateAnnotation } from '../../src/agent/endpoint-api.js';
import { ensureSelfSigned } from '../../src/cli/pki.js';
import { silentLogger } from '../../src/log/logger.js';
import { nodeManifest, vmManifest } from '../controllers/support.js';
import { Registry } from 'prom-client';
import { MigrationController } from '../../src/controllers/migration/index.js';
import { VirtControllerMetrics } from '../../src/controllers/metrics/index.js';
import { ScriptedMigrationAgents } from '../../src/testing/migration-agents.js';
import { testCertificateIssuer } from '../../src/testing/server.js';
import { stringAt } from '../../src/api/kinds/read.js';

/** One family of a scrape: its type, help and samples. */
interface Family {
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/** Prometheus text format 0.0.4, parsed strictly enough to catch a malformed line. */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const family = (name: string): Family => {
    let found = families.get(name);
    if (found === undefined) { found = { type: '', help: '', samples: [] }; families.set(name, found); }
    return found;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      const f = family(name);
      if (kind === 'TYPE') { assert.equal(f.type, '', `# TYPE ${name} appears twice`); f.type = rest; } else { assert.equal(f.help, '', `# HELP ${name} appears twice`); f.help = rest; }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample !== null, `not a sample line: ${line}`);
    const [, name = '', labelText = '', value = ''] = sample;
    const labels: Record<string, string> = {};
    for (const m of labelText.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] ?? ''] = m[2] ?? '';
    const base = [...families.keys()].find((f) => name === f || (families.get(f)?.type === 'histogram' && [`${f}_bucket`, `${f}_sum`, `${f}_count`].includes(name)));
    assert.ok(base !== undefined, `sample ${name} has no # TYPE before it`);
    family(base).samples.push({ name, labels, value: Number(value) });
  }
  return families;
}

/**
 * The catalogue: name → type and label set (histogram buckets add `le`).
 * From kube-apiserver, client-go's workqueue, controller-runtime, and
 * KubeVirt's docs/observability/metrics.md and virt-controller collectors.
 */
const catalogue: Record<string, { type: string; labels: string[] }> = {
  apiserver_request_total: { type: 'counter', labels: ['verb', 'dry_run', 'group', 'version', 'resource', 'subresource', 'scope', 'component', 'code'] },
  apiserver_request_duration_seconds: { type: 'histogram', labels: ['verb', 'dry_run', 'group', 'version', 'resource', 'subresource', 'scope', 'component'] },
  apiserver_longrunning_requests: { type: 'gauge', labels: ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component'] },
  apiserver_current_inflight_requests: { type: 'gauge', labels: ['request_kind'] },
  workqueue_depth: { type: 'gauge', labels: ['name'] },
  workqueue_adds_total: { type: 'counter', labels: ['name'] },
  workqueue_queue_duration_seconds: { type: 'histogram', labels: ['name'] },
  workqueue_work_duration_seconds: { type: 'histogram', labels: ['name'] },
  workqueue_retries_total: { type: 'counter', labels: ['name'] },
  controller_runtime_reconcile_total: { type: 'counter', labels: ['controller', 'result'] },
  controller_runtime_reconcile_errors_total: { type: 'counter', labels: ['controller'] },
  controller_runtime_reconcile_time_seconds: { type: 'histogram', labels: ['controller'] },
  kubevirt_vmi_info: { type: 'gauge', labels: ['node', 'namespace', 'name', 'phase', 'os', 'workload', 'flavor', 'instance_type', 'preference', 'guest_os_kernel_release', 'guest_os_machine', 'guest_os_arch', 'guest_os_name', 'guest_os_version_id', 'evictable', 'outdated', 'vmi_pod'] },
  kubevirt_vmi_non_evictable: { type: 'gauge', labels: ['node', 'namespace', 'name'] },
  kubevirt_vmi_migration_start_time_seconds: { type: 'gauge', labels: ['node', 'namespace', 'name', 'migration_name'] },
  kubevirt_vmi_migration_end_time_seconds: { type: 'gauge', labels: ['node', 'namespace', 'name', 'migration_name', 'status'] },
  kubevirt_vmi_number_of_outdated: { type: 'gauge', labels: [] },
  kubevirt_vm_info: { type: 'gauge', labels: ['name', 'namespace', 'os', 'workload', 'flavor', 'machine_type', 'instance_type', 'preference', 'status', 'status_group'] },
  kubevirt_vmi_migrations_in_pending_phase: { type: 'gauge', labels: [] },
  kubevirt_vmi_migrations_in_scheduling_phase: { type: 'gauge', labels: [] },
  kubevirt_vmi_migrations_in_unset_phase: { type: 'gauge', labels: [] },
  kubevirt_vmi_migrations_in_running_phase: { type: 'gauge', labels: [] },
  kubevirt_vmi_migration_succeeded: { type: 'gauge', labels: ['vmi', 'vmim', 'namespace'] },
  kubevirt_vmi_migration_failed: { type: 'gauge', labels: ['vmi', 'vmim', 'namespace'] },
  kubevirt_vmi_phase_transition_time_seconds: { type: 'histogram', labels: ['phase', 'last_phase'] },
  kubevirt_vmi_phase_transition_time_from_creation_seconds: { type: 'histogram', labels: ['phase'] },
  kubevirt_vmi_migration_phase_transition_time_from_creation_seconds: { type: 'histogram', labels: ['phase'] },
  kubevirt_vmi_phase_transition_time_from_deletion_seconds: { type: 'histogram', labels: ['phase'] },
  kubevirt_vmi_status_addresses: { type: 'gauge', labels: ['node', 'namespace', 'name', 'vnic_name', 'interface_name', 'address', 'type'] },
  kubevirt_vmi_vnic_info: { type: 'gauge', labels: ['name', 'namespace', 'vnic_name', 'binding_type', 'network', 'binding_name', 'model'] },
  kubevirt_vm_vnic_info: { type: 'gauge', labels: ['name', 'namespace', 'vnic_name', 'binding_type', 'network', 'binding_name', 'model'] },
  kubevirt_vm_resource_requests: { type: 'gauge', labels: ['name', 'namespace', 'resource', 'unit', 'source'] },
  kubevirt_vm_resource_limits: { type: 'gauge', labels: ['name', 'namespace', 'resource', 'unit'] },
  kubevirt_vm_disk_allocated_size_bytes: { type: 'gauge', labels: ['name', 'namespace', 'persistentvolumeclaim', 'volume_mode', 'device'] },
  // Vireo's addition (issue 7), in KubeVirt's style.
  kubevirt_vmi_migration_downtime_seconds: { type: 'gauge', labels: ['namespace', 'vmi', 'vmim'] },
  kubevirt_virt_controller_leading_status: { type: 'gauge', labels: [] },
  kubevirt_virt_controller_ready_status: { type: 'gauge', labels: [] },
  kubevirt_virt_api_ready_status: { type: 'gauge', labels: [] },
};

/** What the fake-free node hook returns: the contract is "append this process's agent text". */
const nodeText = '# HELP vireo_test_node_family A family the node agent hook returned.\n# TYPE vireo_test_node_family gauge\nvireo_test_node_family{node="test-node"} 1\n';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function vireo(args: string[], kubeconfig: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/nonexistent', KUBECONFIG: kubeconfig }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

let server: TestServer;
let client: HttpClient;
/** What the server's node metrics hook does; a test makes it fail. */
let nodeHook = (): Promise<string> => Promise.resolve(nodeText);
let work: string;

before(async () => {
  server = await startTestServer({ controllers: true, nodeMetrics: () => nodeHook() });
  client = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert, userAgent: 'metrics-test' });
  work = mkdtempSync(join(tmpdir(), 'vireo-metrics-test-'));
});
after(async () => {
  client.close();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
});

async function scrape(token?: string): Promise<Map<string, Family>> {
  const res = await server.fetch('GET', '/metrics', token === undefined ? {} : { token });
  assert.equal(res.status, 200, res.body);
  assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(res.body);
}

function total(families: Map<string, Family>, labels: Record<string, string>): number {
  return (families.get('apiserver_request_total')?.samples ?? [])
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

test('every family carries its catalogue name, type and label set; a VM and its VMI are in kubevirt_vm_info and kubevirt_vmi_info; the node hook is appended', async () => {
  await client.create(resources.virtualMachines, { ...vmManifest('watched'), metadata: { name: 'watched', namespace: 'default', annotations: {} } });
  const families = await eventually(async () => {
    const scraped = await scrape();
    const vmi = scraped.get('kubevirt_vmi_info')?.samples.find((s) => s.labels.name === 'watched');
    const reconciled = scraped.get('controller_runtime_reconcile_total')?.samples.some((s) => s.labels.controller === 'virtualmachine-controller' && s.value > 0);
    return vmi !== undefined && reconciled === true ? scraped : undefined;
  }, { what: 'the VM controller reconciled the VM and its VMI shows in kubevirt_vmi_info' });
  for (const [name, want] of Object.entries(catalogue)) {
    const family = families.get(name);
    assert.ok(family !== undefined, `family ${name} is served`);
    assert.equal(family.type, want.type, `${name} is a ${want.type}`);
    assert.notEqual(family.help, '', `${name} has a # HELP`);
    for (const sample of family.samples) {
      const expected = sample.name.endsWith('_bucket') && want.type === 'histogram' ? [...want.labels, 'le'] : want.labels;
      assert.deepEqual(Object.keys(sample.labels).sort(), [...expected].sort(), `${sample.name} labels`);
    }
  }
  const vm = families.get('kubevirt_vm_info')?.samples.find((s) => s.labels.name === 'watched');
  assert.equal(vm?.labels.namespace, 'default');
  assert.ok(vm?.labels.status_group !== '' && vm?.labels.status_group !== undefined);
  const vmi = families.get('kubevirt_vmi_info')?.samples.find((s) => s.labels.name === 'watched');
  assert.equal(vmi?.value, 1);
  assert.equal(vmi?.labels.evictable, 'true');
  assert.ok(families.get('workqueue_adds_total')?.samples.some((s) => s.labels.name === 'virtualmachine-controller' && s.value > 0), 'the VM controller queue counted adds');
  assert.equal(families.get('kubevirt_virt_controller_leading_status')?.samples[0]?.value, 1);
  assert.equal(families.get('vireo_test_node_family')?.samples[0]?.labels.node, 'test-node', 'the node agent text follows the control plane families');
});

test('a failing node agent hook leaves its families out of that scrape, not the control plane\'s; /metrics is read-only', async () => {
  nodeHook = () => Promise.reject(new Error('the agent is gone'));
  try {
    const families = await scrape();
    assert.ok(families.has('apiserver_request_total'));
    assert.equal(families.get('vireo_test_node_family'), undefined);
  } finally {
    nodeHook = () => Promise.resolve(nodeText);
  }
  const posted = await server.fetch('POST', '/metrics', { body: '{}' });
  assert.equal(posted.status, 405);
  assert.match(posted.body, /read-only/);
});

test('request counts move with real kubectl requests, with kube\'s verbs, scopes and codes', async () => {
  const before = await scrape();
  const list = { verb: 'LIST', group: 'kubevirt.io', resource: 'virtualmachineinstances', scope: 'namespace', code: '200' };
  const missing = { verb: 'GET', group: 'kubevirt.io', resource: 'virtualmachineinstances', scope: 'resource', code: '404' };
  const listed = await kubectl(['get', 'vmis', '-n', 'default'], { kubeconfig: server.kubeconfig });
  assert.equal(listed.code, 0, listed.stderr);
  const got = await kubectl(['get', 'vmi', 'no-such-vmi', '-n', 'default'], { kubeconfig: server.kubeconfig });
  assert.notEqual(got.code, 0);
  const afterwards = await scrape();
  assert.ok(total(afterwards, list) >= total(before, list) + 1, 'kubectl get vmis is a LIST');
  assert.ok(total(afterwards, missing) >= total(before, missing) + 1, 'kubectl get vmi NAME of a missing one is a GET answered 404');
  const histogram = afterwards.get('apiserver_request_duration_seconds')?.samples.find((s) => s.name.endsWith('_count') && s.labels.verb === 'LIST' && s.labels.resource === 'virtualmachineinstances' && s.labels.scope === 'namespace');
  assert.ok((histogram?.value ?? 0) >= 1, 'the LIST is in the duration histogram');
  assert.ok(!afterwards.get('apiserver_request_duration_seconds')?.samples.some((s) => s.labels.verb === 'WATCH'), 'watches are long-running: not in the duration histogram');
  assert.ok(afterwards.get('apiserver_longrunning_requests')?.samples.some((s) => s.labels.verb === 'WATCH' && s.value > 0), 'the informers\' open watches are long-running requests');
});

let metricsToken = '';

test('the metrics token reads /metrics and nothing else: real kubectl with it gets Forbidden for a VMI and a Secret; deleting it revokes it', async () => {
  const created = await vireo(['token', 'create', '--metrics'], server.kubeconfig);
  assert.equal(created.code, 0, created.stderr);
  metricsToken = created.stdout.trim();
  assert.match(metricsToken, /^vireo-metrics\.[0-9a-f]{6}\.[0-9a-f]{64}$/);
  assert.ok((await scrape(metricsToken)).has('apiserver_request_total'));
  const raw = await kubectl(['get', '--raw', '/metrics', '--token', metricsToken], { kubeconfig: server.kubeconfig });
  assert.equal(raw.code, 0, raw.stderr);
  assert.match(raw.stdout, /# TYPE apiserver_request_total counter/);
  const vmi = await kubectl(['get', 'vmi', 'watched', '-n', 'default', '--token', metricsToken], { kubeconfig: server.kubeconfig });
  assert.notEqual(vmi.code, 0);
  assert.match(vmi.stderr, /Forbidden.*metrics token.*reads only GET \/metrics/);
  const secret = await kubectl(['get', 'secrets', '-n', 'kube-system', '--token', metricsToken], { kubeconfig: server.kubeconfig });
  assert.notEqual(secret.code, 0);
  assert.match(secret.stderr, /Forbidden/);
  const proxied = await server.fetch('GET', '/api/v1/nodes/no-such-node/proxy/metrics', { token: metricsToken });
  assert.equal(proxied.status, 404, `the node proxy's metrics are the token's to read: an unknown node is a 404, not a 403 (${proxied.body})`);
  const write = await server.fetch('POST', '/api/v1/namespaces/default/configmaps', { token: metricsToken, body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } }) });
  assert.equal(write.status, 403);
  const listed = await vireo(['token', 'list'], server.kubeconfig);
  assert.match(listed.stdout, new RegExp(`vireo-metrics\\.${metricsToken.split('.')[1] ?? ''}\\.…\\s+<forever>\\s+<never>\\s+metrics`));
  // A second token to revoke, so the first stays for the agent and Prometheus tests.
  const other = (await vireo(['token', 'create', '--metrics'], server.kubeconfig)).stdout.trim();
  assert.equal((await server.fetch('GET', '/metrics', { token: other })).status, 200);
  const deleted = await vireo(['token', 'delete', other], server.kubeconfig);
  assert.equal(deleted.code, 0, deleted.stderr);
  const revoked = await server.fetch('GET', '/metrics', { token: other });
  assert.equal(revoked.status, 401);
  assert.match(revoked.body, /was revoked/);
});

let endpoint: AgentEndpoint | undefined;
let agentPort = 0;
let agentCert = '';

test('an agent endpoint takes the metrics token for /metrics only, asking the server\'s TokenReview', async () => {
  const tls = await ensureSelfSigned(work, 'agent', 'metrics-node');
  agentCert = tls.cert;
  // A joined agent: it knows only the cluster token's SHA-256, and reviews the rest with its own client.
  const { createHash } = await import('node:crypto');
  endpoint = new AgentEndpoint({ token: { sha256: createHash('sha256').update(server.token).digest('hex') }, tls, logger: silentLogger, metricsAccess: new MetricsAccess(client) });
  agentPort = (await endpoint.listen('127.0.0.1', 0)).port;
  const get = async (path: string, token: string): Promise<number> => {
    const { request } = await import('node:https');
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: agentPort, path, method: 'GET', headers: { authorization: `Bearer ${token}` }, ca: tls.cert, servername: 'metrics-node' }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
      req.on('error', reject);
      req.end();
    });
  };
  const withMetricsToken = await get('/metrics', metricsToken);
  assert.equal(withMetricsToken, 503, 'the metrics token passes the endpoint\'s check; the /metrics route then answers that no agent is served yet');
  assert.equal(await get('/v1/namespaces/default/virtualmachineinstances/watched/consolelog', metricsToken), 401, 'and nothing else');
  assert.equal(await get('/metrics', 'not-a-token'), 401);
  assert.equal(await get('/metrics', server.componentToken), 403, 'a token the server knows but that is no metrics reader');
});

test('vireo metrics scrape-config passes promtool check config and drives a real prometheus that scrapes the server', { skip: !hasBinary('prometheus') || !hasBinary('promtool') ? 'prometheus/promtool are not installed (scripts/setup)' : false }, async (t) => {
  // The agent endpoint above, published on a Node as a vireo agent publishes it.
  await client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'metrics-node', annotations: { [agentCertificateAnnotation]: agentCert } } });
  await client.patch(resources.nodes, undefined, 'metrics-node', 'merge', { status: { addresses: [{ type: 'InternalIP', address: '127.0.0.1' }], daemonEndpoints: { kubeletEndpoint: { Port: agentPort } } } }, { subresource: 'status' });
  const dir = join(work, 'prometheus');
  const tokenFile = join(work, 'token');
  writeFileSync(tokenFile, `${metricsToken}\n`, { mode: 0o600 });
  const generated = await vireo(['metrics', 'scrape-config', '--dir', dir, '--token-file', tokenFile], server.kubeconfig);
  assert.equal(generated.code, 0, generated.stderr);
  assert.match(generated.stdout, /job_name: vireo-server/);
  assert.match(generated.stdout, /job_name: vireo-agent-metrics-node/);
  assert.equal(readFileSync(join(dir, 'agent-metrics-node.crt'), 'utf8'), agentCert);
  const config = join(work, 'prometheus.yml');
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n${generated.stdout}`);
  const check = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile('promtool', ['check', 'config', config], (err, stdout, stderr) => { resolve({ code: err === null ? 0 : 1, out: stdout + stderr }); });
  });
  assert.equal(check.code, 0, check.out);
  // The generated scrape_configs, run by the test harness's Prometheus (1 s scrapes).
  const prometheus = await startPrometheus({ scrapeConfigs: (parse(generated.stdout) as { scrape_configs: Record<string, unknown>[] }).scrape_configs });
  t.after(() => prometheus.stop());
  type Target = { labels: Record<string, string>; health: string; lastError: string };
  const targets = await eventually(async () => {
    const answer = await prometheus.api('targets').catch(() => undefined);
    const active = (answer?.data as { activeTargets?: Target[] } | undefined)?.activeTargets ?? [];
    return active.length === 2 && active.every((a) => a.health !== 'unknown') ? active : undefined;
  }, { timeoutMs: 30_000, what: `prometheus scraped both targets (output: ${prometheus.output()})` });
  const serverTarget = targets.find((a) => a.labels.job === 'vireo-server');
  assert.equal(serverTarget?.health, 'up', serverTarget?.lastError);
  const agentTarget = targets.find((a) => a.labels.job === 'vireo-agent');
  assert.equal(agentTarget?.labels.node, 'metrics-node');
  // TLS (the pinned certificate, its node name) and the token pass: the endpoint serves no agent in this test, so its /metrics route answers 503 (still starting) after them, not 401/403 or a TLS error.
  assert.match(agentTarget?.lastError ?? '', /HTTP status 503/, `agent target: ${agentTarget?.health ?? '?'} ${agentTarget?.lastError ?? ''}`);
  const result = await eventually(async () => {
    const value = (await prometheus.query('sum(apiserver_request_total{job="vireo-server"})'))[0]?.value ?? NaN;
    return value > 0 ? value : undefined;
  }, { timeoutMs: 15_000, what: 'apiserver_request_total queried through prometheus' });
  assert.ok(result > 0);
});

test('vireo metrics scrape-config without --token-file makes a metrics token, stored 0600, that reads /metrics', async () => {
  const dir = join(work, 'fresh');
  const generated = await vireo(['metrics', 'scrape-config', '--dir', dir], server.kubeconfig);
  assert.equal(generated.code, 0, generated.stderr);
  const tokenFile = join(dir, 'metrics-token');
  assert.match(generated.stdout, new RegExp(`credentials_file: ${tokenFile}`));
  assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
  assert.equal((await server.fetch('GET', '/metrics', { token: readFileSync(tokenFile, 'utf8').trim() })).status, 200);
  const refused = await vireo(['metrics', 'scrape-config'], server.kubeconfig);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /needs --dir DIR/);
});

test('the object families go with the singletons (only the leading server reports them); request families stay', async () => {
  await endpoint?.close();
  await server.plane.singletons.stop();
  const families = await scrape();
  assert.equal(families.get('kubevirt_vmi_info'), undefined);
  assert.equal(families.get('kubevirt_vm_info'), undefined);
  assert.ok(families.has('apiserver_request_total'));
});

test('a succeeded migration is in kubevirt_vmi_migration_succeeded, its start and end times, and its downtime in kubevirt_vmi_migration_downtime_seconds', async (t) => {
  // A server of its own, with the migration controller driving scripted agents (no guest): the first server's controllers would race it.
  const other = await startTestServer();
  const components = new HttpClient({ server: other.url, token: other.componentToken, caCert: other.pki.caCert, userAgent: 'metrics-test' });
  const agents = new ScriptedMigrationAgents();
  const controller = new MigrationController(components, agents, silentLogger, await testCertificateIssuer());
  const registry = new Registry();
  const metrics = new VirtControllerMetrics(components, registry, silentLogger);
  t.after(async () => {
    await metrics.stop();
    await controller.stop();
    components.close();
    await other.stop();
  });
  for (const [i, name] of ['node-a', 'node-b'].entries()) {
    const node = nodeManifest(name, { cpu: '8', memory: '16Gi' });
    (node.status as Record<string, unknown>).addresses = [{ type: 'InternalIP', address: `10.9.0.${i + 1}` }];
    await components.create(resources.nodes, node);
  }
  await controller.start();
  await metrics.start();
  await components.create(resources.virtualMachineInstances, {
    apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'mover', namespace: 'default' },
    spec: { domain: { devices: { autoattachPodInterface: false, disks: [{ name: 'root', disk: { bus: 'virtio' } }], interfaces: [] }, memory: { guest: '128Mi' } }, networks: [], volumes: [{ name: 'root', containerDisk: { image: 'localhost/vireo/tiny:latest' } }] },
  });
  await eventually(() => metrics.phaseSeen('default/mover'), { what: 'the metrics informer saw the new VMI' });
  await components.patch(resources.virtualMachineInstances, 'default', 'mover', 'merge', { metadata: { labels: { 'kubevirt.io/nodeName': 'node-a' } }, status: { phase: 'Running', nodeName: 'node-a', phaseTransitionTimestamps: [{ phase: 'Running', phaseTransitionTimestamp: new Date().toISOString() }] } });
  const migration = await components.create(resources.virtualMachineInstanceMigrations, { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstanceMigration', metadata: { name: 'mover-move', namespace: 'default' }, spec: { vmiName: 'mover' } });
  const phase = async (): Promise<string | undefined> => stringAt(await components.tryGet(resources.virtualMachineInstanceMigrations, 'default', 'mover-move'), 'status', 'phase');
  await eventually(async () => (await phase()) === 'Running', { what: 'the migration runs', timeoutMs: 20_000 });
  const running = parseExposition(await registry.metrics());
  assert.equal(running.get('kubevirt_vmi_migrations_in_running_phase')?.samples[0]?.value, 1);
  agents.setSource(migration.metadata.uid ?? '', { state: 'completed', downtimeMs: 37, totalTimeMs: 900 });
  await eventually(async () => (await phase()) === 'Succeeded', { what: 'the migration succeeds', timeoutMs: 20_000 });
  const done = await eventually(async () => {
    const families = parseExposition(await registry.metrics());
    return families.get('kubevirt_vmi_migration_end_time_seconds')?.samples.length === 1 && families.get('kubevirt_vmi_migration_downtime_seconds')?.samples.length === 1 ? families : undefined;
  }, { what: 'the informers saw the migration end' });
  assert.deepEqual(done.get('kubevirt_vmi_migration_downtime_seconds')?.samples[0], { name: 'kubevirt_vmi_migration_downtime_seconds', labels: { namespace: 'default', vmi: 'mover', vmim: 'mover-move' }, value: 0.037 });
  assert.deepEqual(done.get('kubevirt_vmi_migration_succeeded')?.samples[0]?.labels, { vmi: 'mover', vmim: 'mover-move', namespace: 'default' });
  const end = done.get('kubevirt_vmi_migration_end_time_seconds')?.samples[0];
  assert.equal(end?.labels.migration_name, 'mover-move');
  assert.equal(end?.labels.status, 'succeeded');
  const start = done.get('kubevirt_vmi_migration_start_time_seconds')?.samples[0]?.value ?? Number.NaN;
  assert.ok(start <= (end?.value ?? 0) && Math.abs(start - Date.now() / 1000) < 120, `start ${start} end ${end?.value ?? '?'}`);
  assert.equal(done.get('kubevirt_vmi_migrations_in_running_phase')?.samples[0]?.value, 0);
  const transition = done.get('kubevirt_vmi_phase_transition_time_from_creation_seconds')?.samples.find((s) => s.name.endsWith('_count') && s.labels.phase === 'Running');
  assert.equal(transition?.value, 1, 'the VMI\'s move to Running is in the phase transition histogram');
  const moved = done.get('kubevirt_vmi_migration_phase_transition_time_from_creation_seconds')?.samples.find((s) => s.name.endsWith('_count') && s.labels.phase === 'Succeeded');
  assert.equal(moved?.value, 1, 'the migration\'s move to Succeeded is in its phase transition histogram');
});

