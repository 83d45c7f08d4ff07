/**
 * The baseline of bench:migration: the same live migration driven by hand
 * with QEMU monitor commands, no controller and no agents. A guest is a
 * QEMU started with a command line copied from one Vireo started (only its
 * directory changes), inside a lab host's network namespace; a migration
 * starts a second QEMU with the same command line and `-incoming defer` in
 * the other host, exports its fresh writable disks over NBD, mirrors the
 * source's disks into them (`blockdev-mirror`, sync full), then migrates
 * the memory with the capabilities and parameters the Vireo agents set
 * (late-block-activate on the target; on the source pause-before-switchover
 * and, as the Vireo migration it is compared with resolved them, auto-converge,
 * post-copy and the bandwidth: unlimited unless a policy limits it), finishes the mirrors with the
 * guest paused, switches over and resumes the guest on the target. As with
 * Vireo's default, the NBD connections and the stream go over TLS
 * (`tls-creds-x509` on both sides, verify-peer; `tls: false` for plain TCP).
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { copyFile, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { QmpClient } from '../src/agent/qmp/index.js';
import { spawnQemu, signalQemu } from '../src/agent/qemu-process.js';
import type { HostsLab, LabHost } from '../src/testing/hosts-lab.js';
import { ensurePki } from '../src/cli/pki.js';
import { OpenSslIssuer } from '../src/net/certificate-issuer.js';
import type { IssuedCertificate } from '../src/net/certificate-issuer.js';
import { writeCredentials } from '../src/agent/migration/tls-creds.js';

/** How often the driver asks QEMU how far the mirrors and the migration are. */
const pollMs = 20;

/** `max-bandwidth` for "unlimited", as the Vireo source agent sets it. */
const unlimitedBytesPerSecond = 10 * 1024 ** 3;

/** A command line to copy: QEMU's argv and the guest directory it names. */
export interface QemuTemplate {
  binary: string;
  args: string[];
  /** The guest's directory in `args` (QMP socket, disks, logs); each copy gets its own. */
  dir: string;
  /** What each file in its `disks` directory is made of. */
  disks: DiskRecipe[];
}

/** How a copy's disk is made: an overlay on a backing image, an empty qcow2, or a copy of a file. */
export type DiskRecipe = { name: string } & ({ backing: string; backingFormat: string } | { size: number } | { copyOf: string });

/** One plain QEMU guest: its process, its monitor and its directory. */
export interface PlainGuest {
  host: LabHost;
  dir: string;
  pid: number;
  qmp: QmpClient;
}

/** The settings of the Vireo migration a baseline one copies (its VMI's resolved `migrationConfiguration`). */
export interface PlainSettings {
  autoConverge: boolean;
  postCopy: boolean;
  /** Undefined: unlimited, as the Vireo source agent sets it. */
  bandwidthBytesPerSecond: number | undefined;
}

/** What a baseline migration took: ms from the decision to the guest running on the target, and QEMU's downtime. */
export interface PlainResult {
  totalMs: number;
  downtimeMs: number;
}

function run(file: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout);
      else reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The argv of QEMU `pid` (a Vireo guest) as a template for plain copies, with what its
 * disks are made of: a qcow2 overlay on a backing image, an empty qcow2 of
 * a size, or a file (an ISO, a raw file) kept in `keepDir`.
 */
