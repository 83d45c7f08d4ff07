/**
 * Boots the real test guest under TCG in its forms (kernel + initrd, BIOS
 * disk, UEFI disk) with NoCloud and ConfigDrive data, and checks what the
 * issue promises: cloud-init, DHCP and HTTP, the serial shell, the ACPI
 * power button, and the boot time.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { TEST_GUEST_READY_MARKER, ensureTestGuest } from '../../src/agent/images/guest.js';
import type { TestGuest } from '../../src/agent/images/guest.js';
import { freePort } from '../../src/testing/process.js';
import { QemuGuest } from './qemu-guest.js';

const run = promisify(execFile);
const ready = new RegExp(`${TEST_GUEST_READY_MARKER} hostname=(\\S+) uptime=([0-9.]+)s`);
const ovmfCode = '/usr/share/OVMF/OVMF_CODE_4M.fd';
const ovmfVars = '/usr/share/OVMF/OVMF_VARS_4M.fd';
const bootTimeoutMs = 30_000;

let scratch = '';
let guest: TestGuest;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vguest-'));
  // The first build downloads Debian packages (about a minute); later ones are cached.
  guest = await ensureTestGuest({ onProgress: (line) => { console.log(line); } });
}, { timeout: 600_000 });
after(async () => { await rm(scratch, { recursive: true, force: true }); });

/** An ISO 9660 image with volume label `label` holding `files` (paths may have directories). */
async function iso(name: string, label: string, files: Record<string, string>): Promise<string> {
  const dir = join(scratch, `${name}.d`);
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), content);
  }
  const out = join(scratch, `${name}.iso`);
  await run('genisoimage', ['-quiet', '-V', label, '-J', '-r', '-o', out, dir]);
  return out;
}

