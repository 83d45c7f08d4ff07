/**
 * What `buildQemuCommand` takes besides the VMI (the node's facts and the
 * files the agent prepared) and what it gives back.
 */

/** Facts about the node, resolved once by the agent at start. */
export interface NodeFacts {
  /** From `probeAccelerator` (or forced to `tcg` by `developerConfiguration.useEmulation`). */
  accel: 'kvm' | 'tcg';
  qemuBinary: string;
  /** OVMF code for `bootloader.efi` without secure boot. */
  ovmfCode: string;
  /** The NVRAM template that goes with `ovmfCode`. */
  ovmfVars: string;
  /** OVMF code built with secure boot (needs SMM). */
  ovmfSecureBootCode: string;
  /** The NVRAM template with Microsoft's keys enrolled, for `ovmfSecureBootCode`. */
  ovmfSecureBootVars: string;
  hostCpus: number;
  /**
   * The start time, needed only for `clock.utc.offsetSeconds` (QEMU takes an
   * absolute RTC base). Without it such an offset is ignored with a warning.
   */
  now?: Date;
}

/** A file backing one volume, prepared by the agent (overlay, ISO, empty disk…). */
export interface DiskSource {
  /** The volume name (KubeVirt matches disks to volumes by name). */
  name: string;
  file: string;
  format: 'qcow2' | 'raw';
  readOnly?: boolean;
  /** The file is a host block device (`host_device` driver; `lun` disks become `scsi-block`). */
  blockDevice?: boolean;
  /**
   * Whether the file's filesystem takes O_DIRECT, as the agent probed it.
   * KubeVirt defaults `cache` to `none` when it does, else `writethrough`;
   * unknown counts as no.
   */
  directIo?: boolean;
  /**
   * A LUKS-encrypted volume (qcow2 with LUKS payload encryption, or raw
   * LUKS): its key, sealed with the VMI's master key (`VmiPaths.masterKey`),
   * so the key itself never appears on the command line or in a file.
   */
  encryption?: { format: 'luks'; key: SealedSecret };
}

/** One NIC: a tap the agent made, and the guest device on it. */
export interface NicSource {
  /** `interfaces[].name`. */
  name: string;
  /** The tap's name in QEMU's network namespace. */
  tap: string;
  mac: string;
  /** QEMU's device driver, e.g. `virtio-net-pci`. */
  device: string;
  /** `0000:00:SS.F` on the root bus. */
  pciAddress?: string;
  bootOrder?: number;
}

/** A secret encrypted with AES-256-CBC under the VMI's master key, as QEMU's `secret` object takes it (`keyid`, `iv`). */
export interface SealedSecret {
  /** Base64 ciphertext. */
  data: string;
  /** Base64 of the 16-byte initialisation vector. */
  iv: string;
}

/** Where the VMI's files live on the node. Socket paths must fit in 107 bytes. */
export interface VmiPaths {
  dir: string;
  qmpSocket: string;
  serialSocket: string;
  vncSocket: string;
  /** The guest agent's channel (virtio-serial port `org.qemu.guest_agent.0`), served by QEMU. */
  guestAgentSocket: string;
  pidFile: string;
  /**
   * The serial output kept for `vireo logs` (KubeVirt's `logSerialConsole`);
   * QEMU appends to it whether or not anyone is attached to the console.
   */
  serialLog?: string;
  /** This VMI's copy of the NVRAM template named by `efiVarsTemplate`. */
  efiVars?: string;
  /** By volume name. */
  disks: Record<string, DiskSource>;
  /** The VMI's 32-byte master key (raw), which unseals the disks' keys; needed when a disk is encrypted. */
  masterKey?: string;
  /** The NICs, each on a tap the agent made in the VMI's sandbox (QEMU runs inside that network namespace). */
  nics?: NicSource[];
  /** `firmware.kernelBoot` files, extracted by the agent. */
  kernel?: string;
  initrd?: string;
}

/** A QEMU invocation: run `binary` with `args` and, on top of the agent's environment, `env`. */
export interface QemuCommand {
  binary: string;
  args: string[];
  /** Extra environment (e.g. `TZ` for `clock.timezone`). */
  env: Record<string, string>;
  /** Fields of the spec that were not applied, each naming the field and why. */
  warnings: string[];
}
