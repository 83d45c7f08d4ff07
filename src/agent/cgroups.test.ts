import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../api/object.js';
import { Cgroups, qemuMemoryOverheadBytes, sharesToWeight, startupCpuShares, vmiCgroupSpec } from './cgroups.js';

const vmi = (domain: Record<string, unknown>): KObject => ({ apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', metadata: { name: 'x' }, spec: { domain } });

test('a VMI weighs its CPU request, else its vCPUs over the allocation ratio; a memory limit caps guest plus overhead', () => {
  assert.deepEqual(vmiCgroupSpec(vmi({ resources: { requests: { cpu: '10m' } } })), { cpuShares: 10 });
  assert.deepEqual(vmiCgroupSpec(vmi({ resources: { requests: { cpu: '2' } } })), { cpuShares: 2048 });
  assert.deepEqual(vmiCgroupSpec(vmi({ resources: { requests: { cpu: '1m' } } })), { cpuShares: 2 }, 'never below the kernel minimum');
  assert.deepEqual(vmiCgroupSpec(vmi({})), { cpuShares: 102 });
  assert.deepEqual(vmiCgroupSpec(vmi({ cpu: { cores: 2, sockets: 2 } })), { cpuShares: 410 });
  assert.deepEqual(vmiCgroupSpec(vmi({ resources: { limits: { memory: '1Gi' } } })), { cpuShares: 102, memoryLimitBytes: 2 ** 30 + qemuMemoryOverheadBytes });
});

test('v1 shares map onto v2 weights as Kubernetes maps them', () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 39);
  assert.equal(sharesToWeight(262_144), 10_000);
  assert.equal(sharesToWeight(1), 1);
});

test('without a cgroup hierarchy the agent runs guests without cgroups and says why', async () => {
  const cgroups = await Cgroups.detect({ root: '/nonexistent-cgroup-root' });
  assert.equal(cgroups.mode, 'none');
  assert.match(cgroups.reason, /no cgroup hierarchy is mounted at \/nonexistent-cgroup-root/);
  assert.deepEqual(cgroups.paths('u'), []);
  await cgroups.create('u', { cpuShares: 10 });
  await cgroups.attach('u', process.pid);
  await cgroups.remove('u');
});

/** A process to put in a cgroup, killed after the test. */
function sleeper(t: { after: (fn: () => void) => void }): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  assert.ok(child.pid !== undefined);
  return child.pid;
}

async function killAndWait(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  while (existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')) await new Promise((r) => setTimeout(r, 10));
}

const parent = `vireo-test-${process.pid}`;
after(() => {
  for (const tree of ['cpu', 'cpuacct', 'memory', 'pids', 'unified', '.']) {
    try {
      rmdirSync(join('/sys/fs/cgroup', tree, parent));
    } catch {
      // not made in this tree
    }
  }
});
const hasV1 = existsSync('/sys/fs/cgroup/cpu/cgroup.procs') && !existsSync('/sys/fs/cgroup/cgroup.controllers');
const rootSkip = process.getuid?.() === 0 ? false : 'needs root to write cgroups';

test('cgroup v1: a VMI cgroup in every controller tree takes the process, weighs it, caps its memory, and goes when emptied', { skip: hasV1 ? rootSkip : 'the node has no cgroup v1 hierarchy' }, async (t) => {
  const cgroups = await Cgroups.detect({ parent });
  assert.equal(cgroups.mode, 'v1');
  const uid = '1b4e28ba-2fa1-11d2-883f-0016d3cca427';
  await cgroups.create(uid, { cpuShares: 10, memoryLimitBytes: 512 * 2 ** 20 });
  const cpuDir = join('/sys/fs/cgroup/cpu', parent, uid);
  assert.equal(readFileSync(join(cpuDir, 'cpu.shares'), 'utf8').trim(), String(startupCpuShares), 'a starting QEMU weighs as an ordinary process');
  assert.equal(readFileSync(join('/sys/fs/cgroup/memory', parent, uid, 'memory.limit_in_bytes'), 'utf8').trim(), String(512 * 2 ** 20));
  const pid = sleeper(t);
  await cgroups.attach(uid, pid);
  const membership = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  for (const controller of ['cpu', 'memory', 'pids']) assert.match(membership, new RegExp(`:${controller}:/${parent}/${uid}$`, 'm'));
  await cgroups.settle(uid, { cpuShares: 10 });
  assert.equal(readFileSync(join(cpuDir, 'cpu.shares'), 'utf8').trim(), '10');
  assert.deepEqual(cgroups.list(), [uid]);
  await killAndWait(pid);
  await cgroups.remove(uid);
  for (const path of cgroups.paths(uid)) assert.ok(!existsSync(path), `${path} is removed`);
  assert.deepEqual(cgroups.list(), []);
  await cgroups.remove(uid);
});

const hasUnified = existsSync('/sys/fs/cgroup/unified/cgroup.procs') || existsSync('/sys/fs/cgroup/cgroup.controllers');

test('cgroup v2: the VMI cgroup takes the process and goes when emptied', { skip: hasUnified ? rootSkip : 'the node has no cgroup v2 hierarchy' }, async (t) => {
  const root = existsSync('/sys/fs/cgroup/cgroup.controllers') ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
  const cgroups = await Cgroups.prepareV2(root, parent);
  assert.equal(cgroups.mode, 'v2');
  const uid = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
  await cgroups.create(uid, { cpuShares: 10 });
  const pid = sleeper(t);
  await cgroups.attach(uid, pid);
  assert.match(readFileSync(`/proc/${pid}/cgroup`, 'utf8'), new RegExp(`^0::/${parent}/${uid}$`, 'm'));
  await cgroups.settle(uid, { cpuShares: 10 });
  await killAndWait(pid);
  await cgroups.remove(uid);
  assert.ok(!existsSync(join(root, parent, uid)));
});

test('attaching a process that has already exited is left to whoever waits for its exit', { skip: hasV1 ? rootSkip : 'the node has no cgroup v1 hierarchy' }, async (t) => {
  const cgroups = await Cgroups.detect({ parent });
  const uid = 'c0a80101-0000-0000-0000-000000000001';
  t.after(async () => { await cgroups.remove(uid); });
  await cgroups.create(uid, { cpuShares: 10 });
  const pid = sleeper(t);
  await killAndWait(pid);
  await new Promise((r) => setTimeout(r, 50));
  await cgroups.attach(uid, 2 ** 22 - 1);
});
