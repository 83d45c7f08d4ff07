/**
 * A local TCP endpoint for a VNC viewer (virtctl's `vnc --proxy-only`): each
 * viewer connection opens its own `vnc` WebSocket to the API server and the
 * RFB bytes are pumped through unchanged.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { bridge, closeSocket, normalClosure } from './bridge.js';

export interface VncProxyOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Opens one VNC stream to the guest. */
  dial: () => Promise<WebSocket>;
  /** Called when a viewer could not be connected (the viewer's socket is closed). */
  onError: (err: unknown) => void;
}

export interface VncProxy {
  address: AddressInfo;
  /** Stops listening and ends every open viewer session. */
  close(): Promise<void>;
}

export async function startVncProxy(options: VncProxyOptions): Promise<VncProxy> {
  const sockets = new Set<Socket>();
  const streams = new Set<WebSocket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => { socket.destroy(); });
    // Nothing the viewer sends can be delivered until the stream is open.
    socket.pause();
    options.dial().then(
      async (ws) => {
        if (socket.destroyed) { closeSocket(ws, normalClosure, 'viewer left'); return; }
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
  if (address === null || typeof address === 'string') throw new Error(`the VNC proxy listens on ${String(address)}, not on a TCP port`);
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
