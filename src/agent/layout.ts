/**
 * Where a VMI's runtime files live on the node: one directory per VMI uid
 * under `<dataDir>/vmis/`, holding QEMU's sockets, its pid and log, the
 * disks made for it, and a record naming the VMI. The directory is the
 * agent's memory across restarts: what it finds there is what runs.
 */
import { statSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isPlainObject } from '../api/object.js';

/** The files of one VMI's directory. */
export interface VmiLayout {
  dir: string;
  /** {@link VmiRecord} as JSON. */
  recordFile: string;
  qmpSocket: string;
  serialSocket: string;
  vncSocket: string;
  /** The guest agent's channel; QEMU listens, the agent connects (see guest-agent.ts). */
  guestAgentSocket: string;
  pidFile: string;
  /** QEMU's stdout and stderr. */
  qemuLog: string;
  /** The kept serial console output (current part; the older part is `serialLog + '.1'`). */
  serialLog: string;
  /** Exists once QEMU reported that the guest powered itself off (so a restart knows it was not a crash). */
  guestShutdownMarker: string;
  /** Disks and ISOs made for the VMI. */
  disksDir: string;
}

/** What the agent writes next to a QEMU it started, to find the VMI again after a restart. */
export interface VmiRecord {
  namespace: string;
  name: string;
  uid: string;
  /** The QEMU process, once spawned. */
  pid?: number;
  accel: 'kvm' | 'tcg';
  /** Why that accelerator (goes into the SoftwareEmulation condition). */
  accelReason: string;
  /** When QEMU was spawned (RFC 3339). */
  startedAt: string;
}

/** Linux's limit for a unix socket path (sun_path is 108 bytes with its NUL). */
const maxSocketPathBytes = 107;

/** The directory holding one directory per VMI uid. */
export function vmisRoot(dataDir: string): string {
  return join(dataDir, 'vmis');
}

/** The files of the VMI with `uid`. */
export function vmiLayout(dataDir: string, uid: string): VmiLayout {
  const dir = join(vmisRoot(dataDir), uid);
  return {
    dir,
    recordFile: join(dir, 'vmi.json'),
    qmpSocket: join(dir, 'qmp.sock'),
    serialSocket: join(dir, 'serial.sock'),
    vncSocket: join(dir, 'vnc.sock'),
    guestAgentSocket: join(dir, 'qga.sock'),
    pidFile: join(dir, 'qemu.pid'),
    qemuLog: join(dir, 'qemu.log'),
    serialLog: join(dir, 'serial.log'),
    guestShutdownMarker: join(dir, 'guest-shutdown'),
    disksDir: join(dir, 'disks'),
  };
}

/**
 * Throws when the data directory is so deep that QEMU's sockets cannot be
 * bound there; checked once at start so no VMI fails later for it.
 */
export function checkSocketPaths(dataDir: string): void {
  const sample = vmiLayout(dataDir, '00000000-0000-0000-0000-000000000000');
  for (const path of [sample.qmpSocket, sample.serialSocket, sample.vncSocket, sample.guestAgentSocket]) {
    if (Buffer.byteLength(path) > maxSocketPathBytes) {
      throw new Error(`the agent data directory ${dataDir} is too deep for unix sockets (${path} is longer than ${maxSocketPathBytes} bytes): use a shorter --data-dir`);
    }
  }
}

/** Creates the VMI directory (owner-only: it holds the guest's disks and console). */
export async function createVmiDir(layout: VmiLayout): Promise<void> {
  await mkdir(layout.dir, { recursive: true, mode: 0o700 });
  await mkdir(layout.disksDir, { recursive: true, mode: 0o700 });
}

/** Writes the record that names the VMI of a directory. */
export async function writeRecord(layout: VmiLayout, record: VmiRecord): Promise<void> {
  // Written aside and renamed so a crash never leaves half a record.
  const tmp = `${layout.recordFile}.tmp`;
  await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, layout.recordFile);
}

/** The record of a VMI directory; undefined when it is missing or not a record. */
export async function readRecord(layout: VmiLayout): Promise<VmiRecord | undefined> {
  let text: string;
  try {
    text = await readFile(layout.recordFile, 'utf8');
  } catch {
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  return parseRecord(parsed);
}

function parseRecord(value: unknown): VmiRecord | undefined {
  if (!isPlainObject(value)) return undefined;
  const { namespace, name, uid, pid, accel, accelReason, startedAt } = value;
  if (typeof namespace !== 'string' || typeof name !== 'string' || typeof uid !== 'string') return undefined;
  if (accel !== 'kvm' && accel !== 'tcg') return undefined;
  if (typeof startedAt !== 'string') return undefined;
  const record: VmiRecord = { namespace, name, uid, accel, accelReason: typeof accelReason === 'string' ? accelReason : '', startedAt };
  if (typeof pid === 'number' && Number.isInteger(pid) && pid > 0) record.pid = pid;
  return record;
}

/**
 * Removes what the VMI no longer needs on the node. With `keepSerialLog`,
 * the kept console output (and the record naming its VMI) stays, for
 * `vireo logs` of a guest that has ended; true when there is such a log.
 */
export async function removeVmiFiles(layout: VmiLayout, options: { keepSerialLog: boolean }): Promise<boolean> {
  const kept = new Set([basename(layout.serialLog), `${basename(layout.serialLog)}.1`, basename(layout.recordFile)]);
  if (!options.keepSerialLog || !hasOutput(layout.serialLog)) {
    await rm(layout.dir, { recursive: true, force: true });
    return false;
  }
  for (const entry of await readdir(layout.dir)) {
    if (!kept.has(entry)) await rm(join(layout.dir, entry), { recursive: true, force: true });
  }
  return true;
}

function hasOutput(logFile: string): boolean {
  for (const file of [logFile, `${logFile}.1`]) {
    try {
      if (statSync(file).size > 0) return true;
    } catch {
      // no such part
    }
  }
  return false;
}
