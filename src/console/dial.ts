/**
 * Opens a `plain.kubevirt.io` WebSocket to a console or VNC subresource, the
 * way virtctl does: HTTPS with the kubeconfig's CA and bearer token, the
 * subprotocol offered, and a refused upgrade turned back into the ApiError
 * the server sent as a `Status`.
 */
import type { IncomingMessage } from 'node:http';
import type { PeerCertificate } from 'node:tls';
import { WebSocket } from 'ws';
import { ApiError } from '../api/errors.js';
import { errorFromResponse } from '../client/index.js';

/** KubeVirt's subprotocol for raw byte streams (`kubecli/websocket.go`). */
export const plainStreamProtocol = 'plain.kubevirt.io';

export interface DialOptions {
  /** `https://host:port` of the API server. */
  server: string;
  token: string;
  /** PEM of the CA that signed the server's certificate. */
  caCert: string;
  /** e.g. `/apis/subresources.kubevirt.io/v1/namespaces/default/virtualmachineinstances/vm1/console` */
  path: string;
  /** How long the handshake may take (default 30 s). */
  timeoutMs?: number;
  /** Replaces the hostname check (the API server pins an agent's self-signed certificate with it). */
  checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
}

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
    res.on('error', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
  });
}

/** Resolves with the open WebSocket, or rejects with the server's ApiError (or an unreachable-server error). */
export function dialStream(options: DialOptions): Promise<WebSocket> {
  const url = `${options.server.replace(/^http/, 'ws')}${options.path}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [plainStreamProtocol], {
      headers: { authorization: `Bearer ${options.token}` },
      ca: options.caCert,
      perMessageDeflate: false,
      handshakeTimeout: options.timeoutMs ?? 30_000,
      ...(options.checkServerIdentity === undefined ? {} : { checkServerIdentity: options.checkServerIdentity }),
    });
    let settled = false;
    ws.on('error', (err: Error) => {
      if (settled) return;
      settled = true;
      reject(new ApiError('ServiceUnavailable', `cannot open ${options.path} on ${options.server}: ${err.message}`, { cause: err }));
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      void readBody(res).then((body) => {
        if (!settled) {
          settled = true;
          reject(errorFromResponse(res.statusCode ?? 0, body));
        }
        ws.terminate();
      });
    });
    // ws itself fails the handshake (an 'error') when the server does not answer with the offered subprotocol.
    ws.once('open', () => {
      settled = true;
      resolve(ws);
    });
  });
}
