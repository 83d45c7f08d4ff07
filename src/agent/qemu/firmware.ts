/**
 * `domain.firmware`: BIOS or EFI (OVMF in pflash, secure boot with SMM),
 * direct kernel boot, and the SMBIOS identity (uuid, serial, chassis, OEM
 * strings) KubeVirt gives a guest.
 */
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { invalidDomain, unpreparedInput } from './errors.js';
import { options } from './keyval.js';
import { SpecNode } from './spec-reader.js';
import type { NodeFacts } from './types.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// KubeVirt's default SMBIOS system identity (its `smbios` cluster configuration).
const smbiosSystem = { manufacturer: 'KubeVirt', product: 'None', family: 'KubeVirt' } as const;

/** True when the VMI boots EFI with secure boot (KubeVirt's default for `efi: {}` on x86). */
function secureBoot(efi: SpecNode): boolean {
  return efi.get('secureBoot').boolean() ?? true;
}

function efiNode(vmi: SpecNode): SpecNode {
  return vmi.get('spec').get('domain').get('firmware').get('bootloader').get('efi');
}

/**
 * The NVRAM template the agent copies to `VmiPaths.efiVars` before the first
 * start (and keeps when `efi.persistent`), or undefined for BIOS guests.
 */
export function efiVarsTemplate(vmi: unknown, facts: Pick<NodeFacts, 'ovmfVars' | 'ovmfSecureBootVars'>): string | undefined {
  const efi = efiNode(new SpecNode(vmi, ''));
  if (!efi.present) return undefined;
  return secureBoot(efi) ? facts.ovmfSecureBootVars : facts.ovmfVars;
}

function efiArgs(ctx: BuildContext, efi: SpecNode): string[] {
  const secure = secureBoot(efi);
  const vars = ctx.paths.efiVars;
  if (vars === undefined) throw unpreparedInput(efi.path, 'EFI boot needs a per-VMI NVRAM file (VmiPaths.efiVars), copied from efiVarsTemplate()');
  const code = secure ? ctx.facts.ovmfSecureBootCode : ctx.facts.ovmfCode;
  ctx.machine.pflash0 = 'firmware-code';
  ctx.machine.pflash1 = 'firmware-vars';
  const args = [
    '-blockdev', options(undefined, { driver: 'file', filename: code, 'node-name': 'firmware-code-file', 'read-only': true }),
    '-blockdev', options(undefined, { driver: 'raw', file: 'firmware-code-file', 'node-name': 'firmware-code', 'read-only': true }),
    '-blockdev', options(undefined, { driver: 'file', filename: vars, 'node-name': 'firmware-vars-file' }),
    '-blockdev', options(undefined, { driver: 'raw', file: 'firmware-vars-file', 'node-name': 'firmware-vars' }),
  ];
  if (secure) {
    // The secure-boot OVMF build only protects its variables when SMM is on and the flash is SMM-only.
    ctx.machine.smm = true;
    args.push('-global', 'driver=cfi.pflash01,property=secure,value=on');
  }
  return args;
}

function kernelBootArgs(ctx: BuildContext, kernelBoot: SpecNode): string[] {
  const container = kernelBoot.get('container');
  const kernelArgs = kernelBoot.get('kernelArgs').string();
  if (!container.present) {
    if (kernelArgs !== undefined) warn(ctx, kernelBoot.get('kernelArgs'), 'kernel arguments need a kernel (kernelBoot.container.kernelPath); ignored');
    return [];
  }
  const args: string[] = [];
  if (container.get('kernelPath').present) {
    if (ctx.paths.kernel === undefined) throw unpreparedInput(container.get('kernelPath').path, 'the kernel was not extracted from the kernelBoot image (VmiPaths.kernel)');
    args.push('-kernel', ctx.paths.kernel);
    if (kernelArgs !== undefined && kernelArgs !== '') args.push('-append', kernelArgs);
  } else if (kernelArgs !== undefined) {
    warn(ctx, kernelBoot.get('kernelArgs'), 'kernel arguments need a kernel (kernelBoot.container.kernelPath); ignored');
  }
  if (container.get('initrdPath').present) {
    if (ctx.paths.initrd === undefined) throw unpreparedInput(container.get('initrdPath').path, 'the initrd was not extracted from the kernelBoot image (VmiPaths.initrd)');
    args.push('-initrd', ctx.paths.initrd);
  }
  return args;
}

/** `-uuid`: `firmware.uuid`, else the VMI's own uid, so the guest sees one stable identity per VMI. */
function uuidArgs(ctx: BuildContext, vmiUid: string | undefined): string[] {
  const node = ctx.domain.get('firmware').get('uuid');
  const uuid = node.string() ?? vmiUid;
  if (uuid === undefined) return [];
  if (!uuidPattern.test(uuid)) throw invalidDomain(node.present ? node.path : 'metadata.uid', `"${uuid}" is not a UUID`);
  return ['-uuid', uuid.toLowerCase()];
}

function smbiosArgs(ctx: BuildContext): string[] {
  const firmware = ctx.domain.get('firmware');
  const args = ['-smbios', options(undefined, { type: 1, ...smbiosSystem, serial: firmware.get('serial').string() })];
  const chassis = ctx.domain.get('chassis');
  if (chassis.present) {
    const field = (key: string): string | undefined => chassis.get(key).string();
    args.push('-smbios', options(undefined, { type: 3, manufacturer: field('manufacturer'), version: field('version'), serial: field('serial'), asset: field('asset'), sku: field('sku') }));
  }
  for (const item of firmware.get('oemStrings').items()) {
    const value = item.string();
    if (value !== undefined) args.push('-smbios', options(undefined, { type: 11, value }));
  }
  return args;
}

/** Firmware, kernel boot, `-uuid` and `-smbios`; may set `-machine` properties. */
export function firmwareArgs(ctx: BuildContext, vmiUid: string | undefined): string[] {
  const firmware = ctx.domain.get('firmware');
  const bootloader = firmware.get('bootloader');
  const efi = bootloader.get('efi');
  const args: string[] = [];
  if (efi.present) {
    if (bootloader.get('bios').present) throw invalidDomain(bootloader.path, 'set either bios or efi, not both');
    args.push(...efiArgs(ctx, efi));
  } else if (bootloader.get('bios').get('useSerial').boolean() === true) {
    // SeaBIOS mirrors its screen on the first serial port when QEMU reports no graphics.
    ctx.machine.graphics = false;
  }
  args.push(...kernelBootArgs(ctx, firmware.get('kernelBoot')));
  if (firmware.get('acpi').present) warn(ctx, firmware.get('acpi'), 'custom ACPI tables (SLIC, MSDM) are not supported yet');
  return [...uuidArgs(ctx, vmiUid), ...smbiosArgs(ctx), ...args];
}
