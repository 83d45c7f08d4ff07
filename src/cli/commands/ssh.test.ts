import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from '../errors.js';
import { sshArguments } from './ssh.js';

const kubeconfig = `apiVersion: v1
kind: Config
current-context: c
contexts: [{ name: c, context: { cluster: k, user: u, namespace: team } }]
clusters: [{ name: k, cluster: { server: "https://127.0.0.1:6443", certificate-authority-data: ${Buffer.from('CA').toString('base64')} } }]
users: [{ name: u, user: { token: t0k } }]
`;

test('vireo ssh runs ssh through port-forward --stdio, with the VM\'s name as host key alias', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vireo-ssh-'));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, kubeconfig);
  const args = sshArguments(['--kubeconfig', file, '-i', 'id_ed25519', '-c', 'uname -a', '--local-ssh-opts=-oBatchMode=yes', 'root@vm/web'], '/opt/vireo/main.js', { home: '/home/me' });
  assert.deepEqual(args, [
    '-o', `ProxyCommand='${process.execPath}' '/opt/vireo/main.js' 'port-forward' '--stdio' '--kubeconfig' '${file}' 'vm/web.team' '22'`,
    '-o', 'HostKeyAlias=vm/web.team',
    '-o', 'UserKnownHostsFile=/home/me/.ssh/kube_known_hosts',
    '-i', 'id_ed25519',
    '-l', 'root',
    '-oBatchMode=yes',
    'web.team',
    'uname -a',
  ]);
  const other = sshArguments(['--kubeconfig', file, '-l', 'fedora', '-p', '2222', '--known-hosts', '/tmp/kh', 'vmi/db.prod'], '/x.js', { home: '/h' });
  assert.deepEqual(other.slice(2), ['-o', 'HostKeyAlias=vmi/db.prod', '-o', 'UserKnownHostsFile=/tmp/kh', '-l', 'fedora', 'db.prod']);
  assert.match(other[1] ?? '', /'vmi\/db\.prod' '2222'$/);
  assert.throws(() => sshArguments(['--kubeconfig', file, 'root@web'], '/x.js', { home: '/h' }), (err: unknown) => err instanceof CliError && /write vm\/NAME or vmi\/NAME/.test(err.message));
  assert.throws(() => sshArguments(['--kubeconfig', file, '-p', '0', 'vm/web'], '/x.js', { home: '/h' }), (err: unknown) => err instanceof CliError && /not a TCP port/.test(err.message));
});