export async function templateOf(pid: number, keepDir: string): Promise<QemuTemplate> {
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter((a) => a !== '');
  // The guest here has no NIC: the agent starts QEMU itself, not through `ip netns exec`.
  const [binary, ...args] = argv;
  if (binary === undefined || !binary.includes('qemu-system')) throw new Error(`process ${pid} is not a QEMU (${argv.slice(0, 3).join(' ')})`);
  // The guest's directory holds its pid file (src/agent/layout.ts).
  const pidFile = args[args.indexOf('-pidfile') + 1];
  if (!args.includes('-pidfile') || pidFile === undefined) throw new Error(`QEMU ${pid} has no -pidfile: cannot tell its directory`);
  const dir = dirname(pidFile);
  await mkdir(keepDir, { recursive: true });
  const disks: DiskRecipe[] = [];
  const disksDir = join(dir, 'disks');
  for (const name of await readdir(disksDir)) {
    const info = JSON.parse(await run('qemu-img', ['info', '-U', '--output=json', join(disksDir, name)])) as { format?: string; 'virtual-size'?: number; 'full-backing-filename'?: string; 'backing-filename-format'?: string };
    if (info.format === 'qcow2' && info['full-backing-filename'] !== undefined) {
      disks.push({ name, backing: info['full-backing-filename'], backingFormat: info['backing-filename-format'] ?? 'qcow2' });
    } else if (info.format === 'qcow2') {
      disks.push({ name, size: info['virtual-size'] ?? 0 });
    } else {
      await copyFile(join(disksDir, name), join(keepDir, name));
      disks.push({ name, copyOf: join(keepDir, name) });
    }
  }
  return { binary, args, dir, disks };
}

/** Fresh disks in `to` by the template's recipes: what a Vireo agent makes for a new guest or a migration target. */
async function freshDisks(template: QemuTemplate, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const disk of template.disks) {
    const file = join(to, disk.name);
    if ('backing' in disk) await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', disk.backingFormat, '-b', disk.backing, file]);
    else if ('size' in disk) await run('qemu-img', ['create', '-q', '-f', 'qcow2', file, String(disk.size)]);
    else await copyFile(disk.copyOf, file);
  }
}

/** Starts a copy of `template` in `host` with its own directory `dir` (and `extra` arguments); resolves once QMP greets. */
async function startCopy(lab: HostsLab, host: LabHost, template: QemuTemplate, dir: string, extra: readonly string[]): Promise<PlainGuest> {
  await freshDisks(template, join(dir, 'disks'));
  const args = template.args.map((a) => a.split(template.dir).join(dir));
  const [program, ...prefix] = [...lab.command(host), template.binary];
  const spawned = await spawnQemu(program ?? template.binary, [...prefix, ...args, ...extra], { logFile: join(dir, 'qemu.log'), env: {} });
  try {
    const qmp = await QmpClient.connect(join(dir, 'qmp.sock'), { timeoutMs: 30_000, commandTimeoutMs: 60_000 });
    return { host, dir, pid: spawned.pid, qmp };
  } catch (err) {
    signalQemu(spawned.pid, join(dir, 'qmp.sock'), 'SIGKILL');
    throw err;
  }
}

/** Starts the source guest: a copy of `template` in `host`, resumed once its console (returned) is connected, so that it has the whole boot. */
export async function startPlainGuest(lab: HostsLab, host: LabHost, template: QemuTemplate, dir: string): Promise<{ guest: PlainGuest; console: SerialConsole }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const guest = await startCopy(lab, host, template, dir, []);
  try {
    const console = await SerialConsole.open(guest);
    await guest.qmp.execute('cont');
    return { guest, console };
  } catch (err) {
    await stopPlainGuest(guest);
    throw err;
  }
}

/** Kills a plain guest and removes its directory. */
export async function stopPlainGuest(guest: PlainGuest): Promise<void> {
  await guest.qmp.execute('quit').catch(() => undefined);
  guest.qmp.close();
  signalQemu(guest.pid, join(guest.dir, 'qmp.sock'), 'SIGKILL');
  await rm(guest.dir, { recursive: true, force: true });
}

/** The writable block nodes of a QEMU: what a block migration copies (as the agents pick them). */
async function writableNodes(qmp: QmpClient): Promise<string[]> {
  const nodes: string[] = [];
  for (const block of await qmp.execute('query-block')) {
    const node = block.inserted?.['node-name'];
    if (block.inserted !== undefined && !block.inserted.ro && node !== undefined) nodes.push(node);
  }
  return nodes.sort();
}

