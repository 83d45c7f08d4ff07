import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KObject } from '../../api/object.js';
import { buildQemuCommand } from './cmdline.js';
import { DomainConfigError } from './errors.js';
import { efiVarsTemplate } from './firmware.js';
import { debianFacts, goldenCases, testdataDir, vmiPaths } from './testing.js';
import type { GoldenCase } from './testing.js';
import type { VmiPaths } from './types.js';

const update = process.env.UPDATE_GOLDEN === '1';

function goldenPaths(c: GoldenCase): VmiPaths {
  const uid = c.vmi.metadata.uid ?? 'no-uid';
  const paths = vmiPaths(c.vmi, `/run/vireo/vmi/${uid}`, {
    efi: efiVarsTemplate(c.vmi, c.facts) !== undefined,
    kernelBoot: JSON.stringify(c.vmi.spec).includes('"kernelBoot"'),
  });
  for (const [name, override] of Object.entries(c.diskOverrides)) {
    const source = paths.disks[name];
    if (source !== undefined) paths.disks[name] = { ...source, ...override };
  }
  // The agent makes the master key when a disk is encrypted.
  if (Object.values(paths.disks).some((d) => d.encryption !== undefined)) paths.masterKey = join(paths.dir, 'master-key.aes');
  return paths;
}

/** Compares `actual` with the golden file, or rewrites it under UPDATE_GOLDEN=1; an empty text means "no file". */
function checkGolden(file: string, actual: string): void {
  const path = join(testdataDir, file);
  if (update) {
    if (actual === '') rmSync(path, { force: true });
    else writeFileSync(path, actual);
    return;
  }
  const expected = existsSync(path) ? readFileSync(path, 'utf8') : '';
  assert.equal(actual, expected, `${file} differs from the generated output; run the tests with UPDATE_GOLDEN=1 to accept the change, then review the diff`);
}

describe('buildQemuCommand golden files', () => {
  const cases = goldenCases();
  it('has at least ten cases', () => {
    assert.ok(cases.length >= 10, `only ${cases.length} cases in ${testdataDir}`);
  });
  for (const c of cases) {
    it(c.name, () => {
      const command = buildQemuCommand(c.vmi, c.facts, goldenPaths(c));
      assert.equal(command.binary, c.facts.qemuBinary);
      checkGolden(`${c.name}.args`, `${command.args.join('\n')}\n`);
      const notes = [...Object.entries(command.env).map(([key, value]) => `env: ${key}=${value}`), ...command.warnings.map((w) => `warning: ${w}`)];
      checkGolden(`${c.name}.notes`, notes.length === 0 ? '' : `${notes.join('\n')}\n`);
    });
  }
});

function vmi(domain: Record<string, unknown>, volumes: unknown[] = []): KObject {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'bad', namespace: 'default', uid: '00000000-0000-4000-8000-000000000001' },
    spec: { domain, volumes },
  };
}

function build(object: KObject, paths: Partial<VmiPaths> = {}): ReturnType<typeof buildQemuCommand> {
  return buildQemuCommand(object, debianFacts, { ...vmiPaths(object, '/run/vireo/vmi/x', { efi: false, kernelBoot: false }), ...paths });
}

function rejects(object: KObject, code: DomainConfigError['code'], field: string, message: RegExp, paths: Partial<VmiPaths> = {}): void {
  assert.throws(
    () => build(object, paths),
    (err: unknown) => {
      assert.ok(err instanceof DomainConfigError, `expected a DomainConfigError, got ${String(err)}`);
      assert.equal(err.code, code);
      assert.equal(err.field, field);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('buildQemuCommand rejects what cannot run', () => {
  const disk = { disks: [{ name: 'root', disk: {} }] };
  const volume = [{ name: 'root', containerDisk: { image: 'x' } }];
  for (const [value, why] of [['0', /too little/], ['-1Gi', /too little/], ['512', /too little/], ['lots', /not a memory quantity/], ['2Ti', /more memory than a guest can address/], [64, /too little/]] as const) {
    it(`memory ${JSON.stringify(value)}`, () => {
      rejects(vmi({ memory: { guest: value }, devices: disk }, volume), 'InvalidDomain', 'spec.domain.memory.guest', why);
    });
  }
  it('memory in requests is reported against requests', () => {
    rejects(vmi({ resources: { requests: { memory: '1Ki' } }, devices: disk }, volume), 'InvalidDomain', 'spec.domain.resources.requests.memory', /too little/);
  });
  it('no memory at all', () => {
    rejects(vmi({ devices: disk }, volume), 'InvalidDomain', 'spec.domain.memory.guest', /no memory size/);
  });
  it('a disk without a volume', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'ghost', disk: {} }] } }), 'InvalidDomain', 'spec.domain.devices.disks[0].name', /no volume is named "ghost"/);
  });
  it('a volume the agent did not prepare', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, devices: disk }, volume), 'UnpreparedInput', 'spec.domain.devices.disks[0]', /no prepared file/, { disks: {} });
  });
  it('a cdrom on virtio', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', cdrom: { bus: 'virtio' } }] } }, volume), 'InvalidDomain', 'spec.domain.devices.disks[0].cdrom.bus', /cannot sit on the virtio bus/);
  });
  it('an unknown bus', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'ide' } }] } }, volume), 'InvalidDomain', 'spec.domain.devices.disks[0].disk.bus', /"ide" is not supported/);
  });
  it('seven SATA disks', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const object = vmi({ memory: { guest: '64Mi' }, devices: { disks: names.map((name) => ({ name, disk: { bus: 'sata' } })) } }, names.map((name) => ({ name, emptyDisk: { capacity: '1Gi' } })));
    rejects(object, 'InvalidDomain', 'spec.domain.devices.disks[6]', /6 SATA ports/);
  });
  it('a duplicate boot order', () => {
    const object = vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'a', disk: {}, bootOrder: 1 }, { name: 'b', disk: {}, bootOrder: 1 }] } }, [{ name: 'a', emptyDisk: {} }, { name: 'b', emptyDisk: {} }]);
    rejects(object, 'InvalidDomain', 'spec.domain.devices.disks[1].bootOrder', /already used by disk "a"/);
  });
  it('cache none where direct I/O does not work', () => {
    const object = vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: {}, cache: 'none' }] } }, volume);
    rejects(object, 'InvalidDomain', 'spec.domain.devices.disks[0].cache', /needs direct I\/O/, { disks: { root: { name: 'root', file: '/tmpfs/root.qcow2', format: 'qcow2', directIo: false } } });
  });
  it('EFI without its NVRAM file', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, firmware: { bootloader: { efi: { secureBoot: false } } } }), 'UnpreparedInput', 'spec.domain.firmware.bootloader.efi', /efiVarsTemplate/);
  });
  it('secure boot with SMM switched off', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, firmware: { bootloader: { efi: {} } }, features: { smm: { enabled: false } } }), 'InvalidDomain', 'spec.domain.features.smm', /secure boot needs SMM/, { efiVars: '/run/vireo/vmi/x/vars.fd' });
  });
  it('more vCPUs than q35 takes', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, cpu: { sockets: 16, cores: 16, threads: 2 } }), 'InvalidDomain', 'spec.domain.cpu', /512 vCPUs/);
  });
  it('a machine type that is not q35', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, machine: { type: 'pc-i440fx-7.2' } }), 'InvalidDomain', 'spec.domain.machine.type', /q35/);
  });
  it('a wrongly typed field', () => {
    rejects(vmi({ memory: { guest: '64Mi' }, cpu: { cores: '2' } }), 'InvalidDomain', 'spec.domain.cpu.cores', /whole number/);
  });
  it('a socket path too long for a unix socket', () => {
    rejects(vmi({ memory: { guest: '64Mi' } }), 'UnpreparedInput', 'paths.qmpSocket', /must fit in 107/, { qmpSocket: `/${'x'.repeat(120)}/qmp.sock` });
  });
});

