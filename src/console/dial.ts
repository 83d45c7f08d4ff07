/**
 * Opens a `plain.kubevirt.io` WebSocket to a console or VNC subresource, the
 * way virtctl does: HTTPS with the kubeconfig's CA and bearer token, the
 * subprotocol offered, and a refused upgrade turned back into the ApiError
 * the server sent as a `Status`.
 */
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import { ApiError } from '../api/errors.js';
import type { StatusReason } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';

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
}

const reasons: ReadonlySet<string> = new Set<StatusReason>([
  'BadRequest', 'Unauthorized', 'Forbidden', 'NotFound', 'AlreadyExists', 'Conflict', 'Gone', 'Expired', 'Invalid', 'MethodNotAllowed',
  'NotAcceptable', 'UnsupportedMediaType', 'RequestEntityTooLarge', 'Timeout', 'TooManyRequests', 'InternalError', 'ServiceUnavailable',
]);

function isReason(value: unknown): value is StatusReason {
  return typeof value === 'string' && reasons.has(value);
}

function reasonForCode(code: number): StatusReason {
  if (code === 400) return 'BadRequest';
  if (code === 401) return 'Unauthorized';
  if (code === 403) return 'Forbidden';
  if (code === 404) return 'NotFound';
  if (code === 409) return 'Conflict';
  if (code === 503) return 'ServiceUnavailable';
  return code >= 500 ? 'InternalError' : 'BadRequest';
}

/** The ApiError a non-2xx answer (a `Status` body, or anything else) stands for. */
export function errorFromResponse(code: number, body: string): ApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (isPlainObject(parsed) && parsed.kind === 'Status' && typeof parsed.message === 'string') {
    return new ApiError(isReason(parsed.reason) ? parsed.reason : reasonForCode(code), parsed.message);
  }
  const text = body.trim().slice(0, 200);
  return new ApiError(reasonForCode(code), `the server answered HTTP ${code}${text === '' ? '' : `: ${text}`}`);
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
