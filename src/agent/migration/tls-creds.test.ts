import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialsDir, credentialsId, writeCredentials } from './tls-creds.js';

const tls = { caCert: '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n', cert: '-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n' };

test('credentials are written in QEMU\'s x509 layout under the VMI directory, the key readable by its owner only', async () => {
  const vmiDir = mkdtempSync(join(tmpdir(), 'vireo-tls-creds-'));
  try {
    const dir = credentialsDir(vmiDir, 'mig-1');
    assert.equal(dir, join(vmiDir, 'migration-tls-mig-1'));
    assert.equal(credentialsId('mig-1'), 'migration-tls-mig-1');
    await writeCredentials(dir, 'server', tls);
    assert.deepEqual(readdirSync(dir).sort(), ['ca-cert.pem', 'server-cert.pem', 'server-key.pem']);
    assert.equal(statSync(join(dir, 'server-key.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(readFileSync(join(dir, 'server-cert.pem'), 'utf8'), tls.cert);
    const clientDir = credentialsDir(vmiDir, 'mig-2');
    await writeCredentials(clientDir, 'client', tls);
    assert.deepEqual(readdirSync(clientDir).sort(), ['ca-cert.pem', 'client-cert.pem', 'client-key.pem']);
    assert.equal(statSync(join(clientDir, 'client-key.pem')).mode & 0o777, 0o600);
  } finally {
    rmSync(vmiDir, { recursive: true, force: true });
  }
});
