/**
 * The VM commands against a real guest: the in-process server with its VM
 * controller, scheduler and node agent boots the test guest under TCG, and
 * `vireo start`, `logs`, `console`, `pause`, `unpause` and `stop` drive it
 * through the subresources, checked in the guest's own answers and in the
 * VMI the agent reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { KObject } from '../../src/api/object.js';
import { recordsAt, stringAt } from '../../src/api/kinds/read.js';
import { TEST_GUEST_IMAGE, TEST_GUEST_READY_MARKER, importTestGuest } from '../../src/agent/images/index.js';
import { startTestServer } from '../../src/testing/server.js';
import { eventually } from '../../src/testing/wait.js';
import { vireo } from './support.js';

function hasQemu(): boolean {
  try {
    execFileSync('which', ['qemu-system-x86_64']);
    return true;
  } catch {
    return false;
  }
}

const bootMs = 120_000;
const cliPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

test('vireo start, logs, console, pause, unpause and stop drive a real guest', { skip: hasQemu() ? false : 'qemu-system-x86_64 is not installed', timeout: 600_000 }, async (t) => {
  const server = await startTestServer({ agent: true, controllers: true });
  t.after(() => server.stop());
  const images = server.plane.workloads.images;
  assert.ok(images !== undefined, 'the test server runs a node agent with an image store');
  await importTestGuest(images);
  const vmDef = server.plane.registry.lookup('kubevirt.io', 'v1', 'virtualmachines');
  assert.ok(vmDef !== undefined);
  await server.plane.server.objects.create(vmDef, 'default', {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'tiny', namespace: 'default' },
    spec: {
      runStrategy: 'Halted',
      template: {
        spec: {
          domain: { memory: { guest: '128Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }, { name: 'ci', disk: { bus: 'virtio' } }] } },
          terminationGracePeriodSeconds: 10,
          volumes: [{ name: 'root', containerDisk: { image: TEST_GUEST_IMAGE } }, { name: 'ci', cloudInitNoCloud: { userData: '#!/bin/sh\necho "cloud-init-said-hello"\n' } }],
        },
      },
    },
  });
  const cli = (args: string[], stdin?: string): ReturnType<typeof vireo> => vireo(args, { kubeconfig: server.kubeconfig, timeoutMs: 60_000, ...(stdin === undefined ? {} : { stdin }) });
  const vmi = async (): Promise<KObject | undefined> => {
    const res = await server.fetch('GET', '/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/tiny');
    return res.status === 200 ? (res.json() as KObject) : undefined;
  };
  const paused = (v: KObject | undefined): boolean => recordsAt(v, 'status', 'conditions').some((c) => c.type === 'Paused' && c.status === 'True');

  const started = await cli(['start', 'tiny']);
  assert.equal(started.code, 0, started.stderr);
  await eventually(async () => (await cli(['logs', 'tiny'])).stdout.includes(TEST_GUEST_READY_MARKER), { what: 'the guest to be ready', timeoutMs: bootMs, intervalMs: 500 });
  assert.match((await cli(['logs', 'tiny'])).stdout, /cloud-init-said-hello/);

  const answer = await cli(['console', 'tiny', '--linger', '2'], 'echo "sum=$((40+2))"\n');
  assert.equal(answer.code, 0, answer.stderr);
  assert.match(answer.stdout, /^sum=42\r?$/m, 'the guest shell ran the command typed into the console');

  assert.equal((await cli(['pause', 'vm', 'tiny'])).code, 0);
  await eventually(async () => paused(await vmi()), { what: 'the agent to report the VMI Paused', timeoutMs: 30_000 });
  const again = await cli(['pause', 'vmi', 'tiny']);
  assert.equal(again.code, 5);
  assert.match(again.stderr, /VMI is already paused/);
  assert.equal((await cli(['unpause', 'vm', 'tiny'])).code, 0);
  await eventually(async () => !paused(await vmi()), { what: 'the VMI to run again', timeoutMs: 30_000 });

  // VNC: a viewer connecting to the local proxy gets QEMU's RFB greeting.
  const proxy = spawn(process.execPath, [cliPath, 'vnc', 'tiny', '--port', '0'], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBECONFIG: server.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] });
  let proxyOut = '';
  proxy.stdout.on('data', (c: Buffer) => (proxyOut += c.toString('utf8')));
  const proxyExit = new Promise<number | null>((resolve) => proxy.once('close', (code) => { resolve(code); }));
  const found = await eventually(() => /listening on 127\.0\.0\.1:(\d+)/.exec(proxyOut), { what: 'the VNC proxy address' });
  const viewer = connect(Number(found[1]), '127.0.0.1');
  let greeting = '';
  viewer.on('data', (c: Buffer) => (greeting += c.toString('latin1')));
  await eventually(() => greeting.length >= 12, { what: 'the RFB greeting', timeoutMs: 30_000 });
  assert.match(greeting, /^RFB 003\.00\d\n/);
  viewer.destroy();
  proxy.kill('SIGINT');
  assert.equal(await proxyExit, 0);

  const stopped = await cli(['stop', 'tiny']);
  assert.equal(stopped.code, 0, stopped.stderr);
  await eventually(async () => (await vmi()) === undefined, { what: 'the VMI to be gone', timeoutMs: 60_000, intervalMs: 200 });
  const notRunning = await cli(['console', 'tiny']);
  assert.equal(notRunning.code, 5);
  assert.match(notRunning.stderr, /VMI is not running: VM tiny in namespace default is stopped/);
  assert.equal(stringAt(await vmi(), 'status', 'phase'), undefined);
});
