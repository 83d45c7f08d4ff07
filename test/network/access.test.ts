/**
 * Reaching a guest from the user's machine through the API server, with
 * real tools: `vireo port-forward` serves a local port that reaches the
 * guest's HTTP server on its pod address, and `vireo ssh` runs the local
 * OpenSSH client through `port-forward --stdio` into the guest's dropbear,
 * logging in with a key cloud-init installed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { KObject } from '../../src/api/object.js';
import { importTestGuest } from '../../src/agent/images/index.js';
import { eventually } from '../../src/testing/wait.js';
import { closeVmEnv, openVmEnv, skipWithoutQemu, vmis } from '../e2e/vm-support.js';
import type { VmEnv } from '../e2e/vm-support.js';
import { vireo } from '../subresources/support.js';
import { bootedGuest, podGuest } from './guests.js';

const cli = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
let env: VmEnv;
let keys: string;

before(async () => {
  if (skipWithoutQemu !== false) return;
  env = await openVmEnv('vireo-access-test');
  await importTestGuest(env.images);
  keys = mkdtempSync(join(tmpdir(), 'vireo-ssh-key-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vireo-test', '-f', join(keys, 'id')]);
});
after(async () => {
  if (skipWithoutQemu !== false) return;
  await closeVmEnv(env);
  rmSync(keys, { recursive: true, force: true });
});

/** The pod network's masquerade guest, with a NoCloud disk that installs `publicKey` for root. */
function guest(name: string, publicKey: string): KObject {
  const vmi = podGuest(name, 'masquerade');
  const spec = vmi.spec as { domain: { devices: { disks: unknown[] } }; volumes: unknown[] };
  spec.domain.devices.disks.push({ name: 'cloudinit', disk: { bus: 'virtio' } });
  spec.volumes.push({ name: 'cloudinit', cloudInitNoCloud: { userData: `#cloud-config\nssh_authorized_keys:\n  - ${publicKey}\n` } });
  return vmi;
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', timeout: 20_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString('utf8')));
      res.on('end', () => { resolve(body); });
    }).on('error', reject).on('timeout', function (this: { destroy: (e: Error) => void }) { this.destroy(new Error('timed out')); });
  });
}

test('vireo port-forward reaches the guest\'s HTTP server; vireo ssh runs a command in the guest with a cloud-init key', { skip: skipWithoutQemu, timeout: 600_000 }, async () => {
  const publicKey = readFileSync(join(keys, 'id.pub'), 'utf8').trim();
  await env.client.create(vmis, guest('reach', publicKey));
  const { console } = await bootedGuest(env, 'reach');
  try {
    const forward = spawn(process.execPath, [cli, 'port-forward', 'vmi/reach', '0:80'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBECONFIG: env.server.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    forward.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    forward.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
    try {
      const found = await eventually(() => /Forwarding from 127\.0\.0\.1:(\d+) -> 80/.exec(out), { what: 'the forwarded port', timeoutMs: 20_000 });
      const page = await httpGet(Number(found[1]));
      assert.match(page, /<h1>[^<]+<\/h1><p>Vireo test guest<\/p>/);
    } finally {
      forward.kill('SIGINT');
    }

    const ssh = await vireo([
      'ssh', '-i', join(keys, 'id'), '--known-hosts', join(keys, 'known_hosts'),
      '--local-ssh-opts=-oStrictHostKeyChecking=accept-new', '--local-ssh-opts=-oBatchMode=yes', '--local-ssh-opts=-F/dev/null',
      '-c', 'echo hello-from-$(cat /proc/sys/kernel/hostname)', 'root@vmi/reach',
    ], { kubeconfig: env.server.kubeconfig, timeoutMs: 120_000 });
    assert.equal(ssh.code, 0, ssh.stderr);
    assert.match(ssh.stdout, /^hello-from-\S+\n$/);
    // The host key is remembered under the VMI's name.
    assert.match(readFileSync(join(keys, 'known_hosts'), 'utf8'), /^vmi\/reach\.default ssh-ed25519 /m);
    const denied = await vireo(['ssh', '--known-hosts', join(keys, 'known_hosts'), '--local-ssh-opts=-oBatchMode=yes', '--local-ssh-opts=-F/dev/null', '--local-ssh-opts=-oIdentitiesOnly=yes', '-i', '/dev/null', '-c', 'true', 'root@vmi/reach'], { kubeconfig: env.server.kubeconfig, timeoutMs: 60_000 });
    assert.equal(denied.code, 255, 'ssh without the key is refused by the guest');
  } finally {
    console.close();
  }
  await env.client.delete(vmis, 'default', 'reach');
});
