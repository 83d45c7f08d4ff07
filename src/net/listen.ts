/**
 * Small pieces every listening component shares: binding an HTTP(S)
 * server, and spelling a host and port as a URL authority.
 */
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Binds `server` to `host:port` (0 picks a free port); rejects with the bind error (EADDRINUSE…). */
export async function listenOn(server: Server, host: string, port: number): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`the server listens on ${String(address)}, not on a TCP port`);
  return address;
}

/** `https://host:port`, with an IPv6 address in brackets. */
export function httpsUrl(host: string, port: number): string {
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
