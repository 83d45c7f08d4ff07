/**
 * The baseline of the boot benchmark: the QEMU command line the agent
 * really ran (read from /proc while the guest runs), re-run by hand as a
 * bare `qemu-system-x86_64` with fresh disks, timed from spawn to the
 * first cloud-init line on its serial socket.
 *
 * What differs from the agent's run, and nothing else:
 * - `-S` is dropped: the agent starts QEMU stopped, attaches the console,
 *   then sends `cont` over QMP; the bare QEMU runs from its first instruction;
 * - every path under the VMI's directory (pidfile, QMP, serial and VNC
 *   sockets, disks) points at a directory of the bare run instead;
 * - the disks are made before the clock starts: a fresh qcow2 overlay on
 *   the same image-store blob (`qemu-img create`, as the agent does), and a
 *   copy of the agent's cloud-init ISO (the agent makes both inside its time);
 * - nobody connects to the QMP and VNC sockets; this process connects to
 *   the serial socket (retrying every 5 ms until QEMU has created it, long
 *   before the guest's kernel starts), where the agent holds that
 *   connection and also writes the output to `serial.log`.
 * The environment is QEMU's own, read from /proc/<pid>/environ.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { hasCloudInitLine } from './vm-guest.js';
import { cmdlineOf, environOf, sleep } from './vm-proc.js';

const run = promisify(execFile);

/** The QEMU the agent started for one VMI, as the kernel saw it. */
export interface AgentQemu {
  pid: number;
  binary: string;
  args: string[];
  env: Record<string, string>;
  /** The VMI's directory on the node (`<dataDir>/agent/vmis/<uid>`). */
  vmiDir: string;
}

/** A bare QEMU command ready to run. */
export interface BareCommand {
  binary: string;
  args: string[];
  env: Record<string, string>;
  serialSocket: string;
}

/** Reads the QEMU of the VMI directory `vmiDir` from its pid file and /proc. */
export function readAgentQemu(vmiDir: string): AgentQemu {
  const pid = Number(readFileSync(join(vmiDir, 'qemu.pid'), 'utf8').trim());
  const argv = cmdlineOf(pid);
  const env = environOf(pid);
  const binary = argv?.[0];
  if (argv === undefined || env === undefined || binary === undefined) throw new Error(`QEMU ${pid} of ${vmiDir} is gone: cannot read its command line`);
  return { pid, binary, args: argv.slice(1), env, vmiDir };
}

/** The value of `key` in a QEMU `a=b,c=d` option string (`,,` is an escaped comma). */
function optionValue(option: string, key: string): string | undefined {
  const match = new RegExp(`(?:^|,)${key}=((?:[^,]|,,)*)`).exec(option);
  return match?.[1]?.replaceAll(',,', ',');
}

interface ImageInfo {
  format: string;
  virtualSize: number;
  backing?: { file: string; format: string };
}

async function imageInfo(file: string): Promise<ImageInfo> {
  // -U: the agent's QEMU holds the image's lock while it runs.
  const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', file]);
  const info: unknown = JSON.parse(stdout);
  if (typeof info !== 'object' || info === null) throw new Error(`qemu-img info ${file}: not an object`);
  const format = 'format' in info && typeof info.format === 'string' ? info.format : undefined;
  const size = 'virtual-size' in info && typeof info['virtual-size'] === 'number' ? info['virtual-size'] : undefined;
  if (format === undefined || size === undefined) throw new Error(`qemu-img info ${file}: no format or virtual-size`);
  const backingFile = 'full-backing-filename' in info && typeof info['full-backing-filename'] === 'string' ? info['full-backing-filename'] : undefined;
  const backingFormat = 'backing-filename-format' in info && typeof info['backing-filename-format'] === 'string' ? info['backing-filename-format'] : undefined;
  return { format, virtualSize: size, ...(backingFile === undefined ? {} : { backing: { file: backingFile, format: backingFormat ?? 'raw' } }) };
}

/** A fresh copy of a disk of the agent's run at `to`: a new overlay for qcow2, a byte copy otherwise (the cloud-init ISO). */
async function freshDisk(from: string, to: string): Promise<void> {
  const info = await imageInfo(from);
  if (info.format === 'qcow2' && info.backing !== undefined) {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', info.backing.format, '-b', info.backing.file, to]);
  } else if (info.format === 'qcow2') {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', to, String(info.virtualSize)]);
  } else {
    await copyFile(from, to);
  }
}

/**
 * The agent's command with the differences listed in the module comment,
 * its disks made fresh under `dir`. Call it while the agent's QEMU runs
 * (its files go with the VMI).
 */
export async function prepareBare(qemu: AgentQemu, dir: string): Promise<BareCommand> {
  await mkdir(join(dir, 'disks'), { recursive: true, mode: 0o700 });
  const moved = (path: string): string => path.replaceAll(qemu.vmiDir, dir);
  for (const arg of qemu.args) {
    const file = arg.startsWith('driver=file,') ? optionValue(arg, 'filename') : undefined;
    if (file?.startsWith(`${qemu.vmiDir}/`) === true) await freshDisk(file, moved(file));
  }
  const args = qemu.args.filter((a) => a !== '-S').map(moved);
  const serial = args.find((a) => a.startsWith('socket,') && optionValue(a, 'id') === 'charserial0');
  const serialSocket = serial === undefined ? undefined : optionValue(serial, 'path');
  if (serialSocket === undefined) throw new Error(`the agent's QEMU has no serial socket chardev: ${qemu.args.join(' ')}`);
  return { binary: qemu.binary, args, env: qemu.env, serialSocket };
}

/** Connects to `path`, retrying every 5 ms until it accepts. */
async function connectWhenListening(path: string, deadline: number, failed: () => string | undefined): Promise<Socket> {
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect(path);
        socket.once('connect', () => { resolve(socket); });
        socket.once('error', reject);
      });
    } catch (err) {
      const why = failed();
      if (why !== undefined) throw new Error(why);
      if (performance.now() >= deadline) throw new Error(`QEMU's serial socket ${path} did not accept a connection: ${String(err)}`);
      await sleep(5);
    }
  }
}

/**
 * Runs `command` and resolves with the milliseconds from spawn to the
 * first cloud-init line on the serial socket; QEMU is killed after.
 */
export async function timeBareBoot(command: BareCommand, timeoutMs: number): Promise<number> {
  const start = performance.now();
  const deadline = start + timeoutMs;
  const child = spawn(command.binary, command.args, { stdio: ['ignore', 'ignore', 'pipe'], env: command.env });
  let stderr = '';
  let exit: string | undefined;
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = `bare QEMU exited (${String(code ?? signal)}) before the first cloud-init line:\n${stderr}`;
      resolve();
    });
  });
  let socket: Socket | undefined;
  try {
    socket = await connectWhenListening(command.serialSocket, deadline, () => exit);
    const serial = socket;
    return await new Promise<number>((resolve, reject) => {
      let tail = '';
      const timer = setTimeout(() => { reject(new Error(`bare QEMU: no cloud-init line within ${timeoutMs} ms`)); }, Math.max(0, deadline - performance.now()));
      serial.on('data', (chunk: Buffer) => {
        const text = tail + chunk.toString('latin1');
        if (hasCloudInitLine(text)) {
          clearTimeout(timer);
          resolve(performance.now() - start);
        }
        tail = ` ${text.slice(-16)}`;
      });
      serial.once('close', () => {
        clearTimeout(timer);
        reject(new Error(exit ?? 'bare QEMU closed its serial socket'));
      });
    });
  } finally {
    socket?.destroy();
    child.kill('SIGKILL');
    await exited;
  }
}
