import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { ensurePki } from '../../cli/pki.js';
import { OpenSslIssuer } from '../../net/certificate-issuer.js';
import { credentialsDir, credentialsId, writeCredentials } from './tls-creds.js';

const tls = { caCert: '-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n', cert: '-----BEGIN CERTIFICATE-----\nleaf\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n' };

test('credentials are written in QEMU\'s x509 layout under the VMI directory, the key readable by its owner only', async () => {
  const vmiDir = mkdtempSync(join(tmpdir(), 'vireo-tls-creds-'));
  try {
    const dir = credentialsDir(vmiDir, 'mig-1');
    assert.equal(dir, join(vmiDir, 'migration-tls-mig-1'));
    assert.equal(credentialsId('mig-1'), 'migration-tls-mig-1');
    await writeCredentials(dir, 'server', tls);
    // The serving side also gets standard Diffie-Hellman parameters, so QEMU does not generate its own.
    assert.deepEqual(readdirSync(dir).sort(), ['ca-cert.pem', 'dh-params.pem', 'server-cert.pem', 'server-key.pem']);
    assert.match(readFileSync(join(dir, 'dh-params.pem'), 'utf8'), /^-----BEGIN DH PARAMETERS-----\n/);
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

/** Runs a command; resolves with its exit code and stderr. */
function runCommand(file: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, (err, _stdout, stderr) => { resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stderr }); });
  });
}

test('QEMU\'s TLS takes the issued certificates both ways: a client of the cluster CA reads the export; a plain client, another CA\'s client or a wrong host name is refused', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vireo-tls-qemu-'));
  t.after(() => { rmSync(root, { recursive: true, force: true }); });
  for (const ca of ['ca', 'other-ca']) mkdirSync(join(root, ca));
  await ensurePki(join(root, 'ca'), ['127.0.0.1']);
  await ensurePki(join(root, 'other-ca'), ['127.0.0.1']);
  const issuer = new OpenSslIssuer({ certFile: join(root, 'ca', 'ca.crt'), keyFile: join(root, 'ca', 'ca.key') });
  const stranger = new OpenSslIssuer({ certFile: join(root, 'other-ca', 'ca.crt'), keyFile: join(root, 'other-ca', 'ca.key') });
  await writeCredentials(join(root, 'server'), 'server', await issuer.issue({ commonName: 'target', usage: 'server', hosts: ['127.0.0.1'] }));
  await writeCredentials(join(root, 'client'), 'client', await issuer.issue({ commonName: 'source', usage: 'client' }));
  await writeCredentials(join(root, 'stranger'), 'client', await stranger.issue({ commonName: 'source', usage: 'client' }));
  const disk = join(root, 'disk.qcow2');
  assert.equal((await runCommand('qemu-img', ['create', '-f', 'qcow2', disk, '1M'])).code, 0);
  const port = await freePort();
  const pidFile = join(root, 'nbd.pid');
  const served = await runCommand('qemu-nbd', ['--object', `tls-creds-x509,id=tls0,dir=${join(root, 'server')},endpoint=server,verify-peer=on`, '--tls-creds', 'tls0', '-b', '127.0.0.1', '-p', String(port), '-f', 'qcow2', '-x', 'disk0', '--persistent', '--fork', '--pid-file', pidFile, disk]);
  assert.equal(served.code, 0, served.stderr);
  // Read now: the scratch directory (and the pid file) may go before this test's other after-hooks run.
  const nbdPid = Number(readFileSync(pidFile, 'utf8').trim());
  try {
    await checkClients(root, port);
  } finally {
    process.kill(nbdPid);
  }
});

async function checkClients(root: string, port: number): Promise<void> {
  const read = (credentials: string | undefined, host = '127.0.0.1'): Promise<{ code: number; stderr: string }> => runCommand('qemu-img', [
    'info',
    ...(credentials === undefined ? [] : ['--object', `tls-creds-x509,id=tls0,dir=${join(root, credentials)},endpoint=client`]),
    '--image-opts', `driver=nbd,host=127.0.0.1,port=${port},export=disk0${credentials === undefined ? '' : `,tls-creds=tls0,tls-hostname=${host}`}`,
  ]);
  const good = await read('client');
  assert.equal(good.code, 0, good.stderr);
  assert.match((await read(undefined)).stderr, /TLS/, 'a plain client is refused');
  assert.notEqual((await read('stranger')).code, 0, 'a client certificate of another CA is refused');
  assert.notEqual((await read('client', '10.9.9.9')).code, 0, 'a server certificate not naming the expected host is refused');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve); });
  const address = server.address();
  await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
