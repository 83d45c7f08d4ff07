import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { AgentEndpoint, LocalAgentDirectory, agentCertificateAnnotation } from '../agent/index.js';
import { ensureSelfSigned } from '../cli/pki.js';
import { silentLogger } from '../log/logger.js';
import { EchoAgent } from '../testing/agent-handle.js';
import { freePort } from '../testing/process.js';
import { eventually } from '../testing/wait.js';
import { NodeAgentDirectory, RemoteAgentHandle, endpointOfNode } from './remote-agents.js';

const token = 'cluster-token-0123456789abcdef0123456789abcdef';

function node(name: string, fields: { port?: number; certificate?: string; addresses?: { type: string; address: string }[] }): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, ...(fields.certificate === undefined ? {} : { annotations: { [agentCertificateAnnotation]: fields.certificate } }) },
    status: { addresses: fields.addresses ?? [], daemonEndpoints: { kubeletEndpoint: { Port: fields.port ?? 0 } } },
  };
}

test('a Node without an endpoint is a 400 that names the node and says what to do', () => {
  const refused = (n: KObject | undefined): ApiError => {
    try {
      endpointOfNode('node-b', n);
    } catch (err) {
      assert.ok(err instanceof ApiError);
      return err;
    }
    assert.fail('expected a refusal');
  };
  const missing = refused(undefined);
  assert.equal(missing.httpCode, 400);
  assert.match(missing.message, /node node-b does not exist.*start vireo agent/);
  const inProcess = refused(node('node-b', { addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] }));
  assert.equal(inProcess.httpCode, 400);
  assert.match(inProcess.message, /node node-b has no agent this server can reach: its agent publishes no endpoint.*start vireo agent/);
  assert.equal(refused(node('node-b', { port: 10250, addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] })).httpCode, 400, 'no certificate');
  assert.equal(refused(node('node-b', { port: 10250, certificate: 'PEM' })).httpCode, 400, 'no address');
});

test('the InternalIP is preferred, then ExternalIP, then Hostname', () => {
  const addresses = [{ type: 'Hostname', address: 'b.example' }, { type: 'ExternalIP', address: '192.0.2.2' }, { type: 'InternalIP', address: '10.0.0.2' }];
  assert.deepEqual(endpointOfNode('b', node('b', { port: 1, certificate: 'PEM', addresses })), { address: '10.0.0.2', port: 1, certificate: 'PEM' });
  assert.equal(endpointOfNode('b', node('b', { port: 1, certificate: 'PEM', addresses: addresses.slice(0, 2) })).address, '192.0.2.2');
  assert.equal(endpointOfNode('b', node('b', { port: 1, certificate: 'PEM', addresses: addresses.slice(0, 1) })).address, 'b.example');
});

/** An agent endpoint on loopback serving an EchoAgent with one guest, default/vm. */
async function startEchoEndpoint(t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ agent: EchoAgent; cert: string; port: number; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-endpoint-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const tls = await ensureSelfSigned(dir, 'agent', 'node-b');
  const agent = new EchoAgent('node-b');
  t.after(() => agent.stop());
  await agent.addGuest('default', 'vm');
  const endpoint = new AgentEndpoint({ token, tls, logger: silentLogger });
  const { port } = await endpoint.listen('127.0.0.1', 0);
  endpoint.serve(agent);
  t.after(() => endpoint.close());
  return { agent, cert: tls.cert, port, dir };
}

function readUntil(stream: Duplex, text: string): Promise<string> {
  let seen = '';
  stream.on('data', (c: Buffer) => (seen += c.toString('utf8')));
  return eventually(() => (seen.includes(text) ? seen : undefined), { what: `"${text}" on the stream` });
}

test('a remote handle drives an agent endpoint: actions, log and console, with Status errors intact', async (t) => {
  const { agent, cert, port, dir } = await startEchoEndpoint(t);
  assert.equal(statSync(join(dir, 'agent.key')).mode & 0o777, 0o600);
  const remote = new RemoteAgentHandle('node-b', { address: '127.0.0.1', port, certificate: cert }, token);
  t.after(() => { remote.close(); });

  await remote.guestAction('default', 'vm', 'pause');
  assert.deepEqual(agent.actions.map((a) => a.action), ['pause']);
  await assert.rejects(remote.guestAction('default', 'vm', 'pause'), (err: unknown) => err instanceof ApiError && err.reason === 'Conflict' && /VMI is already paused/.test(err.message));
  await remote.guestAction('default', 'vm', 'unpause');
  await assert.rejects(remote.serialLog('default', 'nobody'), (err: unknown) => err instanceof ApiError && err.reason === 'Conflict' && /not running on node node-b/.test(err.message));

  const stream = await remote.openStream('default', 'vm', 'console');
  stream.write('hello over the agent endpoint\n');
  await readUntil(stream, 'hello over the agent endpoint');
  stream.end();
  await eventually(async () => (await remote.serialLog('default', 'vm')).includes('hello over the agent endpoint'), { what: 'the kept log' });
});

