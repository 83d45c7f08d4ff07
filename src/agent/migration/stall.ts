/**
 * A source's watch on its connections to the target. When the network to
 * the target is cut, or the target host dies without its kernel closing
 * the connections, QEMU's migration stream and the NBD mirrors just stop
 * moving: TCP alone would retransmit for ~15 minutes (`tcp_retries2`)
 * before failing them. The watch fails the migration once no byte moved
 * for {@link stallLimitMs}, and {@link severConnections} then destroys the
 * sockets to the target (`ss -K`) so that the mirrors, whose requests
 * would otherwise hang as long, end at once and the roll-back can remove
 * them.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import type { MigrationTarget } from './protocol.js';

/**
 * How long a migration may move no byte to the target before it fails.
 * A live target takes data continuously (even at a 1 MiB/s policy
 * bandwidth QEMU sends every 100 ms), so 10 s of silence means the target
 * or the path to it is gone, not that it is slow.
 */
export const stallLimitMs = 10_000;

/** Counts the bytes a migration moved; says when they stopped moving for too long. */
export class StallWatch {
  private lastBytes = -1;
  private movedAt: number;

  constructor(private readonly limitMs: number = stallLimitMs, now: number = Date.now()) {
    this.movedAt = now;
  }

  /** Feeds the bytes moved so far; a message saying what stalled once nothing moved for the limit, else undefined. */
  observe(bytes: number, now: number = Date.now()): string | undefined {
    if (bytes !== this.lastBytes) {
      this.lastBytes = bytes;
      this.movedAt = now;
      return undefined;
    }
    if (now - this.movedAt < this.limitMs) return undefined;
    return `no data reached the target for ${Math.round((now - this.movedAt) / 1000)} s: the target node or the network to it is down`;
  }
}

/** Destroys this network namespace's TCP connections to the target's migration and NBD ports (needs CAP_NET_ADMIN and a kernel with INET_DIAG_DESTROY). */
export function severConnections(target: MigrationTarget): Promise<void> {
  const filter = ['dst', target.address, '(', 'dport', '=', `:${target.migrationPort}`, 'or', 'dport', '=', `:${target.nbdPort}`, ')'];
  return new Promise((resolve, reject) => {
    execFile('ss', ['-K', '-t', ...filter], { timeout: 10_000 }, (err, _stdout, stderr) => {
      if (err === null) resolve();
      else reject(new Error(`cannot close the connections to the migration target ${target.address}: ${stderr.trim() || err.message}`));
    });
  });
}

/** How long the target's NBD server has to accept a probe connection. */
const probeTimeoutMs = 5_000;

/**
 * Resolves once the target's NBD server accepts a TCP connection (closed at
 * once). QEMU 7.2 connects an NBD node synchronously in `blockdev-add`,
 * holding its monitor (and the guest's vCPUs when they need the main
 * lock) until the connect times out: the probe keeps an unreachable target
 * from doing that to the guest.
 */
export function probeTarget(target: MigrationTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.address, port: target.nbdPort });
    const fail = (why: string): void => {
      socket.destroy();
      reject(new Error(`the target's NBD server at ${target.address}:${target.nbdPort} ${why}: the target node or the network to it is down`));
    };
    socket.setTimeout(probeTimeoutMs, () => { fail(`did not answer within ${probeTimeoutMs / 1000} s`); });
    socket.once('error', (err) => { fail(`refused the connection (${err.message})`); });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
  });
}
