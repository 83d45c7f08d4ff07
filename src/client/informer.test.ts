import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../testing/server.js';
import type { TestServer } from '../testing/server.js';
import { eventually } from '../testing/wait.js';
import { silentLogger } from '../log/logger.js';
import { HttpClient } from './http-client.js';
import { Informer } from './informer.js';
import { resources } from './resources.js';
import { ApiError } from '../api/errors.js';

let server: TestServer;
let client: HttpClient;
before(async () => {
  server = await startTestServer();
  client = new HttpClient({ server: server.url, token: server.token, caCert: server.pki.caCert, userAgent: 'vireo-test' });
});
after(async () => {
  client.close();
  await server.stop();
});

const cm = (name: string, v = '1') => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { v } });

test('the HTTP client maps Status errors back to ApiErrors', async () => {
  await assert.rejects(client.get(resources.configMaps, 'default', 'missing'), (err: unknown) => err instanceof ApiError && err.reason === 'NotFound' && err.message === 'configmaps "missing" not found');
  assert.equal(await client.tryGet(resources.configMaps, 'default', 'missing'), undefined);
  await client.create(resources.configMaps, cm('dup'));
  await assert.rejects(client.create(resources.configMaps, cm('dup')), (err: unknown) => err instanceof ApiError && err.reason === 'AlreadyExists');
});

test('an informer lists, then follows creates, updates and deletes in its cache', async () => {
  await client.create(resources.configMaps, cm('pre'));
  const informer = new Informer(client, resources.configMaps, silentLogger, { namespace: 'default' });
  const changed: string[] = [];
  informer.onChange((key) => changed.push(key));
  await informer.start();
  assert.equal(informer.get('default/pre')?.metadata.name, 'pre');
  await client.create(resources.configMaps, cm('live'));
  await client.patch(resources.configMaps, 'default', 'pre', 'merge', { data: { v: '2' } });
  await client.delete(resources.configMaps, 'default', 'dup');
  await eventually(() => informer.get('default/live') !== undefined && informer.get('default/pre')?.data !== undefined && informer.get('default/dup') === undefined, { what: 'cache to follow' });
  assert.deepEqual((informer.get('default/pre') as { data?: { v: string } } | undefined)?.data, { v: '2' });
  assert.ok(changed.includes('default/live'));
  await informer.stop();
});
