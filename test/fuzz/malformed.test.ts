/**
 * A generated fuzz run of malformed requests against a real server: not one
 * may crash it or get a 5xx, every refusal is a `Status` with a message,
 * and the server still answers afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../../src/testing/server.js';
import type { RawRequestOptions, TestServer } from '../../src/testing/server.js';
import { generators, mutateObject, oversized, seededRandom, vmManifest } from './generators.js';
import type { FuzzCase } from './generators.js';

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.stop();
});

const totalCases = 5200;

test(`fuzz: ${totalCases} malformed requests get 4xx Status answers, never a 5xx, and the server keeps answering`, async () => {
  const random = seededRandom(20261127);
  const cases: FuzzCase[] = [oversized(), oversized()];
  for (let i = cases.length; i < totalCases; i++) {
    const gen = generators[i % generators.length];
    if (gen === undefined) throw new Error('no generators');
    cases.push(gen(random, i));
  }
  const failures: string[] = [];
  let refused = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const c = cases[next++];
      if (c === undefined) return;
      const opts: RawRequestOptions = {};
      if (c.body !== undefined) opts.body = c.body;
      if (c.headers !== undefined) opts.headers = c.headers;
      if (c.token !== undefined) opts.token = c.token;
      const res = await server.fetch(c.method, c.path, opts);
      if (res.status >= 500 || res.status < 400) {
        failures.push(`${c.name}: ${c.method} ${c.path.slice(0, 120)} → ${res.status} ${res.body.slice(0, 200)}`);
        continue;
      }
      refused++;
      let status: unknown;
      try {
        status = res.json();
      } catch {
        failures.push(`${c.name}: ${res.status} body is not JSON: ${res.body.slice(0, 120)}`);
        continue;
      }
      const s = status as { kind?: string; code?: number; message?: string };
      if (s.kind !== 'Status' || s.code !== res.status || typeof s.message !== 'string' || s.message.length < 5) {
        failures.push(`${c.name}: ${res.status} is not a Status with a message: ${res.body.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  assert.deepEqual(failures.slice(0, 20), [], `${failures.length} requests were not refused with a 4xx Status`);
  assert.equal(refused, totalCases);

  const health = await server.fetch('GET', '/healthz');
  assert.equal(health.status, 200);
  const created = await server.fetch('POST', '/apis/kubevirt.io/v1/namespaces/default/virtualmachines', { body: JSON.stringify(vmManifest('after-fuzz')) });
  assert.equal(created.status, 201, created.body);
});

test('fuzz: structure-aware mutations of a valid VirtualMachine never yield a 5xx', async () => {
  const random = seededRandom(7);
  const base = vmManifest('mutant');
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 400; i++) {
    const mutant = mutateObject(base, random, 1 + Math.floor(random() * 3));
    const meta = (mutant as { metadata?: unknown }).metadata;
    if (typeof meta === 'object' && meta !== null && !Array.isArray(meta)) (meta as Record<string, unknown>).name = `mutant-${i}`;
    const res = await server.fetch('POST', '/apis/kubevirt.io/v1/namespaces/default/virtualmachines?fieldValidation=Strict', { body: JSON.stringify(mutant) });
    assert.ok(res.status < 500, `mutant ${i} got ${res.status}: ${res.body.slice(0, 300)}\n${JSON.stringify(mutant).slice(0, 500)}`);
    if (res.status < 300) accepted++;
    else refused++;
  }
  assert.ok(refused > 100, `most mutants are invalid and refused (refused ${refused}, accepted ${accepted})`);
});
