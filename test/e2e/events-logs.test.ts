/**
 * What users see of a VM's life, through a real `vireo server` process and
 * the real kubectl: the core/v1 Events the VM controller, the scheduler and
 * the node agent record (KubeVirt's reasons, types and involved objects, a
 * repeated one counted), and the server's stderr, every line a JSON record
 * naming its component and, when it is about a VM or VMI, the object.
 * `--log-level warn` drops the info records. One guest boots, twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KObject } from '../../src/api/object.js';
import { ImageStore, TEST_GUEST_IMAGE, importTestGuest } from '../../src/agent/images/index.js';
import { HttpClient } from '../../src/client/index.js';
import { kubectl } from '../../src/testing/kubectl.js';
import type { KubectlResult } from '../../src/testing/kubectl.js';
import { freePort, startServerProcess } from '../../src/testing/process.js';
import type { ServerProcess } from '../../src/testing/process.js';
import { eventually } from '../../src/testing/wait.js';
import { qemuPidsUnder } from '../agent/support.js';
import { phaseOf, skipWithoutQemu, vmManifest, vmis, vms } from './vm-support.js';

/** Generous: TCG guests on two cores shared with other test runs. */
const bootMs = 120_000;
const settleMs = 60_000;

/** The parts of a core/v1 Event the assertions read. */
interface SeenEvent {
  reason: string;
  type: string;
  count: number;
  message: string;
  involvedObject: { kind?: string; name?: string; namespace?: string; uid?: string };
  source: { component?: string };
}

function ok(result: KubectlResult, what: string): string {
  assert.equal(result.code, 0, `${what} failed: ${result.stderr}`);
  return result.stdout;
}

async function eventsOf(kubeconfig: string): Promise<SeenEvent[]> {
  const list = JSON.parse(ok(await kubectl(['get', 'events', '-n', 'default', '-o', 'json'], { kubeconfig }), 'kubectl get events')) as { items: SeenEvent[] };
  return list.items;
}

/** One parsed stderr line; the test fails on a line that is not a JSON object. */
function records(stderr: string): Record<string, unknown>[] {
  return stderr.split('\n').filter((line) => line !== '').map((line) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      assert.fail(`a stderr line is not JSON: ${line}`);
    }
    assert.ok(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed), `a stderr line is not a JSON object: ${line}`);
    return parsed as Record<string, unknown>;
  });
}

