import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePki } from '../../cli/pki.js';
import { defaultMigrationConfiguration } from '../../api/kinds/migration-config.js';
import { OpenSslIssuer } from '../../net/certificate-issuer.js';
import { migrationCredentials } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'vireo-migration-tls-'));
test.after(() => { rmSync(dir, { recursive: true, force: true }); });

/** What `openssl` says of a PEM certificate, and whether the CA in `dir` verifies it for `purpose`. */
function inspect(cert: string, purpose: 'sslserver' | 'sslclient', name: string): { text: string; verified: string } {
  const file = join(dir, `${name}.pem`);
  writeFileSync(file, cert);
  const text = execFileSync('openssl', ['x509', '-in', file, '-noout', '-text'], { encoding: 'utf8' });
  const verified = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.crt'), '-purpose', purpose, file], { encoding: 'utf8' });
  return { text, verified };
}

test('a migration gets a target serving certificate naming the target address and a source client certificate, both from the cluster CA', async () => {
  const pki = await ensurePki(dir, ['127.0.0.1']);
  const issuer = new OpenSslIssuer({ certFile: join(dir, 'ca.crt'), keyFile: join(dir, 'ca.key') });
  const target = await migrationCredentials(issuer, defaultMigrationConfiguration, { migrationUid: 'm-1', role: { side: 'target', address: '10.0.0.2' } });
  assert.ok(target !== undefined);
  assert.equal(target.caCert, pki.caCert);
  assert.match(target.key, /^-----BEGIN (EC )?PRIVATE KEY-----/);
  const served = inspect(target.cert, 'sslserver', 'target');
  assert.match(served.verified, /: OK/);
  assert.match(served.text, /IP Address:10\.0\.0\.2/);
  assert.match(served.text, /TLS Web Server Authentication/);
  assert.match(served.text, /CN ?= ?migration-target-m-1/);

  const source = await migrationCredentials(issuer, defaultMigrationConfiguration, { migrationUid: 'm-1', role: { side: 'source' } });
  assert.ok(source !== undefined);
  const client = inspect(source.cert, 'sslclient', 'source');
  assert.match(client.verified, /: OK/);
  assert.match(client.text, /TLS Web Client Authentication/);
  assert.notEqual(source.key, target.key, 'each side has its own key');
});

test('disableTLS gives no credentials; TLS without a CA to issue from fails saying what to do', async () => {
  assert.equal(await migrationCredentials(undefined, { ...defaultMigrationConfiguration, disableTLS: true }, { migrationUid: 'm', role: { side: 'source' } }), undefined);
  await assert.rejects(migrationCredentials(undefined, defaultMigrationConfiguration, { migrationUid: 'm', role: { side: 'source' } }), /no CA key to issue them.*disableTLS: true/);
  const issuer = new OpenSslIssuer({ certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'missing.key') });
  await assert.rejects(issuer.issue({ commonName: 'x', usage: 'client' }), /cannot read the cluster CA/);
  await assert.rejects(issuer.issue({ commonName: 'x', usage: 'server', hosts: ['a\nb'] }), /not an IP address or DNS name/);
  // A CA an older Vireo made, without the basic constraint: GnuTLS would refuse what it signs, so it is refused up front.
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'old.key'), '-out', join(dir, 'old.crt'), '-days', '1', '-subj', '/CN=old-ca'], { env: { ...process.env, OPENSSL_CONF: '/dev/null' }, stdio: 'ignore' });
  const old = new OpenSslIssuer({ certFile: join(dir, 'old.crt'), keyFile: join(dir, 'old.key') });
  await assert.rejects(old.issue({ commonName: 'x', usage: 'client' }), /is not marked as a CA .*disableTLS: true/);
});
