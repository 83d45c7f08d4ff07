/**
 * What an image file is, from its bytes rather than its name (a `.img`
 * may be qcow2, a `.qcow2` may be gzipped): the compressions an import
 * unwraps, and the disk formats `qemu-img` reads.
 */

/** A compression wrapping the image. */
export type Compression = 'gzip' | 'xz';

/** A disk format as `qemu-img -f` names it; an ISO is read as `raw`. */
export type DiskFormat = 'qcow2' | 'raw' | 'vmdk' | 'vdi' | 'vpc' | 'vhdx';

/** What the first bytes say. */
export type Detected = { kind: 'compressed'; compression: Compression } | { kind: 'disk'; format: DiskFormat; iso: boolean };

/** How many leading bytes {@link detect} wants; a VHD's footer is also looked for at the end. */
export const headerBytes = 0x8006;

/**
 * The format of an image whose first bytes are `head` (up to
 * {@link headerBytes}) and last 512 bytes `tail` (a fixed VHD has its
 * only signature there). Anything unrecognised is raw.
 */
export function detect(head: Buffer, tail?: Buffer): Detected {
  const starts = (bytes: number[] | string, at = 0): boolean => {
    const magic = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes);
    return head.length >= at + magic.length && head.subarray(at, at + magic.length).equals(magic);
  };
  if (starts([0x1f, 0x8b])) return { kind: 'compressed', compression: 'gzip' };
  if (starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return { kind: 'compressed', compression: 'xz' };
  if (starts('QFI\xfb')) return disk('qcow2');
  if (starts('KDMV') || starts('# Disk DescriptorFile')) return disk('vmdk');
  if (starts([0x7f, 0x10, 0xda, 0xbe], 0x40)) return disk('vdi');
  if (starts('vhdxfile')) return disk('vhdx');
  if (starts('conectix')) return disk('vpc');
  if (tail !== undefined && tail.length >= 512 && tail.subarray(tail.length - 512, tail.length - 504).equals(Buffer.from('conectix'))) return disk('vpc');
  // ISO 9660: "CD001" in the primary volume descriptor at sector 16.
  const iso = starts('CD001', 0x8001);
  return { kind: 'disk', format: 'raw', iso };
}

function disk(format: DiskFormat): Detected {
  return { kind: 'disk', format, iso: false };
}