/** The guest's serial console: what it printed, and a line typed into it. */
export class SerialConsole {
  private text = '';
  private constructor(private readonly socket: Socket) {
    socket.on('data', (data: Buffer) => { this.text += data.toString('utf8'); });
    socket.on('error', () => undefined);
  }

  static open(guest: PlainGuest): Promise<SerialConsole> {
    return new Promise((resolve, reject) => {
      const socket = connect(join(guest.dir, 'serial.sock'));
      socket.once('connect', () => { resolve(new SerialConsole(socket)); });
      socket.once('error', reject);
    });
  }

  output(): string {
    return this.text;
  }

  type(line: string): void {
    this.socket.write(`${line}\r`);
  }

  close(): void {
    this.socket.destroy();
  }
}

/**
 * Vireo's migration TLS for the plain QEMUs (its default): a throw-away CA
 * in `dir`, a serving certificate naming `address` for the target and a
 * client certificate for the source, issued and loaded as Vireo's
 * controller and agents do (`tls-creds-x509`, verify-peer); returns the
 * two objects' ids.
 */
async function plainTls(target: PlainGuest, source: PlainGuest, dir: string, address: string): Promise<{ target: string; source: string }> {
  const caDir = join(dir, 'tls-ca');
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  await ensurePki(caDir, [address]);
  const issuer = new OpenSslIssuer({ certFile: join(caDir, 'ca.crt'), keyFile: join(caDir, 'ca.key') });
  const [served, client] = await Promise.all([issuer.issue({ commonName: 'plain-target', usage: 'server', hosts: [address] }), issuer.issue({ commonName: 'plain-source', usage: 'client' })]);
  const load = async (guest: PlainGuest, endpoint: 'server' | 'client', tls: IssuedCertificate): Promise<string> => {
    const credentials = join(dir, `tls-${endpoint}`);
    await writeCredentials(credentials, endpoint, tls);
    await guest.qmp.execute('object-add', { 'qom-type': 'tls-creds-x509', id: 'plain-migration-tls', dir: credentials, endpoint, 'verify-peer': true });
    await rm(credentials, { recursive: true, force: true });
    return 'plain-migration-tls';
  };
  // A source migrated before holds the object of that migration.
  await source.qmp.execute('object-del', { id: 'plain-migration-tls' }).catch(() => undefined);
  return { target: await load(target, 'server', served), source: await load(source, 'client', client) };
}

/**
 * Migrates `source` to a new copy of `template` in `targetHost` (directory
 * `dir`), the streams on `ports` of the target's address; the source QEMU
 * quits. Timed from the decision (before the target QEMU starts) to the
 * guest running on the target.
 */