/** A FAT image with volume label `label` holding `files` (as cloud-localds makes with --filesystem vfat). */
async function vfat(name: string, label: string, files: Record<string, string>): Promise<string> {
  const out = join(scratch, `${name}.img`);
  await run('truncate', ['-s', '4M', out]);
  await run('mkfs.vfat', ['-n', label, out]);
  for (const [path, content] of Object.entries(files)) {
    await writeFile(join(scratch, path), content);
    await run('mcopy', ['-i', out, join(scratch, path), `::/${path}`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  }
  return out;
}

/** A throwaway qcow2 overlay on the guest's disk, as the agent makes per VMI. */
async function overlay(name: string): Promise<string> {
  const out = join(scratch, `${name}.qcow2`);
  await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', guest.disk, out]);
  return out;
}

async function boot(name: string, args: string[]): Promise<QemuGuest> {
  const dir = join(scratch, name);
  await mkdir(dir, { recursive: true });
  return new QemuGuest({ dir, args });
}

describe('kernel + initrd boot with a NoCloud ISO', { timeout: 120_000 }, () => {
  let vm: QemuGuest;
  let port = 0;
  before(async () => {
    const data = await iso('nocloud', 'cidata', {
      'user-data': '#!/bin/sh\necho MARKER-$(hostname)\n',
      'meta-data': 'instance-id: i-1\nlocal-hostname: g1\n',
    });
    port = await freePort();
    vm = await boot('kernel', [
      '-kernel', guest.kernel, '-initrd', guest.initrd, '-append', guest.kernelArgs,
      '-drive', `file=${data},if=virtio,format=raw,readonly=on`,
      '-nic', `user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:${port}-:80`,
    ]);
  });
  after(async () => { await vm.stop(); });

  it('runs the user-data script as root, with its output on the serial console', async () => {
    await vm.waitFor(/^cloud-init: datasource nocloud \(\/dev\/vda\)\r?$/m, { timeoutMs: bootTimeoutMs });
    await vm.waitFor(/^MARKER-g1\r?$/m, { timeoutMs: bootTimeoutMs });
  });

  it('says it is ready within seconds, with the hostname and the uptime', async (t) => {
    const match = await vm.waitFor(ready, { timeoutMs: bootTimeoutMs });
    const seconds = (Date.now() - vm.startedAt) / 1000;
    t.diagnostic(`kernel boot: ${seconds.toFixed(1)} s from spawn to "${TEST_GUEST_READY_MARKER}" (guest uptime ${match[2] ?? '?'} s)`);
    assert.equal(match[1], 'g1');
    assert.ok(seconds < 20, `ready after ${seconds} s`);
  });

  it('took a DHCP lease and answers HTTP on port 80 with its hostname', async () => {
    await vm.waitFor(/^network: eth0 10\.0\.2\.15\/24 via 10\.0\.2\.2\r?$/m, { timeoutMs: bootTimeoutMs });
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, 200);
    assert.match(await response.text(), /<h1>g1<\/h1>/);
  });

  it('gives a root shell on the serial console', async () => {
    await vm.waitFor(/g1:~# /, { timeoutMs: bootTimeoutMs });
    const from = vm.mark();
    vm.type('echo shell-$((6*7)) $(id -u)\n');
    await vm.waitFor(/^shell-42 0\r?$/m, { timeoutMs: 10_000, from });
  });

  it('has ping and wget, and reaches its gateway', async () => {
    const from = vm.mark();
    vm.type('ping -c 1 -W 2 10.0.2.2 >/dev/null && wget -q -O - http://127.0.0.1/ | grep -c "<h1>g1</h1>" | sed s/^/net-/\n');
    await vm.waitFor(/^net-1\r?$/m, { timeoutMs: 10_000, from });
  });

  it('powers off by itself on the ACPI power button (QMP system_powerdown)', async (t) => {
    await vm.qmp('system_powerdown');
    const pressed = Date.now();
    const status = await Promise.race([vm.exited, new Promise((resolve) => setTimeout(resolve, 20_000, 'still running'))]);
    assert.equal(status, 0, `QEMU: ${String(status)}`);
    assert.match(vm.output(), /vireo-guest: power button pressed, powering off/);
    assert.match(vm.output(), /reboot: Power down/);
    t.diagnostic(`power off: QEMU exited ${((Date.now() - pressed) / 1000).toFixed(1)} s after system_powerdown`);
  });
});

describe('BIOS disk boot (qcow2 overlay) with a NoCloud cloud-config on a FAT disk', { timeout: 120_000 }, () => {
  let vm: QemuGuest;
  before(async () => {
    const userData = [
      '#cloud-config',
      'hostname: g2',
      'write_files:',
      '  - path: /etc/vireo-test',
      '    content: |',
      '      written by cloud-init',
      "    permissions: '0600'",
      '  - path: /root/b64',
      '    encoding: b64',
      `    content: ${Buffer.from('decoded-from-base64\n').toString('base64')}`,
      'users:',
      '  - default',
      '  - name: alice',
      '    ssh_authorized_keys:',
      '      - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEST alice@example',
      'password: hunter2',
      'chpasswd: { expire: False }',
      'runcmd:',
      '  - echo RUNCMD-$(hostname)',
      "  - [ sh, -c, 'echo FILE-$(cat /etc/vireo-test | tr \" \" -)-$(stat -c %a /etc/vireo-test); cat /root/b64' ]",
      '  - echo KEY-$(cut -d" " -f3 /home/alice/.ssh/authorized_keys)',
      '  - salt=$(awk -F"$" \'/^root:/ {print $3}\' /etc/shadow); grep -q "^root:$(mkpasswd -m sha512 hunter2 "$salt"):" /etc/shadow && echo PASSWORD-OK',
      '',
    ].join('\n');
    const data = await vfat('cidata', 'CIDATA', { 'user-data': userData, 'meta-data': 'instance-id: i-2\nlocal-hostname: not-this\n' });
    vm = await boot('disk', ['-drive', `file=${await overlay('disk')},if=virtio`, '-drive', `file=${data},if=virtio,format=raw`, '-nic', 'none']);
  });
  after(async () => { await vm.stop(); });

  it('boots from the disk and applies hostname, write_files, users, password and runcmd', async (t) => {
    const match = await vm.waitFor(ready, { timeoutMs: bootTimeoutMs });
    t.diagnostic(`disk boot: ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s from spawn to ready`);
    assert.equal(match[1], 'g2');
    const out = vm.output();
    assert.match(out, /SYSLINUX/);
    assert.match(out, /^cloud-init: datasource nocloud \(\/dev\/vdb\)\r?$/m);
    assert.match(out, /^RUNCMD-g2\r?$/m);
    assert.match(out, /^FILE-written-by-cloud-init-600\r?$/m);
    assert.match(out, /^decoded-from-base64\r?$/m);
    assert.match(out, /^KEY-alice@example\r?$/m);
    assert.match(out, /^PASSWORD-OK\r?$/m);
    assert.match(out, /^cloud-init: runcmd exited with status 0\r?$/m);
    assert.doesNotMatch(out, /cloud-init: warning/);
  });
});

// As KubeVirt boots a kernelBoot VMI that sets no kernelArgs: no console= on the command line.
describe('kernel boot on q35 without kernel arguments, with a ConfigDrive on a SATA CD-ROM', { timeout: 120_000 }, () => {
  let vm: QemuGuest;
  before(async () => {
    const data = await iso('configdrive', 'config-2', {
      'openstack/latest/user_data': '#!/bin/sh\necho CONFIGDRIVE-$(hostname)\n',
      'openstack/latest/meta_data.json': JSON.stringify({ uuid: '6b8d1a3e-1', hostname: 'cd1', name: 'cd1', launch_index: 0, devices: [], public_keys: { k: 'ssh-ed25519 AAAA k' } }),
    });
    vm = await boot('configdrive', [
      '-machine', 'q35', '-kernel', guest.kernel, '-initrd', guest.initrd,
      '-drive', `file=${data},media=cdrom`, '-nic', 'none',
    ]);
  });
  after(async () => { await vm.stop(); });

  it('reads meta_data.json and runs user_data', async () => {
    await vm.waitFor(/^CONFIGDRIVE-cd1\r?$/m, { timeoutMs: bootTimeoutMs });
    const out = vm.output();
    assert.match(out, /^cloud-init: datasource configdrive \(\/dev\/sr0\)\r?$/m);
    assert.match(out, /^cloud-init: instance-id 6b8d1a3e-1\r?$/m);
  });

  it('still prints its lines and gives a shell with job control on ttyS0', async () => {
    await vm.waitFor(ready, { timeoutMs: bootTimeoutMs });
    assert.doesNotMatch(vm.output(), /Linux version/, 'the kernel logs to tty0 here');
    await vm.waitFor(/cd1:~# /, { timeoutMs: bootTimeoutMs });
    const from = vm.mark();
    // ash turns job control ("monitor") on only when ttyS0 is its controlling terminal.
    vm.type('set -o | grep -w monitor | tr -s " " - | sed s/^/jobcontrol-/\n');
    await vm.waitFor(/^jobcontrol-monitor-on\r?$/m, { timeoutMs: 10_000, from });
  });
});

const noOvmf = existsSync(ovmfCode) && existsSync(ovmfVars) ? '' : ' (skipped: Debian\'s ovmf is not installed)';
describe(`UEFI disk boot under OVMF${noOvmf}`, { timeout: 120_000, skip: noOvmf !== '' }, () => {
  let vm: QemuGuest;
  before(async () => {
    const vars = join(scratch, 'OVMF_VARS.fd');
    await copyFile(ovmfVars, vars);
    vm = await boot('uefi', [
      '-machine', 'q35',
      '-drive', `if=pflash,format=raw,readonly=on,file=${ovmfCode}`, '-drive', `if=pflash,format=raw,file=${vars}`,
      '-drive', `file=${await overlay('uefi')},if=virtio`, '-nic', 'none',
    ]);
  });
  after(async () => { await vm.stop(); });

  it('boots the same disk through EFI/BOOT/BOOTX64.EFI', async (t) => {
    await vm.waitFor(ready, { timeoutMs: 60_000 });
    t.diagnostic(`UEFI disk boot: ${((Date.now() - vm.startedAt) / 1000).toFixed(1)} s from spawn to ready`);
    assert.match(vm.output(), /BdsDxe: starting Boot\d+/);
  });
});
