/**
 * A local TCP endpoint in front of a `plain.kubevirt.io` stream: each
 * connection opens its own WebSocket to the API server and the bytes are
 * pumped through unchanged. A VNC viewer's (virtctl's `vnc --proxy-only`)
 * and each local port of `vireo port-forward`.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { bridge, closeSocket, normalClosure } from './bridge.js';

export interface StreamProxyOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Opens one stream to the guest. */
  dial: () => Promise<WebSocket>;
  /** Called when a client could not be connected (its socket is closed). */
  onError: (err: unknown) => void;
}

export interface StreamProxy {
  address: AddressInfo;
  /** Stops listening and ends every open session. */
  close(): Promise<void>;
}

export async function startStreamProxy(options: StreamProxyOptions): Promise<StreamProxy> {
  const sockets = new Set<Socket>();
  const streams = new Set<WebSocket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => { socket.destroy(); });
    // Nothing the client sends can be delivered until the stream is open.
    socket.pause();
    options.dial().then(
      async (ws) => {
        if (socket.destroyed) { closeSocket(ws, normalClosure, 'client left'); return; }
        streams.add(ws);
        socket.resume();
        await bridge(ws, { input: socket, output: socket }, { endOutput: true });
        streams.delete(ws);
      },
      (err: unknown) => {
        socket.destroy();
        options.onError(err);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`the proxy listens on ${String(address)}, not on a TCP port`);
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of streams) closeSocket(ws, normalClosure, 'proxy stopped');
        for (const socket of sockets) socket.destroy();
        server.close(() => { resolve(); });
      }),
  };
}