test('a remote handle streams an upload to the agent endpoint, sync and async, with the agent\'s refusals intact', async (t) => {
  const { agent, cert, port } = await startEchoEndpoint(t);
  const remote = new RemoteAgentHandle('node-b', { address: '127.0.0.1', port, certificate: cert }, token);
  t.after(() => { remote.close(); });
  const data = Buffer.alloc(3 * 1024 * 1024 + 17, 0xab);
  assert.deepEqual(await remote.upload('default', 'disk', Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { async: false, bytes: data.length }), { bytes: data.length, processing: false });
  assert.deepEqual(await remote.upload('default', 'disk', Readable.from([Buffer.from('abc')]), { async: true }), { bytes: 3, processing: true });
  assert.equal(agent.uploads.length, 2);
  assert.deepEqual(agent.uploads[0]?.data, data);
  assert.deepEqual(agent.uploads[0]?.options, { async: false, bytes: data.length });
  assert.equal(agent.uploads[1]?.options.async, true);
  agent.uploads.length = 0;
  agent.upload = () => Promise.reject(new ApiError('Conflict', 'rejecting Upload Request for PVC disk that already finished uploading'));
  await assert.rejects(remote.upload('default', 'disk', Readable.from([Buffer.from('x')]), { async: false }), (err: unknown) => err instanceof ApiError && err.httpCode === 409 && /already finished uploading/.test(err.message));
});

test('the endpoint refuses a wrong token with 401, and the server reports it as its own misconfiguration', async (t) => {
  const { cert, port } = await startEchoEndpoint(t);
  const wrong = new RemoteAgentHandle('node-b', { address: '127.0.0.1', port, certificate: cert }, 'not-the-token');
  t.after(() => { wrong.close(); });
  await assert.rejects(wrong.guestAction('default', 'vm', 'reset'), (err: unknown) => err instanceof ApiError && err.httpCode === 500 && /refused this server's credentials \(Unauthorized/.test(err.message));
  await assert.rejects(wrong.openStream('default', 'vm', 'vnc'), (err: unknown) => err instanceof ApiError && /refused this server's credentials/.test(err.message));
});

test('a certificate other than the pinned one is refused; a dead endpoint is a 503 naming the node', async (t) => {
  const { port } = await startEchoEndpoint(t);
  const other = mkdtempSync(join(tmpdir(), 'vireo-endpoint-other-'));
  t.after(() => { rmSync(other, { recursive: true, force: true }); });
  const impostor = await ensureSelfSigned(other, 'agent', 'node-b');
  const pinnedElsewhere = new RemoteAgentHandle('node-b', { address: '127.0.0.1', port, certificate: impostor.cert }, token);
  t.after(() => { pinnedElsewhere.close(); });
  const notPinned = (err: unknown): boolean => err instanceof ApiError && err.reason === 'ServiceUnavailable' && /cannot reach the agent of node node-b at .*its certificate is not the one node node-b publishes/.test(err.message);
  await assert.rejects(pinnedElsewhere.guestAction('default', 'vm', 'reset'), notPinned);
  await assert.rejects(pinnedElsewhere.openStream('default', 'vm', 'console'), notPinned);
  const dead = new RemoteAgentHandle('node-b', { address: '127.0.0.1', port: await freePort(), certificate: impostor.cert }, token);
  t.after(() => { dead.close(); });
  await assert.rejects(dead.serialLog('default', 'vm'), (err: unknown) => err instanceof ApiError && err.httpCode === 503 && /cannot reach the agent of node node-b at https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED.*check that vireo agent runs there/.test(err.message));
  await assert.rejects(dead.openStream('default', 'vm', 'console'), (err: unknown) => err instanceof ApiError && err.httpCode === 503 && /agent of node node-b/.test(err.message));
});

test('the directory answers local agents first and rebuilds a remote handle when the Node\'s endpoint changes', async (t) => {
  const { cert, port } = await startEchoEndpoint(t);
  const local = new LocalAgentDirectory();
  const here = new EchoAgent('node-a');
  t.after(() => here.stop());
  local.register(here);
  const nodes = new Map<string, KObject>([['node-b', node('node-b', { port, certificate: cert, addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] })]]);
  const directory = new NodeAgentDirectory({ local, token, readNode: (name) => Promise.resolve(nodes.get(name)) });
  t.after(() => { directory.close(); });
  assert.equal(directory.forNode('node-a'), here);
  const first = await directory.remoteFor('node-b');
  assert.equal(await directory.remoteFor('node-b'), first, 'kept while the Node is unchanged');
  await directory.forNode('node-b').guestAction('default', 'vm', 'reset');
  nodes.set('node-b', node('node-b', { port: port + 1, certificate: cert, addresses: [{ type: 'InternalIP', address: '127.0.0.1' }] }));
  assert.notEqual(await directory.remoteFor('node-b'), first, 'rebuilt for the new port');
  nodes.delete('node-b');
  await assert.rejects(directory.forNode('node-b').serialLog('default', 'vm'), (err: unknown) => err instanceof ApiError && err.httpCode === 400);
});
