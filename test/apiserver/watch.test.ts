/**
 * Watch semantics over real HTTPS: resume from a resourceVersion, initial
 * events, selector transitions, DELETED at the delete's revision, 410 for
 * compacted history, bookmarks, WatchList, and Table watches.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import type { ClientRequest } from 'node:http';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';

let server: TestServer;
let agent: Agent;
before(async () => {
  server = await startTestServer();
  agent = new Agent({ ca: server.pki.caCert });
  await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'w' } });
});
after(async () => {
  agent.destroy();
  await server.stop();
});

interface Event {
  type: string;
  object: { kind: string; metadata: { name?: string; resourceVersion?: string; annotations?: Record<string, string> }; code?: number; columnDefinitions?: unknown; rows?: { cells: unknown[] }[] };
}

interface Watch {
  events: Event[];
  ended: Promise<void>;
  close(): void;
}

const cms = '/api/v1/namespaces/w/configmaps';

function openWatch(path: string, headers: Record<string, string> = {}): Promise<Watch> {
  return new Promise((resolve, reject) => {
    const events: Event[] = [];
    let endedResolve: () => void = () => undefined;
    const ended = new Promise<void>((r) => (endedResolve = r));
    const req: ClientRequest = request(`${server.url}${path}`, { agent, headers: { authorization: `Bearer ${server.token}`, ...headers } }, (res) => {
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          events.push(JSON.parse(buf.slice(0, nl)) as Event);
          buf = buf.slice(nl + 1);
        }
      });
      res.on('end', endedResolve);
      res.on('close', endedResolve);
      res.on('error', endedResolve);
      if (res.statusCode !== 200) reject(new Error(`watch answered ${res.statusCode ?? 0}`));
      else resolve({ events, ended, close: () => req.destroy() });
    });
    req.on('error', (err) => {
      endedResolve();
      reject(err);
    });
    req.end();
  });
}

async function post(path: string, body: unknown): Promise<{ metadata: { resourceVersion: string } }> {
  const res = await server.fetch('POST', path, { body: JSON.stringify(body) });
  assert.equal(res.status, 201, res.body);
  return res.json() as { metadata: { resourceVersion: string } };
}

async function mergePatch(path: string, body: unknown): Promise<void> {
  const res = await server.fetch('PATCH', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/merge-patch+json' } });
  assert.equal(res.status, 200, res.body);
}

const summary = (events: Event[]): string[] => events.map((e) => `${e.type} ${e.object.metadata.name ?? ''}`);

test('a watch from a resourceVersion replays every later change in order; DELETED carries the revision of the delete', async () => {
  const start = await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'seed' } });
  await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } });
  await mergePatch(`${cms}/a`, { data: { x: '1' } });
  const del = await server.fetch('DELETE', `${cms}/a`);
  assert.equal(del.status, 200);
  const watch = await openWatch(`${cms}?watch=true&resourceVersion=${start.metadata.resourceVersion}`);
  await eventually(() => watch.events.length >= 3, { what: 'three events' });
  assert.deepEqual(summary(watch.events), ['ADDED a', 'MODIFIED a', 'DELETED a']);
  const rvs = watch.events.map((e) => Number(e.object.metadata.resourceVersion));
  assert.ok((rvs[0] ?? 0) < (rvs[1] ?? 0) && (rvs[1] ?? 0) < (rvs[2] ?? 0), `revisions increase: ${rvs.join(',')}`);
  const list = (await server.fetch('GET', cms)).json() as { metadata: { resourceVersion: string } };
  assert.equal(rvs[2], Number(list.metadata.resourceVersion), 'the DELETED event has the revision of the delete');
  watch.close();
});

test('a watch without a resourceVersion starts with ADDED for what exists, then live changes', async () => {
  await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'existing', labels: { app: 'x' } } });
  const watch = await openWatch(`${cms}?watch=true&labelSelector=app%3Dx`);
  await eventually(() => watch.events.length >= 1);
  await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'live', labels: { app: 'x' } } });
  await eventually(() => watch.events.length >= 2);
  assert.deepEqual(summary(watch.events), ['ADDED existing', 'ADDED live']);
  watch.close();
});

test('selector transitions: leaving a selector is DELETED, entering it is ADDED', async () => {
  const start = await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mover', labels: { tier: 'web' } } });
  const watch = await openWatch(`${cms}?watch=true&resourceVersion=${start.metadata.resourceVersion}&labelSelector=tier%3Dweb`);
  await mergePatch(`${cms}/mover`, { metadata: { labels: { tier: 'db' } } });
  await mergePatch(`${cms}/mover`, { data: { ignored: 'yes' } });
  await mergePatch(`${cms}/mover`, { metadata: { labels: { tier: 'web' } } });
  await eventually(() => watch.events.length >= 2, { what: 'two transitions' });
  assert.deepEqual(summary(watch.events), ['DELETED mover', 'ADDED mover']);
  watch.close();
});

test('a watch from compacted history gets an ERROR 410 Expired event and the stream ends', async () => {
  const old = await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'old' } });
  await post(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'newer' } });
  await server.store.compact(server.store.currentRevision());
  const watch = await openWatch(`${cms}?watch=true&resourceVersion=${Number(old.metadata.resourceVersion) - 1}`);
  await watch.ended;
  assert.equal(watch.events.length, 1);
  assert.equal(watch.events[0]?.type, 'ERROR');
  assert.equal(watch.events[0]?.object.code, 410);
});

test('bookmarks are sent when allowed, and the stream ends at timeoutSeconds', async () => {
  const list = (await server.fetch('GET', cms)).json() as { metadata: { resourceVersion: string } };
  const watch = await openWatch(`${cms}?watch=true&resourceVersion=${list.metadata.resourceVersion}&allowWatchBookmarks=true&timeoutSeconds=1`);
  await watch.ended;
  assert.deepEqual(watch.events.map((e) => e.type), ['BOOKMARK']);
  assert.ok(Number(watch.events[0]?.object.metadata.resourceVersion) >= Number(list.metadata.resourceVersion));
});

test('sendInitialEvents ends the initial ADDED events with an annotated BOOKMARK', async () => {
  await post('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'wl' } });
  await post('/api/v1/namespaces/wl/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one' } });
  const watch = await openWatch('/api/v1/namespaces/wl/configmaps?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true');
  await eventually(() => watch.events.length >= 2);
  assert.deepEqual(watch.events.map((e) => e.type), ['ADDED', 'BOOKMARK']);
  assert.equal(watch.events[1]?.object.metadata.annotations?.['k8s.io/initial-events-end'], 'true');
  watch.close();
});

test('a Table watch sends column definitions with the first event only', async () => {
  const watch = await openWatch(`${cms}?watch=true`, { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' });
  await eventually(() => watch.events.length >= 2);
  assert.equal(watch.events[0]?.object.kind, 'Table');
  assert.ok(Array.isArray(watch.events[0]?.object.columnDefinitions));
  assert.equal(watch.events[1]?.object.columnDefinitions, null);
  watch.close();
});

test('a watch with a garbage resourceVersion is a 400 before the stream starts', async () => {
  const res = await server.fetch('GET', `${cms}?watch=true&resourceVersion=banana`);
  assert.equal(res.status, 400);
  assert.match((res.json() as { message: string }).message, /resourceVersion "banana" is not valid/);
});
