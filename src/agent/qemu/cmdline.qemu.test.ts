/**
 * The generated command lines against the real QEMU: each case starts
 * under TCG with `-S` on small real files, greets on QMP, reports
 * `prelaunch` with its disks and vCPUs in place, and quits cleanly.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { cpus, homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { QmpClient } from '../qmp/client.js';
import { buildQemuCommand } from './cmdline.js';
import { diskDeviceId } from './disk-devices.js';
import { efiVarsTemplate } from './firmware.js';
import { startQemu } from '../../testing/qemu.js';
import { debianFacts, goldenCases, vmiPaths } from './testing.js';
import type { NodeFacts } from './types.js';

const facts: NodeFacts = { ...debianFacts, qemuBinary: 'qemu-system-x86_64', accel: 'tcg', hostCpus: cpus().length };
const guestDir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'vireo', 'guest');
const guestKernel = join(guestDir, 'vmlinuz');
const guestInitrd = join(guestDir, 'initrd.img');
const haveGuest = existsSync(guestKernel) && existsSync(guestInitrd);
function kvmUsable(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
// With `-S` no guest code runs, so KVM cases start even where KVM guests hang (nested VMs).
const haveKvm = kvmUsable();

const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

function makeFile(file: string, format: 'qcow2' | 'raw'): void {
  mkdirSync(dirname(file), { recursive: true });
  if (format === 'qcow2') execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '16M']);
  else {
    writeFileSync(file, '');
    truncateSync(file, 4 * 1024 * 1024);
  }
}

describe('generated command lines start the real QEMU', () => {
  for (const c of goldenCases()) {
    const needsKernel = JSON.stringify(c.vmi.spec).includes('"kernelBoot"');
    const hyperv = JSON.stringify(c.vmi.spec).includes('"hyperv"');
    const skip = c.facts.accel === 'kvm' && !haveKvm
      ? 'it needs /dev/kvm'
      : c.facts.accel === 'kvm' && hyperv
        ? 'Hyper-V enlightenments need a KVM host that offers them; nested KVM rejects hv-vpindex'
        : needsKernel && !haveGuest
        ? `the test guest is not built (${guestDir})`
        : undefined;
    it(skip === undefined ? c.name : `${c.name} (skipped: ${skip})`, { skip: skip !== undefined }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'vq-'));
      roots.push(dir);
      const efi = efiVarsTemplate(c.vmi, facts);
      const paths = vmiPaths(c.vmi, dir, { efi: efi !== undefined, kernelBoot: needsKernel });
      for (const source of Object.values(paths.disks)) makeFile(source.file, source.format);
      if (efi !== undefined && paths.efiVars !== undefined) copyFileSync(efi, paths.efiVars);
      if (paths.kernel !== undefined) copyFileSync(guestKernel, paths.kernel);
      if (paths.initrd !== undefined) copyFileSync(guestInitrd, paths.initrd);

      const command = buildQemuCommand(c.vmi, { ...facts, accel: c.facts.accel }, paths);
      const qemu = startQemu(command, { extraArgs: command.args.includes('-S') ? [] : ['-S'], signal: AbortSignal.timeout(60_000) });
      let qmp: QmpClient | undefined;
      try {
        qmp = await Promise.race([
          QmpClient.connect(paths.qmpSocket, { timeoutMs: 30_000 }),
          qemu.exited.then((exit) => {
            throw new Error(`QEMU exited (${JSON.stringify(exit)}) before greeting:\n${qemu.stderr()}\n${command.args.join(' ')}`);
          }),
        ]);
        const status = await qmp.execute('query-status');
        assert.equal(status.status, 'prelaunch');
        assert.equal(status.running, false);
        const block = await qmp.execute('query-block');
        const devices = block.map((info) => info.qdev ?? '');
        for (const disk of Object.keys(paths.disks)) {
          assert.ok(devices.some((qdev) => qdev.includes(diskDeviceId(disk))), `disk ${disk} not among ${devices.join(', ')}`);
        }
        assert.equal((await qmp.execute('query-kvm')).enabled, c.facts.accel === 'kvm');
        const cpuCount = (await qmp.execute('query-cpus-fast')).length;
        const smp = command.args[command.args.indexOf('-smp') + 1] ?? '';
        assert.equal(`cpus=${cpuCount}`, smp.split(',')[0]);
        if (command.args.includes('-vnc')) assert.ok(existsSync(paths.vncSocket), 'no VNC socket');
        if (command.args.some((arg) => arg.includes('id=charserial0'))) assert.ok(existsSync(paths.serialSocket), 'no serial socket');
        assert.ok(existsSync(paths.guestAgentSocket), 'no guest agent socket');
        await qmp.execute('quit');
        const exit = await qemu.exited;
        assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, qemu.stderr());
      } finally {
        qmp?.close();
        qemu.kill('SIGKILL');
      }
    });
  }
});
