/**
 * The target side of live migrations on one node: a QEMU with the VMI's
 * machine and fresh local disks (claims' volumes too, `claim-copies.ts`),
 * started with `-incoming defer`; its
 * writable disks exported over NBD for the source to mirror into; the
 * migration stream accepted on a port this agent picks on the node's
 * address. Finishing resumes the guest and hands it to the runner; an
 * abort kills it and removes what was made. A post-copy migration resumes
 * the guest here at the switch-over, while its memory still arrives, and
 * hands it over once all of it has.
 */
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { KObject } from '../../api/object.js';
import type { Logger } from '../../log/logger.js';
import type { Machine } from '../machine.js';
import type { MigrationHost } from './host.js';
import { hostPort, writableNodes } from './host.js';
import type { MigrationTarget, MovedVolume } from './protocol.js';
import { makeClaimCopies, removeClaimCopies } from './claim-copies.js';
import type { ClaimNode } from './claim-copies.js';
import { SocketRelay, closeRelays } from './socket-relay.js';
import { loadCredentials, unloadCredentials } from './tls-creds.js';
import type { MigrationTls } from './protocol.js';

interface Incoming {
  machine: Machine;
  target: MigrationTarget;
  /** Resumed at a post-copy switch-over (NBD stopped, `cont` done). */
  resumed: boolean;
  /** A sandboxed QEMU's relays from the node's address to its unix sockets. */
  relays: SocketRelay[];
}

/**
 * Where the source reaches the waiting QEMU: its NBD server and migration
 * listener on `address`, or, for a QEMU in a network sandbox, on unix
 * sockets in its directory with relays from `address` (`relays`).
 */
async function listenForGuest(machine: Machine, address: string, sandboxed: boolean, relays: SocketRelay[], tlsCreds: string | undefined): Promise<{ nbdPort: number; migrationUri: () => Promise<{ uri: string; port: number }> }> {
  const tls = tlsCreds === undefined ? {} : { 'tls-creds': tlsCreds };
  if (!sandboxed) {
    const nbdPort = await freePort(address);
    await machine.execute('nbd-server-start', { addr: { type: 'inet', data: { host: address, port: String(nbdPort) } }, ...tls });
    return { nbdPort, migrationUri: async () => { const port = await freePort(address); return { uri: `tcp:${hostPort(address, port)}`, port }; } };
  }
  const nbdPath = join(machine.layout.dir, 'nbd-in.sock');
  await machine.execute('nbd-server-start', { addr: { type: 'unix', data: { path: nbdPath } }, ...tls });
  const nbd = await SocketRelay.tcpToUnix(address, nbdPath);
  relays.push(nbd);
  return {
    nbdPort: nbd.port,
    migrationUri: async () => {
      const path = join(machine.layout.dir, 'migration-in.sock');
      const relay = await SocketRelay.tcpToUnix(address, path);
      relays.push(relay);
      return { uri: `unix:${path}`, port: relay.port };
    },
  };
}

/** What a target waiting for a guest has made: its QEMU and the copies of its claims. */
interface Made {
  machine: Machine;
  volumes: MovedVolume[];
}

/** A port free on `address` now (the kernel's pick), for QEMU to listen on. */
async function freePort(address: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, resolve);
  });
  const bound = server.address();
  await new Promise<void>((resolve) => { server.close(() => { resolve(); }); });
  if (bound === null || typeof bound === 'string') throw new Error(`cannot pick a port on ${address}`);
  return bound.port;
}

/** How long the target may still be loading the last of the stream after the source said it completed. */
const arrivalTimeoutMs = 30_000;

/**
 * Waits until the incoming stream is complete here. The source reports
 * `completed` once it sent the last bytes; the target may still be loading
 * them (its status `active`) for a moment: that is waited for, not an error.
 */
