/**
 * Byte relays between the node's TCP and a QEMU's unix sockets, for guests
 * whose QEMU runs in a network sandbox (the pod network): there it has
 * neither the node's address to listen on nor a way to the other node
 * that no NetworkPolicy or NAT of the guest's traffic touches. A unix
 * socket in the VMI's directory crosses the namespace; the agent, in the
 * node's namespace, carries the migration stream and the NBD connections
 * between it and the other node.
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { rm } from 'node:fs/promises';

/** One listening relay; every accepted connection is piped to a new connection to the far end. */
export class SocketRelay {
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;

  private constructor(farEnd: () => Socket, private readonly path: string | undefined) {
    this.server = createServer((socket) => { this.pipe(socket, farEnd()); });
  }

  /** Listens on `address` (a free port) and relays each connection to the unix socket `path` (QEMU listening in a sandbox). */
  static async tcpToUnix(address: string, path: string): Promise<SocketRelay> {
    const relay = new SocketRelay(() => connect({ path }), undefined);
    await relay.listen((done) => { relay.server.listen(0, address, done); });
    return relay;
  }

  /** Listens on the unix socket `path` (QEMU in a sandbox connects to it) and relays each connection to `host:port`. */
  static async unixToTcp(path: string, host: string, port: number): Promise<SocketRelay> {
    await rm(path, { force: true });
    const relay = new SocketRelay(() => connect({ host, port }), path);
    await relay.listen((done) => { relay.server.listen(path, done); });
    return relay;
  }

  /** The TCP port a {@link tcpToUnix} relay listens on. */
  get port(): number {
    const bound = this.server.address();
    if (bound === null || typeof bound === 'string') throw new Error('the relay does not listen on a TCP port');
    return bound.port;
  }

  /** Stops listening and cuts every relayed connection. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => { this.server.close(() => { resolve(); }); });
    if (this.path !== undefined) await rm(this.path, { force: true });
  }

  private listen(start: (done: () => void) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      start(() => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  private pipe(near: Socket, far: Socket): void {
    for (const socket of [near, far]) {
      this.sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => { this.sockets.delete(socket); });
    }
    // Either side's error ends both: a half-dead relay would hold QEMU waiting.
    near.on('error', () => { far.destroy(); });
    far.on('error', () => { near.destroy(); });
    near.pipe(far);
    far.pipe(near);
  }
}

/** Closes every relay of a migration; one that fails to close is left to the process's end. */
export async function closeRelays(relays: readonly SocketRelay[]): Promise<void> {
  await Promise.all(relays.map((relay) => relay.close().catch(() => undefined)));
}