describe('buildQemuCommand details', () => {
  it('escapes commas in user values', () => {
    const object = vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: {}, serial: 'a,b' }] } }, [{ name: 'root', emptyDisk: {} }]);
    const command = build(object, { disks: { root: { name: 'root', file: '/data/odd,name.qcow2', format: 'qcow2' } } });
    assert.ok(command.args.includes('driver=file,filename=/data/odd,,name.qcow2,node-name=disk0-file,cache.direct=off,cache.no-flush=off,discard=unmap,read-only=off'), command.args.join(' '));
    assert.ok(command.args.some((arg) => arg.includes('serial=a,,b')));
  });
  it('picks the secure-boot NVRAM template only for secure boot', () => {
    assert.equal(efiVarsTemplate(vmi({ firmware: { bootloader: { efi: {} } } }), debianFacts), debianFacts.ovmfSecureBootVars);
    assert.equal(efiVarsTemplate(vmi({ firmware: { bootloader: { efi: { secureBoot: false } } } }), debianFacts), debianFacts.ovmfVars);
    assert.equal(efiVarsTemplate(vmi({ firmware: { bootloader: { bios: {} } } }), debianFacts), undefined);
  });
  it('uses one host thread per vCPU under TCG only when there are several of both', () => {
    const accel = (hostCpus: number, cores: number): string | undefined => {
      const args = buildQemuCommand(vmi({ memory: { guest: '64Mi' }, cpu: { cores } }), { ...debianFacts, hostCpus }, vmiPaths(vmi({}), '/run/x', { efi: false, kernelBoot: false })).args;
      return args[args.indexOf('-accel') + 1];
    };
    assert.equal(accel(8, 2), 'tcg,thread=multi');
    assert.equal(accel(8, 1), 'tcg,thread=single');
    assert.equal(accel(1, 2), 'tcg,thread=single');
  });
});

describe('buildQemuCommand NICs', () => {
  const object = vmi({ memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: {} }], interfaces: [{ name: 'default', masquerade: {} }] } }, [{ name: 'root', containerDisk: { image: 'x' } }]);
  it('a tap netdev and the device with its MAC, PCI slot and boot index; no warning', () => {
    const command = build(object, { disks: { root: { name: 'root', file: '/d/root.qcow2', format: 'qcow2' } }, nics: [{ name: 'default', tap: 'tap0', mac: '02:00:00:00:00:01', device: 'e1000e', pciAddress: '0000:00:0a.0', bootOrder: 2 }] });
    const netdev = command.args.indexOf('-netdev');
    assert.equal(command.args[netdev + 1], 'tap,id=hostua-default,ifname=tap0,script=no,downscript=no');
    assert.equal(command.args[netdev + 3], 'e1000e,netdev=hostua-default,id=ua-default,mac=02:00:00:00:00:01,bus=pcie.0,addr=0x0a.0,bootindex=2');
    assert.deepEqual(command.warnings.filter((w) => w.includes('interfaces')), []);
  });
  it('without a prepared NIC the interfaces are named in a warning', () => {
    const command = build(object, { disks: { root: { name: 'root', file: '/d/root.qcow2', format: 'qcow2' } } });
    assert.ok(!command.args.includes('-netdev'));
    assert.ok(command.warnings.some((w) => w.includes('spec.domain.devices.interfaces')));
  });
});
