/**
 * The QEMU command line of a VMI: a pure function of the VMI, the node's
 * facts and the paths the agent prepared, mapping KubeVirt's
 * `spec.domain` as KubeVirt's converter does (via libvirt) but straight
 * to QEMU arguments.
 *
 * Decisions worth knowing:
 * - No `-no-shutdown`: when the guest powers off, QEMU exits (after the
 *   `SHUTDOWN` event), so the agent learns it from the process and the
 *   event's `reason`, and nothing lingers. Reboots stay inside QEMU unless
 *   `rebootPolicy: Terminate` (then `-action reboot=shutdown`).
 * - `-nodefaults`: only the devices the spec asks for, with KubeVirt's
 *   defaults (serial console, VGA + VNC, balloon) added explicitly.
 * - `-S` only for `startStrategy: Paused`; the agent may add it itself when
 *   it wants to attach before the guest runs.
 */
import type { KObject } from '../../api/object.js';
import { clockArgs } from './clock.js';
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { cpuArgs } from './cpu.js';
import { deviceArgs } from './devices.js';
import { diskArgs } from './disk-devices.js';
import { invalidDomain, unpreparedInput } from './errors.js';
import { firmwareArgs } from './firmware.js';
import { options } from './keyval.js';
import { memoryArgs } from './memory.js';
import { SpecNode } from './spec-reader.js';
import type { NodeFacts, QemuCommand, VmiPaths } from './types.js';

export type { DiskSource, NodeFacts, QemuCommand, VmiPaths } from './types.js';

// sun_path holds 108 bytes including the terminating NUL.
const maxSocketPathBytes = 107;

// Sandbox as libvirt does: no obsolete syscalls, no setuid, no fork/exec, no scheduler or affinity changes.
const sandbox = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

function checkPaths(paths: VmiPaths): void {
  for (const key of ['qmpSocket', 'serialSocket', 'vncSocket', 'guestAgentSocket'] as const) {
    const bytes = Buffer.byteLength(paths[key]);
    if (bytes > maxSocketPathBytes) throw unpreparedInput(`paths.${key}`, `${paths[key]} is ${bytes} bytes long; a unix socket path must fit in ${maxSocketPathBytes}: use a shorter VMI directory`);
  }
}

/** `q35`, or a versioned `pc-q35-*` type; RHEL's versioned types (KubeVirt's default on RHEL) fall back to `q35`. */
function machineType(ctx: BuildContext): string {
  const node = ctx.domain.get('machine').get('type');
  const type = node.string() ?? '';
  if (type === '' || type === 'q35') return 'q35';
  if (/^pc-q35-\d+\.\d+$/.test(type)) return type;
  if (/^pc-q35-rhel[0-9.]+$/.test(type)) {
    warn(ctx, node, `${type} is a RHEL machine type this QEMU does not have; q35 is used`);
    return 'q35';
  }
  throw invalidDomain(node.path, `"${type}" is not supported: Vireo runs x86_64 guests on q35 machines ("q35" or "pc-q35-<version>")`);
}

/** `domain.features` that are machine properties: ACPI, SMM, APIC. */
function machineFeatures(ctx: BuildContext): void {
  const features = ctx.domain.get('features');
  if (!features.get('acpi').enabled(true)) ctx.machine.acpi = false;
  const smm = features.get('smm');
  if (smm.present) {
    const on = smm.enabled(true);
    if (!on && ctx.machine.smm === true) throw invalidDomain(smm.path, 'EFI secure boot needs SMM: enable it, or set firmware.bootloader.efi.secureBoot to false');
    ctx.machine.smm = on;
  }
  const apic = features.get('apic');
  if (apic.present && !apic.enabled(true)) warn(ctx, apic, 'a q35 machine always has an APIC; it stays');
  if (apic.get('endOfInterrupt').boolean() === true) warn(ctx, apic.get('endOfInterrupt'), 'not supported yet');
}

function bootArgs(ctx: BuildContext, paused: boolean): string[] {
  const props: Record<string, string | number | boolean> = {};
  // KubeVirt boots only the devices that have a boot order once any has one.
  if (ctx.domain.get('devices').get('disks').items().some((disk) => disk.get('bootOrder').present)) props.strict = true;
  // A guest that starts paused gets KubeVirt's 10 s boot menu, time to attach VNC and pick a device.
  if (paused) Object.assign(props, { menu: true, 'splash-time': 10_000 });
  return Object.keys(props).length === 0 ? [] : ['-boot', options(undefined, props)];
}

/**
 * The command that runs `vmi`'s guest on this node. Throws a
 * `DomainConfigError` when the spec cannot run (`InvalidDomain`, with the
 * field) or the agent has not prepared a file it needs (`UnpreparedInput`);
 * fields it does not apply are listed in `warnings`.
 */
export function buildQemuCommand(vmi: KObject, facts: NodeFacts, paths: VmiPaths): QemuCommand {
  checkPaths(paths);
  const spec = new SpecNode(vmi.spec, 'spec');
  const ctx: BuildContext = {
    facts,
    paths,
    spec,
    domain: spec.get('domain'),
    machine: {},
    actions: {},
    env: {},
    warnings: [],
    vcpus: 1,
    needsUsb: false,
  };
  const type = machineType(ctx);
  const cpu = cpuArgs(ctx);
  const memory = memoryArgs(ctx);
  const firmware = firmwareArgs(ctx, vmi.metadata.uid);
  machineFeatures(ctx);
  const clock = clockArgs(ctx);
  const disks = diskArgs(ctx);
  const devices = deviceArgs(ctx);
  const paused = spec.get('startStrategy').oneOf(['Paused'] as const) === 'Paused';
  if (spec.get('domain').get('rebootPolicy').oneOf(['Reboot', 'Terminate'] as const) === 'Terminate') ctx.actions.reboot = 'shutdown';

  const guestName = `${vmi.metadata.namespace ?? 'default'}_${vmi.metadata.name ?? ''}`;
  const args = [
    '-name', options(undefined, { guest: guestName, 'debug-threads': true }),
    '-msg', 'timestamp=on',
    '-nodefaults',
    '-no-user-config',
    '-sandbox', sandbox,
    '-pidfile', paths.pidFile,
    '-qmp', options(`unix:${paths.qmpSocket}`, { server: true, wait: false }),
    '-display', 'none',
    '-machine', options(type, { 'dump-guest-core': false, vmport: false, ...ctx.machine }),
    ...cpu,
    ...memory,
    ...firmware,
    ...clock,
    ...bootArgs(ctx, paused),
    ...(Object.keys(ctx.actions).length === 0 ? [] : ['-action', options(undefined, ctx.actions)]),
    ...(ctx.needsUsb ? ['-device', options('qemu-xhci', { id: 'usb' })] : []),
    ...disks,
    ...devices,
    ...(paused ? ['-S'] : []),
  ];
  return { binary: facts.qemuBinary, args, env: ctx.env, warnings: ctx.warnings };
}
