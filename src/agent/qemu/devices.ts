/**
 * The devices around the disks: serial console, guest agent channel,
 * graphics and VNC, memory
 * balloon, RNG, input devices, watchdog and panic devices, and warnings
 * for the devices Vireo does not attach yet.
 */
import type { BuildContext } from './context.js';
import { warn } from './context.js';
import { invalidDomain } from './errors.js';
import { options } from './keyval.js';

/** The NICs on the taps the agent made (`-netdev tap` opens them by name in QEMU's own network namespace). */
function nicArgs(ctx: BuildContext): string[] {
  const args: string[] = [];
  for (const nic of ctx.paths.nics ?? []) {
    const slot = nic.pciAddress === undefined ? undefined : /^0000:00:([0-9a-fA-F]{2})\.([0-7])$/.exec(nic.pciAddress);
    args.push(
      '-netdev', options('tap', { id: `hostua-${nic.name}`, ifname: nic.tap, script: 'no', downscript: 'no' }),
      '-device', options(nic.device, {
        netdev: `hostua-${nic.name}`,
        id: `ua-${nic.name}`,
        mac: nic.mac,
        bus: slot === null || slot === undefined ? undefined : 'pcie.0',
        addr: slot === null || slot === undefined ? undefined : `0x${slot[1] ?? '0'}.${slot[2] ?? '0'}`,
        bootindex: nic.bootOrder,
        // KubeVirt boots from disks unless an interface asks: no iPXE ROM otherwise (and none exists for every model here).
        romfile: nic.bootOrder === undefined ? '' : undefined,
      }),
    );
  }
  return args;
}

const videoDrivers = { vga: 'VGA', bochs: 'bochs-display', virtio: 'virtio-vga', cirrus: 'cirrus-vga', ramfb: 'ramfb' } as const;
const namePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The serial console on a socket the agent relays, logged to `serialLog` when given. */
function serialArgs(ctx: BuildContext): string[] {
  if (ctx.domain.get('devices').get('autoattachSerialConsole').boolean() === false) return [];
  const chardev = options('socket', {
    id: 'charserial0',
    path: ctx.paths.serialSocket,
    server: true,
    wait: false,
    logfile: ctx.paths.serialLog,
    logappend: ctx.paths.serialLog === undefined ? undefined : true,
  });
  return ['-chardev', chardev, '-device', options('isa-serial', { chardev: 'charserial0', id: 'serial0' })];
}

/**
 * The guest agent's channel, which KubeVirt gives every VMI: a virtio-serial
 * port named `org.qemu.guest_agent.0` on a unix socket QEMU serves. A guest
 * without an agent simply never answers on it.
 */
function guestAgentArgs(ctx: BuildContext): string[] {
  const chardev = options('socket', { id: 'charchannel0', path: ctx.paths.guestAgentSocket, server: true, wait: false });
  return [
    '-chardev', chardev,
    '-device', options('virtio-serial-pci', { id: 'virtio-serial0' }),
    '-device', options('virtserialport', { bus: 'virtio-serial0.0', nr: 1, chardev: 'charchannel0', id: 'channel0', name: 'org.qemu.guest_agent.0' }),
  ];
}

function graphicsArgs(ctx: BuildContext): string[] {
  const devices = ctx.domain.get('devices');
  if (devices.get('autoattachGraphicsDevice').boolean() === false) {
    if (devices.get('video').present) warn(ctx, devices.get('video'), 'autoattachGraphicsDevice is false, so there is no video device');
    return [];
  }
  const type = devices.get('video').get('type').oneOf(['vga', 'bochs', 'virtio', 'cirrus', 'ramfb'] as const) ?? 'vga';
  // KubeVirt gives the VGA device 16 MiB of video memory.
  const video = options(videoDrivers[type], { id: 'video0', vgamem_mb: type === 'vga' ? 16 : undefined });
  return ['-device', video, '-vnc', `unix:${ctx.paths.vncSocket.replaceAll(',', ',,')}`];
}

/**
 * How often (seconds) QEMU asks the guest's balloon driver for its memory
 * statistics (the guest memory metrics): KubeVirt's default
 * `memBalloonStatsPeriod`, which virt-launcher gives libvirt's balloon.
 */
const balloonStatsPollingSeconds = 10;

function balloonArgs(ctx: BuildContext): string[] {
  if (ctx.domain.get('devices').get('autoattachMemBalloon').boolean() === false) return [];
  const hugepages = ctx.domain.get('memory').get('hugepages').present;
  // Free page reporting returns freed guest pages to the host; hugepage-backed memory cannot be handed back.
  return ['-device', options('virtio-balloon-pci', { id: 'balloon0', 'free-page-reporting': !hugepages, 'guest-stats-polling-interval': balloonStatsPollingSeconds })];
}

function rngArgs(ctx: BuildContext): string[] {
  if (!ctx.domain.get('devices').get('rng').present) return [];
  return ['-object', options('rng-random', { id: 'rng0', filename: '/dev/urandom' }), '-device', options('virtio-rng-pci', { rng: 'rng0', id: 'rng' })];
}

