/**
 * The serving half of a `plain.kubevirt.io` stream: check a WebSocket
 * upgrade request, open the byte stream it asks for, complete the upgrade,
 * then pump bytes both ways (`bridge`) until either side ends, pinging idle
 * peers. The API server serves its console/VNC subresources with it, and
 * `vireo agent` its console/VNC endpoint to the API server. Every refusal
 * happens before the upgrade, as a plain HTTP `Status`.
 */
import { STATUS_CODES } from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { ApiError, badRequest } from '../api/errors.js';
import type { Status } from '../api/object.js';
import type { Logger } from '../log/logger.js';
import { bridge } from './bridge.js';
import { plainStreamProtocol } from './dial.js';

/** How often an idle session is pinged; a peer that misses one ping is dropped (its byte stream freed). */
const heartbeatMs = 30_000;

/** Writes a `Status` as the HTTP answer to an upgrade request and closes the connection. */
export function rejectUpgrade(socket: Duplex, status: Status): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(status);
  socket.end(
    `HTTP/1.1 ${status.code} ${STATUS_CODES[status.code] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

/** The subprotocols a client offered (`Sec-WebSocket-Protocol`). */
function offeredProtocols(req: IncomingMessage): string[] {
  return (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
}

/** The checks `ws` makes before it upgrades, done first so a bad handshake never opens a byte stream. */
function checkHandshake(req: IncomingMessage, path: string): void {
  if (req.method !== 'GET') throw new ApiError('MethodNotAllowed', `${req.method ?? ''} is not allowed on ${path}: open it with a WebSocket GET`);
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    throw badRequest(`${path} is a WebSocket endpoint: send "Upgrade: websocket" (vireo console and vireo vnc do)`);
  }
  const key = req.headers['sec-websocket-key'];
  const version = req.headers['sec-websocket-version'];
  if (key === undefined || !/^[+/0-9A-Za-z]{22}==$/.test(key.trim()) || (version !== '13' && version !== '8')) {
    throw badRequest('invalid WebSocket handshake: Sec-WebSocket-Key and Sec-WebSocket-Version 13 are required');
  }
  const offered = offeredProtocols(req);
  if (offered.length > 0 && !offered.includes(plainStreamProtocol)) {
    throw badRequest(`unsupported WebSocket subprotocol ${offered.join(', ')}: this endpoint speaks ${plainStreamProtocol}`);
  }
}

/** The byte stream a session serves, and what to log about it. */
export interface OpenedStream {
  stream: Duplex;
  log: Record<string, unknown>;
}

/** What an upgrade is for: the request path (for messages) and how to open its byte stream. */
export interface StreamTarget {
  path: string;
  /** Opens the byte stream; an ApiError thrown here is answered before the upgrade. */
  open: () => Promise<OpenedStream>;
}

/** The open `plain.kubevirt.io` sessions of one server; see the module comment. */
export class StreamServer {
  private readonly wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: 4 * 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has(plainStreamProtocol) ? plainStreamProtocol : false),
  });
  private readonly open = new Set<WebSocket>();

  constructor(private readonly logger: Logger) {}

  /** Number of open sessions. */
  get size(): number {
    return this.open.size;
  }

  /**
   * Checks the request, opens the target's stream, then completes the
   * upgrade. Throws (an ApiError) before anything is written, so the caller
   * answers with `rejectUpgrade`.
   */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: StreamTarget): Promise<void> {
    checkHandshake(req, target.path);
    const { stream, log } = await target.open();
    if (socket.destroyed) {
      stream.destroy();
      return;
    }
    let upgraded = false;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      upgraded = true;
      void this.serve(ws, stream, log);
    });
    // ws calls back synchronously, or not at all when the socket died during the handshake.
    if (!upgraded) stream.destroy();
  }

  /** Ends every open session (server shutdown). */
  close(): void {
    for (const ws of this.open) ws.terminate();
    this.open.clear();
  }

  private async serve(ws: WebSocket, stream: Duplex, who: Record<string, unknown>): Promise<void> {
    this.open.add(ws);
    let alive = true;
    ws.on('pong', () => { alive = true; });
    const heartbeat = setInterval(() => {
      // While reading is paused for backpressure, pongs cannot arrive either: not a sign of a dead peer.
      if (ws.isPaused) return;
      if (!alive) { ws.terminate(); return; }
      alive = false;
      ws.ping();
    }, heartbeatMs);
    heartbeat.unref();
    this.logger.debug('stream opened', who);
    const end = await bridge(ws, { input: stream, output: stream }, { endOutput: true });
    clearInterval(heartbeat);
    this.open.delete(ws);
    this.logger.debug('stream closed', { ...who, code: end.code, reason: end.reason, err: end.error });
  }
}
