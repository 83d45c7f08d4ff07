/**
 * Kubernetes CRUD semantics over real HTTPS: server-set metadata, one global
 * resourceVersion, generation, optimistic concurrency, the status
 * subresource, finalizers, dry runs, paging and Status errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../../src/testing/server.js';
import type { TestServer } from '../../src/testing/server.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; uid: string; resourceVersion: string; generation?: number; creationTimestamp: string; deletionTimestamp?: string; finalizers?: string[] };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  data?: Record<string, string>;
}

const vms = '/apis/kubevirt.io/v1/namespaces/default/virtualmachines';
const cms = '/api/v1/namespaces/default/configmaps';

function vm(name: string, runStrategy = 'Halted'): string {
  return JSON.stringify({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name },
    spec: { runStrategy, template: { spec: { domain: { devices: {}, memory: { guest: '64Mi' } } } } },
    status: { printableStatus: 'ShouldBeDropped' },
  });
}

async function json<T>(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: T }> {
  const res = await server.fetch(method, path, {
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    ...(headers === undefined ? {} : { headers }),
  });
  return { status: res.status, body: res.json() as T };
}

test('create sets uid, creationTimestamp, generation 1 and a resourceVersion, and drops status of a CR with a status subresource', async () => {
  const { status, body } = await json<Obj>('POST', vms, vm('crud-a'));
  assert.equal(status, 201);
  assert.match(body.metadata.uid, /^[0-9a-f-]{36}$/);
  assert.match(body.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.equal(body.metadata.generation, 1);
  assert.match(body.metadata.resourceVersion, /^\d+$/);
  assert.equal(body.status, undefined);
});

test('resourceVersions are one global, increasing sequence across kinds', async () => {
  const a = await json<Obj>('POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'rv-a' } });
  const b = await json<Obj>('POST', vms, vm('rv-b'));
  const c = await json<Obj>('POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'rv-c' } });
  assert.ok(Number(a.body.metadata.resourceVersion) < Number(b.body.metadata.resourceVersion));
  assert.ok(Number(b.body.metadata.resourceVersion) < Number(c.body.metadata.resourceVersion));
});

test('generation goes up on spec changes only; a no-op update writes nothing', async () => {
  const created = (await json<Obj>('POST', vms, vm('gen'))).body;
  const labelled = await json<Obj>('PATCH', `${vms}/gen`, { metadata: { labels: { a: 'b' } } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(labelled.body.metadata.generation, 1);
  const respec = await json<Obj>('PATCH', `${vms}/gen`, { spec: { runStrategy: 'Always' } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(respec.body.metadata.generation, 2);
  const statusWrite = await json<Obj>('PATCH', `${vms}/gen/status`, { status: { printableStatus: 'Running' } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(statusWrite.body.metadata.generation, 2);
  const noop = await json<Obj>('PATCH', `${vms}/gen`, { spec: { runStrategy: 'Always' } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(noop.body.metadata.resourceVersion, statusWrite.body.metadata.resourceVersion, 'a no-op keeps the resourceVersion');
  assert.notEqual(created.metadata.resourceVersion, noop.body.metadata.resourceVersion);
});

test('the status subresource takes only status; the main endpoint keeps stored status', async () => {
  const created = (await json<Obj>('POST', vms, vm('st'))).body;
  const s = await json<Obj & { metadata: { labels?: Record<string, string> } }>('PUT', `${vms}/st/status`, {
    ...created,
    metadata: { ...created.metadata, labels: { sneaky: 'x' } },
    spec: { runStrategy: 'Always' },
    status: { printableStatus: 'Stopped' },
  });
  assert.equal(s.status, 200);
  assert.equal(s.body.metadata.labels, undefined, 'metadata is not taken from a status write');
  assert.equal(s.body.status?.printableStatus, 'Stopped');
  assert.equal(s.body.spec?.runStrategy, 'Halted', 'spec is not taken from a status write');
  const current = (await json<Obj>('GET', `${vms}/st`)).body;
  const put = await json<Obj>('PUT', `${vms}/st`, { ...current, status: { printableStatus: 'Hacked' } });
  assert.equal(put.body.status?.printableStatus, 'Stopped', 'status is not taken from a main-endpoint write');
});

test('optimistic concurrency: a stale resourceVersion is a 409 Conflict; a CR update without one is a 422', async () => {
  const created = (await json<Obj>('POST', vms, vm('occ'))).body;
  const first = await json<Obj>('PUT', `${vms}/occ`, { ...created, spec: { ...created.spec, runStrategy: 'Always' } });
  assert.equal(first.status, 200);
  const stale = await json<{ reason: string; code: number; message: string }>('PUT', `${vms}/occ`, { ...created, spec: { ...created.spec, runStrategy: 'Manual' } });
  assert.equal(stale.status, 409);
  assert.equal(stale.body.reason, 'Conflict');
  assert.match(stale.body.message, /Operation cannot be fulfilled on virtualmachines.kubevirt.io "occ": the object has been modified/);
  const noRv = await json<{ reason: string }>('PUT', `${vms}/occ`, { ...created, metadata: { name: 'occ' } });
  assert.equal(noRv.status, 422);
  assert.equal(noRv.body.reason, 'Invalid');
});

test('errors are Status objects with the right code, reason and details', async () => {
  const missing = await json<{ kind: string; reason: string; details: { name: string; group: string; kind: string }; message: string }>('GET', `${vms}/nope`);
  assert.equal(missing.status, 404);
  assert.deepEqual(
    { kind: missing.body.kind, reason: missing.body.reason, details: missing.body.details, message: missing.body.message },
    { kind: 'Status', reason: 'NotFound', details: { name: 'nope', group: 'kubevirt.io', kind: 'virtualmachines' }, message: 'virtualmachines.kubevirt.io "nope" not found' },
  );
  await json('POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dup' } });
  const dup = await json<{ reason: string; message: string }>('POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dup' } });
  assert.equal(dup.status, 409);
  assert.equal(dup.body.message, 'configmaps "dup" already exists');
  const bad = await json<{ reason: string; details: { causes: { field: string }[] } }>('POST', vms, vm('bad', 'Sometimes'));
  assert.equal(bad.status, 422);
  assert.ok(bad.body.details.causes.some((c) => c.field === 'spec.runStrategy'), JSON.stringify(bad.body));
  const unauth = await server.fetch('GET', vms, { token: 'wrong' });
  assert.equal(unauth.status, 401);
  assert.equal((unauth.json() as { reason: string }).reason, 'Unauthorized');
  const noNs = await json<{ message: string }>('POST', '/api/v1/namespaces/nowhere/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } });
  assert.equal(noNs.status, 404);
  assert.equal(noNs.body.message, 'namespaces "nowhere" not found');
});

test('finalizers hold a deleted object with a deletionTimestamp until they are removed', async () => {
  await json('POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fin', finalizers: ['example.com/hold'] } });
  const del = await json<Obj>('DELETE', `${cms}/fin`);
  assert.equal(del.status, 200);
  const held = await json<Obj>('GET', `${cms}/fin`);
  assert.equal(held.status, 200);
  assert.ok(held.body.metadata.deletionTimestamp !== undefined);
  const added = await json<{ reason: string }>('PATCH', `${cms}/fin`, { metadata: { finalizers: ['example.com/hold', 'example.com/more'] } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(added.status, 422, 'no new finalizers on an object being deleted');
  const released = await json<Obj>('PATCH', `${cms}/fin`, { metadata: { finalizers: null } }, { 'content-type': 'application/merge-patch+json' });
  assert.equal(released.status, 200);
  assert.equal((await json('GET', `${cms}/fin`)).status, 404);
});

test('dryRun validates without persisting', async () => {
  const dry = await json<Obj>('POST', `${cms}?dryRun=All`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'dry' } });
  assert.equal(dry.status, 201);
  assert.equal((await json('GET', `${cms}/dry`)).status, 404);
});

test('generateName appends five random characters', async () => {
  const { body } = await json<Obj>('POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'gen-' } });
  assert.match(body.metadata.name, /^gen-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
});

test('limit and continue page through one snapshot; label and field selectors filter', async () => {
  await json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paging' } });
  for (let i = 0; i < 7; i++) {
    await json('POST', '/api/v1/namespaces/paging/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `p${i}`, labels: { parity: i % 2 === 0 ? 'even' : 'odd' } } });
  }
  const names: string[] = [];
  let token: string | undefined;
  let rv: string | undefined;
  let pages = 0;
  do {
    const page = await json<{ metadata: { continue?: string; resourceVersion: string }; items: Obj[] }>('GET', `/api/v1/namespaces/paging/configmaps?limit=3${token === undefined ? '' : `&continue=${token}`}`);
    names.push(...page.body.items.map((i) => i.metadata.name));
    rv ??= page.body.metadata.resourceVersion;
    assert.equal(page.body.metadata.resourceVersion, rv, 'every page comes from the same snapshot');
    if (pages === 0) await json('POST', '/api/v1/namespaces/paging/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'p9-late' } });
    token = page.body.metadata.continue;
    pages++;
  } while (token !== undefined && pages < 10);
  assert.deepEqual(names, ['p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6']);
  assert.equal(pages, 3);
  const odd = await json<{ items: Obj[] }>('GET', '/api/v1/namespaces/paging/configmaps?labelSelector=parity%3Dodd');
  assert.deepEqual(odd.body.items.map((i) => i.metadata.name), ['p1', 'p3', 'p5']);
  const notEven = await json<{ items: Obj[] }>('GET', '/api/v1/namespaces/paging/configmaps?labelSelector=parity%20notin%20(even),parity');
  assert.deepEqual(notEven.body.items.map((i) => i.metadata.name), ['p1', 'p3', 'p5']);
  const byName = await json<{ items: Obj[] }>('GET', '/api/v1/configmaps?fieldSelector=metadata.name%3Dp4,metadata.namespace%3Dpaging');
  assert.deepEqual(byName.body.items.map((i) => i.metadata.name), ['p4']);
});

test('a Table is served for kubectl get with the printer columns', async () => {
  const res = await server.fetch('GET', vms, { headers: { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' } });
  const table = res.json() as { kind: string; columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
  assert.equal(table.kind, 'Table');
  assert.deepEqual(table.columnDefinitions.map((c) => c.name), ['Name', 'Age', 'Status', 'Ready']);
  assert.ok(table.rows.length > 0);
});
