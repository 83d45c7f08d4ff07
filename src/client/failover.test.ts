/**
 * The HTTP client with several servers, against the real in-process API
 * server: a dead server first in the list is passed over for reads, writes
 * and watches; a server answering 503 is passed over; when none answers the
 * error names every server; the server list is parsed with clear errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ApiError } from '../api/errors.js';
import { startTestServer } from '../testing/server.js';
import { freePort } from '../testing/process.js';
import { HttpClient } from './http-client.js';
import { resources } from './resources.js';
import { mayRetryElsewhere, parseServerList } from './server-list.js';
import type { ClientWatchEvent } from './types.js';

test('parseServerList takes one URL or several, and says what is wrong', () => {
  assert.deepEqual(parseServerList('https://a:6443/'), ['https://a:6443']);
  assert.deepEqual(parseServerList('https://a:6443, https://b:6443,https://a:6443'), ['https://a:6443', 'https://b:6443']);
  assert.deepEqual(parseServerList(['https://[::1]:6443']), ['https://[::1]:6443']);
  assert.throws(() => parseServerList(''), /no API server given/);
  assert.throws(() => parseServerList('http://a:6443'), /"http:\/\/a:6443" is not an API server address: give each as https:\/\/HOST:PORT/);
  assert.throws(() => parseServerList('https://a:6443/api'), /with no path/);
  assert.throws(() => parseServerList('https://a b'), /is not a URL/);
});

test('only requests that never reached a server, or reads, go to the next one', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  assert.equal(mayRetryElsewhere(refused, 'POST'), true);
  assert.equal(mayRetryElsewhere(reset, 'GET'), true);
  assert.equal(mayRetryElsewhere(reset, 'POST'), false, 'a write that may have been made is not sent twice');
  assert.equal(mayRetryElsewhere(new Error('socket hang up'), 'GET'), true);
});

test('a client of several servers passes over a dead one and one answering 503', async (t) => {
  const server = await startTestServer();
  // A server that answers every request with 503, as one cut off from etcd does.
  const unavailable = createServer({ cert: server.pki.serverCert, key: server.pki.serverKey }, (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'ServiceUnavailable', code: 503, message: 'etcd at http://127.0.0.1:1 did not answer' }));
  });
  await new Promise<void>((resolve) => unavailable.listen(0, '127.0.0.1', resolve));
  const dead = `https://127.0.0.1:${await freePort()}`;
  const busy = `https://127.0.0.1:${(unavailable.address() as AddressInfo).port}`;
  const clients: HttpClient[] = [];
  const client = (servers: string[]): HttpClient => {
    const made = new HttpClient({ server: servers, token: server.token, caCert: server.pki.caCert, connectTimeoutMs: 1_000 });
    clients.push(made);
    return made;
  };
  t.after(async () => {
    for (const c of clients) c.close();
    unavailable.close();
    await server.stop();
  });

  const configMap = (name: string): { apiVersion: string; kind: string; metadata: { name: string; namespace: string } } => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } });

  await t.test('writes and reads go past a dead server, and stay on the one that answered', async () => {
    const c = client([dead, busy, server.url]);
    await c.create(resources.configMaps, configMap('past-dead'));
    assert.equal(c.server, server.url);
    assert.equal((await c.get(resources.configMaps, 'default', 'past-dead')).metadata.name, 'past-dead');
  });

  await t.test('a watch starts on the next server when the first is dead', async () => {
    const c = client([dead, server.url]);
    const seen: ClientWatchEvent[] = [];
    const abort = new AbortController();
    const list = await c.list(resources.configMaps, { namespace: 'default' });
    const watching = c.watch(resources.configMaps, { namespace: 'default', resourceVersion: list.metadata.resourceVersion ?? '' }, (event) => {
      seen.push(event);
      if (event.object.metadata.name === 'watched') abort.abort();
    }, abort.signal);
    await client([server.url]).create(resources.configMaps, configMap('watched'));
    await watching;
    assert.ok(seen.some((e) => e.type === 'ADDED' && e.object.metadata.name === 'watched'));
  });

  await t.test('when no server answers, the error names each and what it said', async () => {
    const c = client([dead, busy]);
    await assert.rejects(c.create(resources.configMaps, configMap('nowhere')), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.reason, 'ServiceUnavailable');
      assert.match(err.message, /etcd at http:\/\/127\.0\.0\.1:1 did not answer/, 'the last server\'s 503 stands');
      return true;
    });
    await assert.rejects(client([dead]).get(resources.configMaps, 'default', 'x'), new RegExp(`cannot reach the API server at ${dead}: connect ECONNREFUSED`));
  });
});
