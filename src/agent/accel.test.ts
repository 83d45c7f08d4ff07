import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { bootProbeGuest, forgetProbes, probeAccelerator } from './accel.js';

const guestDir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vireo', 'guest');
const guest = { kernel: join(guestDir, 'vmlinuz'), initrd: join(guestDir, 'initrd.img'), readyMarker: 'vireo-guest: ready' };
const haveGuest = existsSync(guest.kernel) && existsSync(guest.initrd);
const noGuest = haveGuest ? '' : ` (skipped: the test guest is not built at ${guestDir})`;

const scratch = mkdtempSync(join(tmpdir(), 'vaccel-'));
after(() => { rmSync(scratch, { recursive: true, force: true }); });

describe('probeAccelerator', () => {
  it('chooses TCG at once when the KVM device does not exist', async () => {
    const started = Date.now();
    const choice = await probeAccelerator({ ...guest, kvmDevice: join(scratch, 'no-such-kvm') });
    assert.equal(choice.accel, 'tcg');
    assert.match(choice.reason, /no-such-kvm does not exist/);
    assert.ok(Date.now() - started < 2_000);
  });

  it('chooses TCG when the KVM device cannot be opened', async () => {
    // A directory exists but cannot be opened read-write, as /dev/kvm without permission.
    const choice = await probeAccelerator({ ...guest, kvmDevice: scratch });
    assert.equal(choice.accel, 'tcg');
    assert.match(choice.reason, /cannot be opened \(EISDIR\)/);
  });

  it('chooses TCG when there is no probe guest to boot', async () => {
    const choice = await probeAccelerator({ kernel: join(scratch, 'vmlinuz'), initrd: join(scratch, 'initrd.img'), readyMarker: 'x', kvmDevice: '/dev/null' });
    assert.equal(choice.accel, 'tcg');
    assert.match(choice.reason, /probe guest is missing/);
  });

  it('answers from its cache the second time', async () => {
    const options = { ...guest, kvmDevice: join(scratch, 'cached-kvm') };
    const first = await probeAccelerator(options);
    const second = await probeAccelerator(options);
    assert.equal(second, first);
  });

  it(`keeps a probe boot's outcome on disk for a restarted agent, until the fingerprint changes${noGuest}`, { skip: !haveGuest || !existsSync('/dev/kvm') }, async () => {
    const file = join(scratch, 'accelerator.json');
    const options = { ...guest, timeoutMs: 3_000, cache: { file, fingerprint: 'qemu 7.2' } };
    const first = await probeAccelerator(options);
    const kept = JSON.parse(readFileSync(file, 'utf8')) as { accel: string; reason: string; key: string };
    assert.equal(kept.accel, first.accel);
    assert.equal(kept.reason, first.reason);
    // What a restarted agent finds: the file, not the process cache. Marked, to see that it is what answers.
    writeFileSync(file, JSON.stringify({ ...kept, reason: 'marked', at: '2026-01-01T00:00:00Z' }));
    forgetProbes();
    const started = Date.now();
    const second = await probeAccelerator(options);
    assert.deepEqual(second, { accel: first.accel, reason: 'marked (probed at 2026-01-01T00:00:00Z, since this host booted)' });
    assert.ok(Date.now() - started < 1_000, 'no probe guest was booted');
    forgetProbes();
    const upgraded = await probeAccelerator({ ...options, cache: { file, fingerprint: 'qemu 8.0' } });
    assert.doesNotMatch(upgraded.reason, /marked/, 'another QEMU is probed again');
    assert.equal(upgraded.accel, first.accel);
  });

  it(`decides by booting the probe guest under KVM${noGuest}`, { skip: !haveGuest || !existsSync('/dev/kvm') }, async () => {
    const timeoutMs = 15_000;
    const started = Date.now();
    const choice = await probeAccelerator({ ...guest, timeoutMs });
    assert.ok(Date.now() - started < timeoutMs + 5_000, 'the probe outlived its timeout');
    if (choice.accel === 'kvm') assert.match(choice.reason, /booted under KVM in \d+ ms/);
    else assert.match(choice.reason, /did not boot under KVM within 15 s|stopped under KVM/);
  });
});

describe('bootProbeGuest', () => {
  it(`sees the ready marker of a guest booted under TCG${noGuest}`, { skip: !haveGuest }, async () => {
    const boot = await bootProbeGuest('tcg', { ...guest, timeoutMs: 60_000 });
    assert.ok(boot.booted, boot.booted ? '' : boot.reason);
  });

  it(`kills a guest that never prints the marker at the timeout${noGuest}`, { skip: !haveGuest }, async () => {
    const boot = await bootProbeGuest('tcg', { ...guest, readyMarker: 'a marker no guest prints', timeoutMs: 2_000 });
    assert.deepEqual(boot, { booted: false, reason: 'a probe guest did not boot under TCG within 2 s' });
  });

  it('reports a QEMU that cannot start', async () => {
    const boot = await bootProbeGuest('tcg', { ...guest, qemuBinary: join(scratch, 'no-qemu') });
    assert.equal(boot.booted, false);
    if (!boot.booted) assert.match(boot.reason, /no-qemu could not be started: .*No such file or directory/);
  });

  it('reports QEMU\'s own error when it stops before the guest boots', async () => {
    const boot = await bootProbeGuest('tcg', { kernel: join(scratch, 'missing-kernel'), initrd: join(scratch, 'missing-initrd'), readyMarker: 'x', timeoutMs: 20_000 });
    assert.equal(boot.booted, false);
    if (!boot.booted) assert.match(boot.reason, /stopped under TCG before the probe guest booted: .*missing-kernel/);
  });

  it(`dies by itself when the process that started it is killed${noGuest}`, { skip: !haveGuest }, async () => {
    // A process that starts a probe whose marker never comes, then is SIGKILLed (as a crashed agent).
    const script = `import { bootProbeGuest } from ${JSON.stringify(new URL('./accel.js', import.meta.url).href)};
      void bootProbeGuest('tcg', ${JSON.stringify({ ...guest, readyMarker: 'a marker no guest prints', timeoutMs: 1_000 })});
      setInterval(() => undefined, 1_000);`;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
    const children = (pid: number): number[] => {
      try {
        return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter((line) => line !== '').map(Number);
      } catch {
        return [];
      }
    };
    let wrapper: number | undefined;
    for (let i = 0; i < 100 && wrapper === undefined; i++) {
      await delay(50);
      wrapper = children(parent.pid ?? 0)[0];
    }
    assert.ok(wrapper !== undefined, 'the probe was not started');
    let qemu: number | undefined;
    for (let i = 0; i < 100 && qemu === undefined; i++) {
      await delay(50);
      qemu = children(wrapper)[0];
    }
    assert.ok(qemu !== undefined, 'the probe QEMU was not started');
    parent.kill('SIGKILL');
    const alive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
    const deadline = Date.now() + 10_000;
    while (alive(qemu) && Date.now() < deadline) await delay(200);
    assert.equal(alive(qemu), false, 'the probe QEMU outlived its parent by more than its timeout');
  });

  it('rejects when aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stop now'));
    await assert.rejects(bootProbeGuest('tcg', { ...guest, signal: controller.signal }), /stop now/);
  });
});