async function stopServer(server: ServerProcess | undefined): Promise<void> {
  if (server === undefined || server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  await server.exited;
}

test('a VM through create, Running, stop, start and delete: its Events in kubectl, its JSON logs naming it; --log-level warn drops info', { skip: skipWithoutQemu, timeout: 400_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vireo-events-'));
  const dataDir = join(root, 'server');
  const started: { server?: ServerProcess; client?: HttpClient } = {};
  t.after(async () => {
    started.client?.close();
    await stopServer(started.server);
    for (const pid of qemuPidsUnder(root)) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });
  // The server's own agent keeps its images in the data directory: the guest is there before it starts.
  await importTestGuest(new ImageStore(join(dataDir, 'images')));
  const port = await freePort();
  const server = await startServerProcess({ dataDir, port, logLevel: 'debug', nodeName: 'events-node', timeoutMs: 60_000 });
  started.server = server;
  const client = new HttpClient({ server: server.url, token: server.token, caCert: server.caCert });
  started.client = client;
  const kc = { kubeconfig: server.kubeconfig };

  const manifest = vmManifest('diary', { runStrategy: 'Always', image: TEST_GUEST_IMAGE, graceSeconds: 0, memory: '128Mi' });
  ok(await kubectl(['create', '-f', '-'], { ...kc, stdin: JSON.stringify(manifest) }), 'kubectl create vm');
  const vm = await client.get(vms, 'default', 'diary');
  const running = async (notUid?: string): Promise<KObject> => eventually(async () => {
    const vmi = await client.tryGet(vmis, 'default', 'diary');
    return vmi !== undefined && vmi.metadata.uid !== notUid && phaseOf(vmi) === 'Running' ? vmi : undefined;
  }, { what: 'VMI diary to run', timeoutMs: bootMs, intervalMs: 200 });
  const gone = async (): Promise<void> => {
    await eventually(async () => (await client.tryGet(vmis, 'default', 'diary')) === undefined, { what: 'VMI diary to be gone', timeoutMs: settleMs, intervalMs: 200 });
  };

  const first = await running();
  ok(await kubectl(['patch', 'vm', 'diary', '--type', 'merge', '-p', '{"spec":{"runStrategy":"Halted"}}'], kc), 'kubectl patch (stop)');
  await gone();
  ok(await kubectl(['patch', 'vm', 'diary', '--type', 'merge', '-p', '{"spec":{"runStrategy":"Always"}}'], kc), 'kubectl patch (start)');
  const second = await running(first.metadata.uid);
  ok(await kubectl(['delete', 'vm', 'diary', '--wait=true', '--timeout=60s'], kc), 'kubectl delete vm');
  await gone();

  // Events are written in the background: wait for the last ones to land.
  const want = (events: SeenEvent[], uid: string | undefined, reason: string): SeenEvent | undefined => events.find((e) => e.involvedObject.uid === uid && e.reason === reason);
  const events = await eventually(async () => {
    const all = await eventsOf(server.kubeconfig);
    const last = want(all, second.metadata.uid, 'Stopped');
    const created = want(all, vm.metadata.uid, 'SuccessfulCreate');
    return last !== undefined && created?.count === 2 ? all : undefined;
  }, { what: 'the Events of both VMIs, and the VM\'s SuccessfulCreate counted twice', timeoutMs: settleMs, intervalMs: 250 });
  const summary = events.map((e) => `${e.involvedObject.kind ?? ''}/${e.involvedObject.uid ?? ''} ${e.type} ${e.reason} x${e.count} (${e.source.component ?? ''}): ${e.message}`).join('\n');

  // The VM controller: one VMI created per start (the same message, so one Event counted twice), one deleted per stop.
  const createdVmi = want(events, vm.metadata.uid, 'SuccessfulCreate');
  assert.equal(createdVmi?.type, 'Normal', summary);
  assert.equal(createdVmi.count, 2, summary);
  assert.deepEqual({ kind: createdVmi.involvedObject.kind, name: createdVmi.involvedObject.name, namespace: createdVmi.involvedObject.namespace }, { kind: 'VirtualMachine', name: 'diary', namespace: 'default' });
  assert.equal(createdVmi.source.component, 'virtualmachine-controller', summary);
  const deletedVmi = events.filter((e) => e.involvedObject.uid === vm.metadata.uid && e.reason === 'SuccessfulDelete');
  assert.ok(deletedVmi.some((e) => e.type === 'Normal' && e.message.includes(first.metadata.uid ?? '-')), `the VM says it stopped the first VMI:\n${summary}`);

  // Each VMI: scheduled, defined and started on the node, then killed on deletion (no grace period), stopped as asked.
  for (const vmi of [first, second]) {
    const uid = vmi.metadata.uid;
    const scheduled = want(events, uid, 'Scheduled');
    assert.equal(scheduled?.type, 'Normal', summary);
    assert.match(scheduled.message, /Successfully assigned default\/diary to events-node/);
    assert.equal(scheduled.source.component, 'default-scheduler', summary);
    for (const reason of ['Created', 'Started', 'Deleted', 'Stopped']) {
      const event = want(events, uid, reason);
      assert.equal(event?.type, 'Normal', `VMI ${uid ?? ''} has a Normal ${reason} Event:\n${summary}`);
      assert.equal(event.count, 1, `VMI ${uid ?? ''} is told ${reason} once:\n${summary}`);
      assert.equal(event.involvedObject.kind, 'VirtualMachineInstance');
      assert.equal(event.involvedObject.name, 'diary');
      assert.equal(event.source.component, 'virt-handler', summary);
    }
    assert.ok(events.every((e) => e.involvedObject.uid !== uid || e.type === 'Normal'), `no Warning about VMI ${uid ?? ''}: killed on deletion, it did not crash:\n${summary}`);
  }

  // Logs: every stderr line a record with time, level and component; those about the VM or a VMI name it.
  const debugRecords = records(server.stderr());
  for (const record of debugRecords) {
    assert.equal(typeof record.time, 'string', `a record without time: ${JSON.stringify(record)}`);
    assert.ok(['debug', 'info', 'warn', 'error'].includes(String(record.level)), `a record without level: ${JSON.stringify(record)}`);
    assert.equal(typeof record.component, 'string', `a record without component: ${JSON.stringify(record)}`);
    if (record.kind === 'VirtualMachine' || record.kind === 'VirtualMachineInstance') {
      for (const field of ['namespace', 'name', 'uid']) assert.equal(typeof record[field], 'string', `a record about a ${record.kind} without ${field}: ${JSON.stringify(record)}`);
    }
  }
  const uids = new Set([vm.metadata.uid, first.metadata.uid, second.metadata.uid]);
  const about = (uid: string | undefined): Record<string, unknown>[] => debugRecords.filter((r) => r.uid === uid);
  for (const uid of uids) {
    for (const record of about(uid)) assert.deepEqual([record.namespace, record.name], ['default', 'diary'], `a record about ${uid ?? ''} names it: ${JSON.stringify(record)}`);
  }
  assert.ok(about(vm.metadata.uid).some((r) => r.kind === 'VirtualMachine'), 'the VM controller logs about the VM, naming it');
  for (const vmi of [first, second]) {
    const components = new Set(about(vmi.metadata.uid).map((r) => r.component));
    assert.ok(components.has('agent'), `the agent logs about VMI ${vmi.metadata.uid ?? ''}, naming it: ${[...components].join(', ')}`);
  }
  assert.ok(debugRecords.some((r) => r.level === 'debug') && debugRecords.some((r) => r.level === 'info'), '--log-level debug writes debug and info records');

  // The same server at --log-level warn: a few kubectl calls, no info or debug record.
  await stopServer(server);
  const quiet = await startServerProcess({ dataDir, port, logLevel: 'warn', nodeName: 'events-node', timeoutMs: 60_000 });
  started.server = quiet;
  ok(await kubectl(['create', 'configmap', 'quiet', '--from-literal=k=v'], kc), 'kubectl create configmap');
  ok(await kubectl(['get', 'vms,vmis,configmaps', '-A'], kc), 'kubectl get');
  ok(await kubectl(['delete', 'configmap', 'quiet'], kc), 'kubectl delete configmap');
  await stopServer(quiet);
  const quietRecords = records(quiet.stderr());
  assert.deepEqual(quietRecords.filter((r) => r.level === 'info' || r.level === 'debug'), [], '--log-level warn drops info and debug records');
  assert.ok(quietRecords.every((r) => typeof r.component === 'string'), 'warn records name their component too');
});
