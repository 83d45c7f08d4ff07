import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { stringAt } from '../../src/api/kinds/read.js';
import { HttpClient, resources } from '../../src/client/index.js';
import { createLogger, silentLogger } from '../../src/log/logger.js';
import { EventRecorder, EventTtlCleaner } from '../../src/controllers/events/index.js';
import type { Env } from './support.js';
import { eventsFor, startEnv } from './support.js';

let env: Env;

before(async () => {
  env = await startEnv();
});
after(async () => {
  await env.close();
});

async function subject(name: string): Promise<KObject> {
  return env.client.create(resources.configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } });
}

test('identical events become one Event with a count; a different message is another', async () => {
  const obj = await subject('counted');
  const recorder = new EventRecorder(env.client, 'test-controller', silentLogger, { instance: 'host-1' });
  for (let i = 0; i < 3; i++) recorder.record(obj, 'Normal', 'Started', 'VirtualMachineInstance started.');
  recorder.record(obj, 'Warning', 'FailedCreate', 'Error creating virtual machine instance: boom');
  await recorder.flush();
  recorder.record(obj, 'Normal', 'Started', 'VirtualMachineInstance started.');
  await recorder.flush();
  const events = await eventsFor(env.client, 'counted');
  assert.equal(events.length, 2);
  const started = events.find((e) => e.reason === 'Started');
  assert.equal(started?.count, 4);
  assert.equal(started?.type, 'Normal');
  assert.deepEqual(started?.involvedObject, { kind: 'ConfigMap', name: 'counted', apiVersion: 'v1', namespace: 'default', uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion });
  assert.deepEqual(started?.source, { component: 'test-controller', host: 'host-1' });
  assert.equal(started?.reportingComponent, 'test-controller');
  assert.ok((stringAt(started, 'lastTimestamp') ?? '') >= (stringAt(started, 'firstTimestamp') ?? ''));
  assert.equal(events.find((e) => e.reason === 'FailedCreate')?.type, 'Warning');
});

test('after the dedup window, the same event starts a new series', async () => {
  const obj = await subject('windowed');
  let now = Date.now();
  const recorder = new EventRecorder(env.client, 'test-controller', silentLogger, { now: () => now });
  recorder.record(obj, 'Normal', 'Stopped', 'The VirtualMachineInstance was shut down.');
  await recorder.flush();
  now += 11 * 60_000;
  recorder.record(obj, 'Normal', 'Stopped', 'The VirtualMachineInstance was shut down.');
  await recorder.flush();
  const events = await eventsFor(env.client, 'windowed');
  assert.deepEqual(events.map((e) => e.count), [1, 1]);
});

test('events of cluster-scoped objects go to the default namespace', async () => {
  const node = await env.client.create(resources.nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n-events' } });
  const recorder = new EventRecorder(env.client, 'test-controller', silentLogger);
  recorder.record(node, 'Normal', 'NodeReady', 'Node n-events status is now: NodeReady');
  await recorder.flush();
  const [event] = await eventsFor(env.client, 'n-events');
  assert.equal(event?.metadata.namespace, 'default');
  assert.equal(stringAt(event, 'involvedObject', 'namespace'), undefined);
});

test('recording never throws and never hangs when the API server cannot be reached', async () => {
  const lines: string[] = [];
  const broken = new HttpClient({ server: 'https://127.0.0.1:1', token: 'x', caCert: env.server.pki.caCert });
  const recorder = new EventRecorder(broken, 'test-controller', createLogger({ level: 'warn', write: (l) => lines.push(l) }));
  const obj = await subject('unreachable');
  for (let i = 0; i < 10; i++) recorder.record(obj, 'Normal', `Reason${i}`, 'message');
  await recorder.flush();
  broken.close();
  assert.ok(lines.some((l) => l.includes('could not write event') && l.includes('unreachable')), 'failures are logged with the object');
});

test('the TTL cleaner deletes events older than the TTL and keeps fresh ones', async () => {
  const obj = await subject('expiring');
  let now = Date.now();
  const recorder = new EventRecorder(env.client, 'test-controller', silentLogger, { now: () => now });
  recorder.record(obj, 'Normal', 'Old', 'long ago');
  now += 2 * 60 * 60_000;
  recorder.record(obj, 'Normal', 'New', 'just now');
  await recorder.flush();
  const cleaner = new EventTtlCleaner(env.client, silentLogger, { ttlMs: 60 * 60_000, now: () => now });
  assert.ok((await cleaner.sweep()) >= 1);
  assert.deepEqual((await eventsFor(env.client, 'expiring')).map((e) => e.reason), ['New']);
  await cleaner.stop();
});
