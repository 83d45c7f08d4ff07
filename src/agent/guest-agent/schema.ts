/**
 * The QEMU guest agent's replies that Vireo reads, as decoders: a reply
 * passes its schema before it becomes typed (see `../qmp/decode.ts`).
 * Unknown fields are dropped; qemu-ga adds some between versions.
 */
import { DecodeError, array, boolean, integer, object, oneOf, string } from '../qmp/decode.js';
import type { Decoded, Decoder } from '../qmp/decode.js';

/** `guest-info`: the agent's version and which commands it has enabled. */
export const guestInfo = object({ version: string, supported_commands: array(object({ name: string, enabled: boolean })) });
export type GuestInfo = Decoded<typeof guestInfo>;

/** `guest-get-osinfo`: the kernel's fields always, the rest from the guest's os-release when it has one. */
export const guestOsInfo = object(
  {},
  {
    'kernel-release': string,
    'kernel-version': string,
    machine: string,
    id: string,
    name: string,
    'pretty-name': string,
    version: string,
    'version-id': string,
  },
);
export type GuestOsInfo = Decoded<typeof guestOsInfo>;

/** A finite JSON number (the guest's load averages are fractions). */
const finiteNumber: Decoder<number> = (value, path) => {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new DecodeError(path, 'a number', value);
  return value;
};

/**
 * `guest-get-fsinfo`: the guest's mounted filesystems on block devices.
 * `total-bytes` and `used-bytes` are missing where the guest cannot say
 * (qemu-ga before 5.0, a filesystem `statvfs` fails on).
 */
export const guestFsInfo = array(object({ name: string, mountpoint: string, type: string }, { 'total-bytes': integer, 'used-bytes': integer }));
export type GuestFsInfo = Decoded<typeof guestFsInfo>;

/** `guest-get-load` (qemu-ga 10.0 and later): the guest kernel's load averages. */
export const guestLoad = object({ load1m: finiteNumber, load5m: finiteNumber, load15m: finiteNumber });
export type GuestLoad = Decoded<typeof guestLoad>;

/** `guest-get-host-name`. */
export const guestHostName = object({ 'host-name': string });

/** `guest-fsfreeze-status`. */
export const fsFreezeStatus = oneOf('thawed', 'frozen');
export type FsFreezeStatus = Decoded<typeof fsFreezeStatus>;

/** `guest-fsfreeze-freeze` and `-thaw`: how many filesystems changed state. */
export const fsCount: Decoder<number> = integer;

/** An error reply: `{"error": {"class", "desc"}}`. */
export const errorBody = object({ class: string, desc: string });
