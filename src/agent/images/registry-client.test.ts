import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RegistryClient, RegistryError, isLoopbackRegistry, registryBaseUrl, registryMessage } from './registry-client.js';

// A registry that wants a Bearer token from its own token service, as public registries do.
// (docker-registry itself is exercised in test/agent/registry.test.ts; its token auth needs a JWT issuer.)
const blob = Buffer.from('layer bytes');
const blobDigest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
const manifest = Buffer.from('{"schemaVersion":2}');
let server: Server;
let host = '';
let scratch = '';
const tokenRequests: string[] = [];

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', `http://${host}`);
  if (url.pathname === '/token') {
    tokenRequests.push(`${url.searchParams.get('service') ?? ''} ${url.searchParams.get('scope') ?? ''} ${req.headers.authorization ?? 'anonymous'}`);
    const ok = req.headers.authorization === `Basic ${Buffer.from('u:p').toString('base64')}`;
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? JSON.stringify({ access_token: 'tok' }) : '{}');
    return;
  }
  if (req.headers.authorization !== 'Bearer tok') {
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="test-registry",scope="repository:a/b:pull"`, 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return;
  }
  if (url.pathname === '/v2/a/b/manifests/v1') {
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest);
  } else if (url.pathname === `/v2/a/b/blobs/${blobDigest}`) {
    // Registries hand blobs to their storage by redirect.
    res.writeHead(307, { location: `/storage/${blobDigest}` }).end();
  } else if (url.pathname === `/storage/${blobDigest}`) {
    res.writeHead(200).end(blob);
  } else {
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  }
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vregclient-'));
  server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  host = `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
});
after(async () => {
  server.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('RegistryClient', () => {
  it('answers a Bearer challenge with a token from the realm, asked for with the credentials', async () => {
    tokenRequests.length = 0;
    const client = new RegistryClient({ registry: host, repository: 'a/b', credentials: { username: 'u', password: 'p' }, signal: AbortSignal.timeout(10_000) });
    const got = await client.manifest('v1');
    assert.deepEqual(got.body, manifest);
    assert.equal(got.digest, `sha256:${createHash('sha256').update(manifest).digest('hex')}`);
    await client.blob({ mediaType: 'x', digest: blobDigest, size: blob.length }, join(scratch, 'blob'));
    assert.deepEqual(await readFile(join(scratch, 'blob')), blob);
    assert.deepEqual(tokenRequests, [`test-registry repository:a/b:pull Basic ${Buffer.from('u:p').toString('base64')}`], 'one token, reused for the blob');
  });

  it('says unauthorized when the token service refuses, and not found with the registry\'s words', async () => {
    const anonymous = new RegistryClient({ registry: host, repository: 'a/b', signal: AbortSignal.timeout(10_000) });
    await assert.rejects(anonymous.manifest('v1'), (err: unknown) => err instanceof RegistryError && err.failure === 'Unauthorized' && /^unauthorized: check imagePullSecret \(pulling .*a\/b: the token service wants credentials and none were given\)$/.test(err.message));
    const client = new RegistryClient({ registry: host, repository: 'a/b', credentials: { username: 'u', password: 'p' }, signal: AbortSignal.timeout(10_000) });
    await assert.rejects(client.manifest('v2'), (err: unknown) => err instanceof RegistryError && err.failure === 'NotFound' && /a\/b:v2: not found in the registry: manifest unknown \(MANIFEST_UNKNOWN\) \(HTTP 404\)/.test(err.message));
    await assert.rejects(client.manifest(`sha256:${'0'.repeat(64)}`), /not found/);
  });

  it('refuses a blob that is not what its descriptor says', async () => {
    const client = new RegistryClient({ registry: host, repository: 'a/b', credentials: { username: 'u', password: 'p' }, signal: AbortSignal.timeout(10_000) });
    await assert.rejects(client.blob({ mediaType: 'x', digest: blobDigest, size: blob.length - 1 }, join(scratch, 'short')), (err: unknown) => err instanceof RegistryError && err.failure === 'Corrupt' && /larger than the 10 bytes/.test(err.message));
    await assert.rejects(client.blob({ mediaType: 'x', digest: blobDigest, size: blob.length + 1 }, join(scratch, 'long')), /has 11 bytes, not the 12/);
  });

  it('reports an unreachable registry as Unavailable', async () => {
    const client = new RegistryClient({ registry: '127.0.0.1:1', repository: 'a/b', signal: AbortSignal.timeout(10_000) });
    await assert.rejects(client.manifest('v1'), (err: unknown) => err instanceof RegistryError && err.failure === 'Unavailable' && /cannot reach the registry at 127\.0\.0\.1:1: ECONNREFUSED/.test(err.message));
  });
});

describe('registry addresses', () => {
  it('uses HTTPS except for loopback with a port, and Docker Hub\'s API host for docker.io', () => {
    assert.equal(registryBaseUrl('quay.io').href, 'https://quay.io/');
    assert.equal(registryBaseUrl('docker.io').href, 'https://registry-1.docker.io/');
    assert.equal(registryBaseUrl('127.0.0.1:5000').href, 'http://127.0.0.1:5000/');
    assert.equal(registryBaseUrl('[::1]:5000').href, 'http://[::1]:5000/');
    assert.equal(registryBaseUrl('localhost:5000').href, 'http://localhost:5000/');
    assert.equal(isLoopbackRegistry('localhost'), false);
    assert.equal(isLoopbackRegistry('127.0.0.2:5000'), false);
    assert.equal(isLoopbackRegistry('registry.local:5000'), false);
  });

  it('reads the registry\'s error body', () => {
    assert.equal(registryMessage(Buffer.from('{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}')), 'repository name not known to registry (NAME_UNKNOWN)');
    assert.equal(registryMessage(Buffer.from('gateway timeout')), 'gateway timeout');
  });
});
