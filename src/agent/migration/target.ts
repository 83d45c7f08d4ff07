/**
 * The target side of live migrations on one node: a QEMU with the VMI's
 * machine and fresh local disks, started with `-incoming defer`; its
 * writable disks exported over NBD for the source to mirror into; the
 * migration stream accepted on a port this agent picks on the node's
 * address. Finishing resumes the guest and hands it to the runner; an
 * abort kills it and removes what was made.
 */
import { createServer } from 'node:net';
import type { KObject } from '../../api/object.js';
import type { Logger } from '../../log/logger.js';
import type { Machine } from '../machine.js';
import type { MigrationHost } from './host.js';
import { hostPort, writableNodes } from './host.js';
import type { MigrationTarget } from './protocol.js';

interface Incoming {
  machine: Machine;
  target: MigrationTarget;
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

  constructor(private readonly host: MigrationHost, private readonly logger: Logger) {}

  /** Starts the waiting QEMU for `vmi` (once per migration: a repeated call answers the same target). */
  async prepare(migrationUid: string, vmi: KObject, address: string, signal: AbortSignal): Promise<MigrationTarget> {
    const known = this.incoming.get(migrationUid);
    if (known !== undefined) return known.target;
    const machine = await this.host.launchIncoming(vmi, signal);
    try {
      const exports = await writableNodes(machine);
      const nbdPort = await freePort(address);
      await machine.execute('nbd-server-start', { addr: { type: 'inet', data: { host: address, port: String(nbdPort) } } });
      for (const node of exports) {
        // Exporting activates the node, which `-incoming` leaves inactive: the source writes into it before the switch-over.
        await machine.execute('block-export-add', { type: 'nbd', id: `migration-${node}`, 'node-name': node, name: node, writable: true });
      }
      // The disks become the guest's only at `cont`, after the NBD server (which holds them writable) is stopped.
      await machine.execute('migrate-set-capabilities', { capabilities: [{ capability: 'late-block-activate', state: true }] });
      const migrationPort = await freePort(address);
      await machine.execute('migrate-incoming', { uri: `tcp:${hostPort(address, migrationPort)}` });
      const target: MigrationTarget = { address, migrationPort, nbdPort, exports };
      this.incoming.set(migrationUid, { machine, target });
      this.logger.info('migration target ready', { migrationUid, uid: machine.record.uid, pid: machine.pid, ...target });
      return target;
    } catch (err) {
      await this.kill(machine);
      throw err;
    }
  }

  /** The guest arrived: stop exporting, resume it, and let the runner take it. */
  async finish(migrationUid: string): Promise<void> {
    const entry = this.incoming.get(migrationUid);
    if (entry === undefined) throw new Error(`no incoming migration ${migrationUid} on this node`);
    const { machine } = entry;
    await arrival(machine);
    await machine.execute('nbd-server-stop');
    // Held by -S after the stream: resumed only once the source has finished writing its disks here.
    await machine.execute('cont');
    await machine.refreshRunState();
    this.incoming.delete(migrationUid);
    this.host.arrived(machine);
    this.logger.info('migrated guest resumed', { migrationUid, uid: machine.record.uid, pid: machine.pid });
  }

  /** Kills the waiting QEMU and removes its files; nothing to do when there is none. */
  async abort(migrationUid: string): Promise<void> {
    const entry = this.incoming.get(migrationUid);
    if (entry === undefined) return;
    this.incoming.delete(migrationUid);
    await this.kill(entry.machine);
    this.logger.info('migration target removed', { migrationUid, uid: entry.machine.record.uid });
  }

  /** Kills every waiting QEMU (agent stop). */
  async stop(): Promise<void> {
    for (const id of [...this.incoming.keys()]) await this.abort(id).catch((err: unknown) => { this.logger.error('cannot remove a migration target', { err }); });
  }

  private async kill(machine: Machine): Promise<void> {
    machine.detach();
    await machine.kill();
    await this.host.removeGuestFiles(machine.record.uid);
  }
}