export async function migratePlain(lab: HostsLab, source: PlainGuest, options: { template: QemuTemplate; targetHost: LabHost; dir: string; ports: { migration: number; nbd: number }; settings: PlainSettings; printSettings?: boolean; tls?: boolean }): Promise<{ guest: PlainGuest; result: PlainResult }> {
  const { targetHost, ports, settings } = options;
  const address = targetHost.address;
  const started = performance.now();
  await rm(options.dir, { recursive: true, force: true });
  await mkdir(options.dir, { recursive: true });
  const target = await startCopy(lab, targetHost, options.template, options.dir, ['-incoming', 'defer']);
  // When each step was reached (ms after the decision), printed with printSettings as Vireo's phases are.
  const steps: string[] = [`target QEMU ${(performance.now() - started).toFixed(0)}`];
  try {
    const tls = options.tls === false ? undefined : await plainTls(target, source, options.dir, address);
    const exports = await writableNodes(target.qmp);
    await target.qmp.execute('nbd-server-start', { addr: { type: 'inet', data: { host: address, port: String(ports.nbd) } }, ...(tls === undefined ? {} : { 'tls-creds': tls.target }) });
    for (const node of exports) await target.qmp.execute('block-export-add', { type: 'nbd', id: `migration-${node}`, 'node-name': node, name: node, writable: true });
    await target.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'late-block-activate', state: true }] });
    if (tls !== undefined) await target.qmp.execute('migrate-set-parameters', { 'tls-creds': tls.target });
    await target.qmp.execute('migrate-incoming', { uri: `tcp:${address}:${ports.migration}` });

    const nodes = await writableNodes(source.qmp);
    for (const node of nodes) {
      await source.qmp.execute('blockdev-add', { driver: 'nbd', 'node-name': `migration-${node}`, server: { type: 'inet', host: address, port: String(ports.nbd) }, export: node, ...(tls === undefined ? {} : { 'tls-creds': tls.source, 'tls-hostname': address }) });
      await source.qmp.execute('blockdev-mirror', { 'job-id': `migration-${node}`, device: node, target: `migration-${node}`, sync: 'full' });
    }
    for (;;) {
      const jobs = await source.qmp.execute('query-block-jobs');
      const mine = nodes.map((node) => jobs.find((j) => j.device === `migration-${node}`));
      if (mine.some((j) => j === undefined || j.error !== undefined)) throw new Error(`a mirror failed: ${JSON.stringify(jobs)}`);
      if (mine.every((j) => j?.ready === true)) break;
      await sleep(pollMs);
    }
    steps.push(`mirrors ready ${(performance.now() - started).toFixed(0)}`);
    await source.qmp.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'auto-converge', state: settings.autoConverge },
        { capability: 'pause-before-switchover', state: true },
        { capability: 'postcopy-ram', state: settings.postCopy },
      ],
    });
    await source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': settings.bandwidthBytesPerSecond ?? unlimitedBytesPerSecond, 'tls-creds': tls?.source ?? '', 'tls-hostname': tls === undefined ? '' : address });
    await source.qmp.execute('migrate', { uri: `tcp:${address}:${ports.migration}` });
    if (options.printSettings === true) {
      // The same read-back the Vireo source agent logs ("memory migration started"), to compare.
      const text = async (command: string): Promise<string> => (await source.qmp.execute('human-monitor-command', { 'command-line': command })).trim().split(/\r?\n/).join('; ');
      process.stdout.write(`  plain QEMU migrates with capabilities: ${await text('info migrate_capabilities')}\n  parameters: ${await text('info migrate_parameters')}\n`);
    }
    let downtimeMs: number | undefined;
    // QEMU leaves `pre-switchover` asynchronously after `migrate-continue`: a poll may see it again.
    let continued = false;
    while (downtimeMs === undefined) {
      const info = await source.qmp.execute('query-migrate');
      if (info.status === 'pre-switchover' && !continued) {
        steps.push(`pre-switchover ${(performance.now() - started).toFixed(0)}`);
        for (const node of nodes) await source.qmp.execute('block-job-cancel', { device: `migration-${node}` });
        while ((await source.qmp.execute('query-block-jobs')).some((j) => j.device.startsWith('migration-'))) await sleep(pollMs);
        await source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
        continued = true;
      } else if (info.status === 'completed') {
        downtimeMs = info.downtime ?? Number.NaN;
      } else if (info.status === 'failed' || info.status === 'cancelled') {
        throw new Error(`the plain migration ${info.status}: ${info['error-desc'] ?? ''}`);
      } else {
        await sleep(pollMs);
      }
    }
    for (;;) {
      const info = await target.qmp.execute('query-migrate');
      const state = await target.qmp.execute('query-status');
      if (info.status === 'completed' && state.status !== 'inmigrate') break;
      await sleep(pollMs);
    }
    await target.qmp.execute('nbd-server-stop');
    await target.qmp.execute('cont');
    const totalMs = performance.now() - started;
    if (options.printSettings === true) process.stdout.write(`  plain steps (ms after the decision): ${steps.join(', ')}, running ${totalMs.toFixed(0)}\n`);
    await stopPlainGuest(source);
    return { guest: target, result: { totalMs, downtimeMs } };
  } catch (err) {
    await stopPlainGuest(target);
    throw err;
  }
}
