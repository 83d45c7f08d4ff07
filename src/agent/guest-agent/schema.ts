/**
 * The QEMU guest agent's replies that Vireo reads, as decoders: a reply
 * passes its schema before it becomes typed (see `../qmp/decode.ts`).
 * Unknown fields are dropped; qemu-ga adds some between versions.
 */
import { array, boolean, integer, object, oneOf, string } from '../qmp/decode.js';
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

/** `guest-get-host-name`. */
export const guestHostName = object({ 'host-name': string });

/** `guest-fsfreeze-status`. */
export const fsFreezeStatus = oneOf('thawed', 'frozen');
export type FsFreezeStatus = Decoded<typeof fsFreezeStatus>;

/** `guest-fsfreeze-freeze` and `-thaw`: how many filesystems changed state. */
export const fsCount: Decoder<number> = integer;

/** An error reply: `{"error": {"class", "desc"}}`. */
export const errorBody = object({ class: string, desc: string });