async function arrival(machine: Machine): Promise<void> {
  const deadline = Date.now() + arrivalTimeoutMs;
  for (;;) {
    const info = await machine.execute('query-migrate');
    const state = await machine.refreshRunState();
    if (info.status === 'completed' && state !== 'inmigrate') return;
    if (info.status === 'failed' || info.status === 'cancelled' || Date.now() > deadline) {
      throw new Error(`the guest has not arrived (incoming migration ${info.status ?? 'not started'}, QEMU ${state}${info['error-desc'] === undefined ? '' : `: ${info['error-desc']}`})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The node's incoming migrations, by migration uid. */
export class MigrationTargets {
  private readonly incoming = new Map<string, Incoming>();
  /** Migrations whose guest arrived here: a repeated finish (a controller that restarted mid-way) is a no-op. */
  private readonly finished = new Set<string>();

  constructor(private readonly host: MigrationHost, private readonly logger: Logger, private readonly claims: ClaimNode) {}

  /** Whether a waiting QEMU for migration `migrationUid` runs here. */
  knows(migrationUid: string): boolean {
    return this.incoming.has(migrationUid);
  }

  /** Starts the waiting QEMU for `vmi` (once per migration: a repeated call answers the same target). */
  async prepare(migrationUid: string, vmi: KObject, address: string, signal: AbortSignal, options: { allowPostCopy?: boolean; tls?: MigrationTls } = {}): Promise<MigrationTarget> {
    const known = this.incoming.get(migrationUid);
    if (known !== undefined) return known.target;
    // When each step ended (ms after the request), logged with the target: where a slow preparation spends its time.
    const started = Date.now();
    const steps: Record<string, number> = {};
    const copies = await makeClaimCopies(vmi, this.claims, signal);
    let machine: Machine;
    try {
      steps.claimCopiesMs = Date.now() - started;
      machine = await this.host.launchIncoming(vmi, signal, copies.files);
      steps.qemuMs = Date.now() - started;
    } catch (err) {
      await removeClaimCopies(copies.volumes, this.claims);
      throw err;
    }
    const relays: SocketRelay[] = [];
    try {
      const exports = await writableNodes(machine);
      // With TLS, the NBD server and the migration listener take only a source whose client certificate the cluster CA signed.
      const tlsCreds = options.tls === undefined ? undefined : await loadCredentials(machine, migrationUid, 'server', options.tls);
      steps.credentialsMs = Date.now() - started;
      const listening = await listenForGuest(machine, address, this.host.sandboxed(machine.record.uid), relays, tlsCreds);
      const { nbdPort } = listening;
      for (const node of exports) {
        // Exporting activates the node, which `-incoming` leaves inactive: the source writes into it before the switch-over.
        await machine.execute('block-export-add', { type: 'nbd', id: `migration-${node}`, 'node-name': node, name: node, writable: true });
      }
      // The disks become the guest's only at `cont`, after the NBD server (which holds them writable) is stopped.
      // Post-copy needs the capability on both sides before the stream starts.
      await machine.execute('migrate-set-capabilities', { capabilities: [{ capability: 'late-block-activate', state: true }, ...(options.allowPostCopy === true ? [{ capability: 'postcopy-ram' as const, state: true }] : [])] });
      if (tlsCreds !== undefined) await machine.execute('migrate-set-parameters', { 'tls-creds': tlsCreds });
      const migration = await listening.migrationUri();
      await machine.execute('migrate-incoming', { uri: migration.uri });
      const target: MigrationTarget = { address, migrationPort: migration.port, nbdPort, exports, ...(copies.volumes.length === 0 ? {} : { volumes: copies.volumes }) };
      this.incoming.set(migrationUid, { machine, target, resumed: false, relays });
      steps.readyMs = Date.now() - started;
      this.logger.info('migration target ready', { migrationUid, uid: machine.record.uid, pid: machine.pid, tls: tlsCreds !== undefined, ...target, ...steps });
      return target;
    } catch (err) {
      await closeRelays(relays);
      await this.kill({ machine, volumes: copies.volumes });
      throw err;
    }
  }

  /** The guest arrived: stop exporting, resume it, and let the runner take it. */
  async finish(migrationUid: string): Promise<void> {
    if (this.finished.has(migrationUid)) return;
    const entry = this.incoming.get(migrationUid);
    if (entry === undefined) throw new Error(`no incoming migration ${migrationUid} on this node`);
    const { machine } = entry;
    await arrival(machine);
    if (!entry.resumed) await machine.execute('nbd-server-stop');
    await closeRelays(entry.relays);
    // The stream is over: its credentials go (a later migration out of here brings its own).
    await machine.execute('migrate-set-parameters', { 'tls-creds': '' }).catch(() => undefined);
    await unloadCredentials(machine, migrationUid);
    if (!entry.resumed) {
      // The guest's kept addresses lead here from now on (this node first; the others once the VMI says it runs here).
      await this.host.networkArrived(machine.record.uid, AbortSignal.timeout(30_000));
      // Held by -S after the stream: resumed only once the source has finished writing its disks here.
      await machine.execute('cont');
    }
    await machine.refreshRunState();
    // The sandbox's bridge learns the guest's MAC on its new port at once (QEMU also announces by itself; this is for certain).
    await machine.execute('announce-self', { initial: 50, max: 550, rounds: 5, step: 100 }).catch((err: unknown) => { this.logger.warn('cannot announce the migrated guest', { err }); });
    this.incoming.delete(migrationUid);
    this.finished.add(migrationUid);
    this.host.arrived(machine);
    this.logger.info('migrated guest resumed', { migrationUid, uid: machine.record.uid, pid: machine.pid });
  }

  /**
   * The migration switched to post-copy: the source completed its disk
   * mirrors with the guest paused, so the exports stop and the guest runs
   * here (as libvirt resumes a post-copy destination); its memory pages
   * come from the source as it touches them. Repeated calls are no-ops.
   */
  async resumePostCopy(migrationUid: string): Promise<void> {
    const entry = this.incoming.get(migrationUid);
    if (entry === undefined) throw new Error(`no incoming migration ${migrationUid} on this node`);
    if (entry.resumed) return;
    const info = await entry.machine.execute('query-migrate');
    if (info.status !== 'postcopy-active' && info.status !== 'completed') throw new Error(`the migration has not switched over in post-copy (incoming migration ${info.status ?? 'not started'})`);
    await entry.machine.execute('nbd-server-stop');
    // The guest's kept addresses lead here before it runs (the stream itself still needs the relays).
    await this.host.networkArrived(entry.machine.record.uid, AbortSignal.timeout(30_000));
    await entry.machine.execute('cont');
    entry.resumed = true;
    this.logger.info('guest resumed in post-copy', { migrationUid, uid: entry.machine.record.uid });
  }

  /** Kills the waiting QEMU and removes its files; nothing to do when there is none. */
  async abort(migrationUid: string): Promise<void> {
    const entry = this.incoming.get(migrationUid);
    if (entry === undefined) return;
    this.incoming.delete(migrationUid);
    await closeRelays(entry.relays);
    await this.kill({ machine: entry.machine, volumes: entry.target.volumes ?? [] });
    this.logger.info('migration target removed', { migrationUid, uid: entry.machine.record.uid });
  }

  /** The waiting QEMUs, by migration uid (for the janitor). */
  waiting(): [string, Machine][] {
    return [...this.incoming].map(([uid, entry]) => [uid, entry.machine]);
  }

  /** Kills every waiting QEMU (agent stop). */
  async stop(): Promise<void> {
    for (const id of [...this.incoming.keys()]) await this.abort(id).catch((err: unknown) => { this.logger.error('cannot remove a migration target', { err }); });
  }

  private async kill(made: Made): Promise<void> {
    const { machine } = made;
    machine.detach();
    await machine.kill();
    await this.host.removeGuestFiles(machine.record.uid);
    // The claims stay on the source as they were: only this node's copies go.
    await removeClaimCopies(made.volumes, this.claims);
  }
}