function inputArgs(ctx: BuildContext): string[] {
  const devices = ctx.domain.get('devices');
  const inputs = devices.get('inputs').items();
  const args: string[] = [];
  const add = (name: string, type: 'tablet' | 'keyboard', bus: 'usb' | 'virtio'): void => {
    if (bus === 'usb') {
      ctx.needsUsb = true;
      args.push('-device', options(type === 'tablet' ? 'usb-tablet' : 'usb-kbd', { bus: 'usb.0', id: `ua-${name}` }));
    } else {
      args.push('-device', options(type === 'tablet' ? 'virtio-tablet-pci' : 'virtio-keyboard-pci', { id: `ua-${name}` }));
    }
  };
  for (const input of inputs) {
    const name = input.get('name').string();
    if (name === undefined || !namePattern.test(name)) throw invalidDomain(input.get('name').path, 'every input device needs a name of letters, digits, ".", "_" or "-"');
    const type = input.get('type').oneOf(['tablet', 'keyboard'] as const);
    if (type === undefined) throw invalidDomain(input.get('type').path, 'set the input type: "tablet" or "keyboard"');
    add(name, type, input.get('bus').oneOf(['usb', 'virtio'] as const) ?? 'usb');
  }
  // KubeVirt's autoattachInputDevice adds a USB tablet when none is listed, so a VNC pointer tracks the cursor.
  if (inputs.length === 0 && devices.get('autoattachInputDevice').boolean() === true) add('default-0', 'tablet', 'usb');
  return args;
}

function watchdogArgs(ctx: BuildContext): string[] {
  const watchdog = ctx.domain.get('devices').get('watchdog');
  if (!watchdog.present) return [];
  const name = watchdog.get('name').string();
  if (name === undefined || !namePattern.test(name)) throw invalidDomain(watchdog.get('name').path, 'the watchdog needs a name of letters, digits, ".", "_" or "-"');
  const i6300esb = watchdog.get('i6300esb');
  if (!i6300esb.present) throw invalidDomain(watchdog.path, 'set the watchdog model: i6300esb (the one x86 model)');
  ctx.actions.watchdog = i6300esb.get('action').oneOf(['poweroff', 'reset', 'shutdown'] as const) ?? 'reset';
  return ['-device', options('i6300esb', { id: `ua-${name}` })];
}

function panicArgs(ctx: BuildContext): string[] {
  const args: string[] = [];
  for (const [index, device] of ctx.domain.get('devices').get('panicDevices').items().entries()) {
    const model = device.get('model').oneOf(['isa', 'pvpanic', 'hyperv'] as const) ?? 'isa';
    if (model === 'isa') args.push('-device', options('pvpanic', { id: `panic${index}` }));
    else if (model === 'pvpanic') args.push('-device', options('pvpanic-pci', { id: `panic${index}` }));
    else warn(ctx, device.get('model'), 'the Hyper-V crash MSRs are not supported yet');
  }
  return args;
}

const unsupportedDevices: readonly (readonly [string, string])[] = [
  ['gpus', 'GPU passthrough is not supported'],
  ['hostDevices', 'host device passthrough is not supported'],
  ['filesystems', 'virtiofs filesystems are not supported yet'],
  ['tpm', 'a TPM needs swtpm, not supported yet'],
  ['sound', 'sound devices are not supported yet'],
  ['clientPassthrough', 'USB redirection is not supported'],
  ['downwardMetrics', 'downward metrics are not supported yet'],
];

/** Warnings for devices and features that are not attached, so nothing is dropped silently. */
function unsupportedWarnings(ctx: BuildContext): void {
  const devices = ctx.domain.get('devices');
  for (const [field, why] of unsupportedDevices) {
    const node = devices.get(field);
    if (node.present && !(Array.isArray(node.value) && node.value.length === 0)) warn(ctx, node, why);
  }
  if (devices.get('interfaces').items().length > 0 && (ctx.paths.nics ?? []).length === 0) warn(ctx, devices.get('interfaces'), 'the agent prepared no NIC for these interfaces; the guest has none');
  if (devices.get('autoattachVSOCK').boolean() === true) warn(ctx, devices.get('autoattachVSOCK'), 'VSOCK is not supported yet');
  if (ctx.domain.get('launchSecurity').present) warn(ctx, ctx.domain.get('launchSecurity'), 'confidential computing (SEV, TDX) is not supported');
}

/** Device arguments other than disks; the USB controller is added by the caller when `ctx.needsUsb`. */
export function deviceArgs(ctx: BuildContext): string[] {
  unsupportedWarnings(ctx);
  return [
    ...serialArgs(ctx),
    ...nicArgs(ctx),
    ...guestAgentArgs(ctx),
    ...graphicsArgs(ctx),
    ...inputArgs(ctx),
    ...balloonArgs(ctx),
    ...rngArgs(ctx),
    ...watchdogArgs(ctx),
    ...panicArgs(ctx),
  ];
}
