/**
 * The kubeconfig's servers: the cluster's `server`, then those of its
 * `vireo.io/servers` extension (what `vireo kubeconfig --servers` writes);
 * a malformed extension is refused saying what it should look like.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { renderKubeconfig } from '../kubeconfig.js';
import { loadConnection } from './connection.js';

const caCert = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

test('a kubeconfig lists every server of the cluster for the vireo CLI and agents', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-kubeconfig-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const path = join(dir, 'kubeconfig');

  writeFileSync(path, renderKubeconfig({ server: 'https://10.0.0.1:6443', caCert, token: 't' }));
  assert.deepEqual(loadConnection(path).servers, ['https://10.0.0.1:6443'], 'one server without the extension');

  writeFileSync(path, renderKubeconfig({ server: 'https://10.0.0.1:6443', moreServers: ['https://10.0.0.2:6443', 'https://10.0.0.1:6443'], caCert, token: 't' }));
  const connection = loadConnection(path);
  assert.equal(connection.server, 'https://10.0.0.1:6443', 'kubectl\'s server stays the first');
  assert.deepEqual(connection.servers, ['https://10.0.0.1:6443', 'https://10.0.0.2:6443']);

  const bad = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': Buffer.from(caCert).toString('base64'), extensions: [{ name: 'vireo.io/servers', extension: { servers: 'https://10.0.0.2:6443' } }] } }],
    users: [{ name: 'u', user: { token: 't' } }],
    contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
    'current-context': 'x',
  };
  writeFileSync(path, stringify(bad));
  assert.throws(() => loadConnection(path), /has a vireo\.io\/servers extension without a list of server URLs \(extension: \{servers: \[https:\/\/HOST:PORT, …\]\}\)/);
  bad.clusters[0]?.cluster.extensions.splice(0, 1, { name: 'vireo.io/servers', extension: { servers: ['http://10.0.0.2:6443'] as unknown as string } });
  writeFileSync(path, stringify(bad));
  assert.throws(() => loadConnection(path), /"http:\/\/10\.0\.0\.2:6443" is not an API server address/);
});
