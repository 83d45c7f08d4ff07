/**
 * The node's half of KubeVirt's `portforward` subresource: a TCP
 * connection to a port of the guest through its pod network address, the
 * one `status.interfaces` reports for the VMI's pod network (the sandbox
 * address: masquerade forwards it to the guest, bridge hands it to the
 * guest itself). The agent runs in the node's network namespace, where
 * the node bridge reaches every sandbox of the node.
 */
import { createConnection, isIP } from 'node:net';
import type { Socket } from 'node:net';
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { podAddresses } from '../api/kinds/vmi-addresses.js';

/** How long a connection to the guest may take to open. */
const connectTimeoutMs = 10_000;

/** The pod network address of `vmi` to dial (IPv4 when it has one), or undefined. */
export function podAddressOf(vmi: KObject): string | undefined {
  const addresses = podAddresses(vmi);
  return addresses.find((a) => isIP(a) === 4) ?? addresses[0];
}

/** Opens a TCP connection to `port` of `vmi`'s guest; rejects with an ApiError saying why it cannot. */
export function dialGuestPort(vmi: KObject, port: number): Promise<Socket> {
  const what = `VMI ${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`;
  const address = podAddressOf(vmi);
  if (address === undefined) {
    return Promise.reject(new ApiError('BadRequest', `${what} has no pod network address (status.interfaces reports none), so no port of it can be forwarded: give it a pod network (networks[].pod with a masquerade or bridge interface)`));
  }
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: address, port });
    const fail = (err: Error & { code?: string }): void => {
      socket.destroy();
      const cause = err.code === 'ECONNREFUSED' ? 'connection refused (is a server listening on that port in the guest, and is the port among interfaces[].ports of a masquerade interface?)' : err.message;
      reject(new ApiError('BadRequest', `cannot connect to port ${port} of ${what} at ${address}: ${cause}`, { cause: err }));
    };
    socket.setTimeout(connectTimeoutMs, () => {
      socket.destroy();
      reject(new ApiError('Timeout', `port ${port} of ${what} at ${address} did not answer within ${connectTimeoutMs / 1000} s: is the guest up, and does its firewall let the port through?`));
    });
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.off('error', fail);
      socket.setTimeout(0);
      resolve(socket);
    });
  });
}
