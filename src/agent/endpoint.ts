/**
 * The HTTPS endpoint of a node agent on another host (`vireo agent`), where
 * the API server reaches the running guests, as kube-apiserver reaches a
 * kubelet on port 10250: guest actions, the kept serial log, the
 * console and VNC as `plain.kubevirt.io` WebSockets, the bytes of CDI
 * uploads into the node's volumes, and exports of the node's volumes for
 * copies to other nodes (`endpoint-export.ts`). It serves any
 * {@link AgentHandle}; the paths are in `endpoint-api.ts`. Every request
 * must carry the API server's bearer token (the cluster token; a joined
 * agent checks it by its SHA-256); refusals are Kubernetes `Status`
 * JSON, so the server turns them back into the same ApiError.
 */
import { parseMigrationCommand } from './migration/index.js';
import type { MigrationCommand } from './migration/index.js';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ApiError, badRequest, toStatus } from '../api/errors.js';
import type { Status } from '../api/object.js';
import { StreamServer, rejectUpgrade } from '../console/index.js';
import type { Logger } from '../log/logger.js';
import type { ExportSource, VolumeExports } from '../storage/snapshots/export.js';
import { agentRequestMethod, parseAgentRequest, parseUnfreezeTimeout } from './endpoint-api.js';
import { sendExport } from './endpoint-export.js';
import { textFormat } from './metrics/index.js';
import type { AgentRequest } from './endpoint-api.js';
import type { AgentHandle } from './handle.js';
import { listenOn } from '../net/listen.js';

/** What the endpoint needs; see the fields. The agent it serves comes with `serve`. */
export interface AgentEndpointOptions {
  /**
   * The bearer token the API server must present (the cluster token), or
   * its SHA-256 in hex (an agent that joined with a token learns only that,
   * and has its own node credential for the API).
   */
  token: string | { sha256: string };
  /** The endpoint's certificate and key (self-signed; the server pins the certificate from the Node). */
  tls: { cert: string; key: string };
  logger: Logger;
  /** The most bytes a second one volume export is sent at; default: as fast as the link goes. */
  exportRateBytesPerSecond?: number;
  /**
   * Who else may read volume exports (`export-access.ts`: another node's
   * credential, reviewed by the API server, for a copy into a claim of its
   * node). Without it, exports take the cluster token only.
   */
  exportAccess?: { authorize(token: string, targetUid: string): Promise<void> };
  /**
   * Who else may read `GET /metrics` (`metrics-access.ts`: a scraper's
   * metrics token, reviewed by the API server). Without it, metrics take
   * the cluster token only.
   */
  metricsAccess?: { authorize(token: string): Promise<void> };
}

/** The path of the agent's Prometheus metrics. */
export const agentMetricsPath = '/metrics';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * True when `header` is `Bearer <token>`. The digests are compared, so the
 * comparison takes the same time whatever the length or content presented.
 */
export function bearerMatches(header: string | undefined, token: string | { sha256: string }): boolean {
  const presented = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
  const expected = typeof token === 'string' ? digest(token) : Buffer.from(token.sha256, 'hex');
  return presented !== undefined && expected.length === 32 && timingSafeEqual(digest(presented), expected);
}

function sendStatus(res: ServerResponse, status: Status): void {
  const body = JSON.stringify(status);
  res.writeHead(status.code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendJson(res: ServerResponse, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendText(res: ServerResponse, text: string, contentType = 'text/plain; charset=utf-8'): void {
  res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const served = 'the agent endpoint serves /v1/namespaces/NS/virtualmachineinstances/NAME/{pause,unpause,softreboot,reset,freeze,unfreeze,consolelog,console,vnc,portforward/PORT} and /v1/namespaces/NS/persistentvolumeclaims/NAME/{upload,upload-async,export} and /v1/namespaces/NS/volumesnapshots/NAME/export, and /metrics';

/** The agent's HTTPS server; see the module comment. */
export class AgentEndpoint {
  private readonly server: Server;
  private readonly streams: StreamServer;
  private readonly logger: Logger;
  private served: AgentHandle | undefined;
  private exports: VolumeExports | undefined;

  constructor(private readonly options: AgentEndpointOptions) {
    this.logger = options.logger.child({ component: 'agent-endpoint' });
    this.streams = new StreamServer(this.logger);
    this.server = createServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
      void this.handleRequest(req, res);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.handleUpgrade(req, socket, head);
    });
    // An upload streams for as long as the image takes; Node's default would cut it at 5 minutes.
    this.server.requestTimeout = 0;
    // Prometheus scrapes every 15–60 s on one connection: Node's 5 s keep-alive would cost every scrape a TLS handshake.
    this.server.keepAliveTimeout = 65_000;
  }

  /** Listens on `host:port` (0 picks a free port); resolves with the address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.server, host, port);
  }

  /**
   * Serves `handle`'s guests from now on. The endpoint listens first, so
   * the agent can publish the port it got; until then requests get a 503.
   * `exports` serves the node's volumes to other nodes' copies.
   */
  serve(handle: AgentHandle, exports?: VolumeExports): void {
    this.served = handle;
    this.exports = exports;
  }

  /** Stops listening and ends every open request and stream. */
  async close(): Promise<void> {
    // Upgraded sockets are not HTTP connections: closeAllConnections() does not end them.
    this.streams.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => { resolve(); });
      this.server.closeAllConnections();
    });
  }

  private async handleRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const request = await this.authorize(req);
      const { operation, namespace, name } = request;
      // Only an upload has a body worth reading.
      if (operation.kind !== 'upload' && operation.kind !== 'migration') req.resume();
      if (operation.kind === 'stream' || operation.kind === 'portforward') throw badRequest(`${pathOf(req)} is a WebSocket endpoint: connect with "Upgrade: websocket" and subprotocol plain.kubevirt.io`);
      if (operation.kind === 'export') { await this.export(req, res, { kind: operation.of === 'volumesnapshots' ? 'VolumeSnapshot' : 'PersistentVolumeClaim', namespace, name }); return; }
      const method = agentRequestMethod(operation);
      if (req.method !== method) throw new ApiError('MethodNotAllowed', `${req.method ?? ''} is not allowed on ${pathOf(req)}: use ${method}`);
      if (operation.kind === 'log') { sendText(res, await this.agent().serialLog(namespace, name)); return; }
      if (operation.kind === 'metrics') { sendText(res, await this.agent().metrics(), textFormat); return; }
      if (operation.kind === 'migration') {
        const command = await readMigrationCommand(req);
        sendJson(res, await this.agent().migration(namespace, name, command));
        return;
      }
      if (operation.kind === 'upload') {
        const length = Number(req.headers['content-length']);
        const result = await this.agent().upload(namespace, name, req, { async: operation.async, ...(Number.isSafeInteger(length) && length >= 0 ? { bytes: length } : {}) });
        this.logger.info('upload', { namespace, pvc: name, bytes: result.bytes, async: operation.async });
        sendJson(res, result);
        return;
      }
      let unfreezeTimeoutSeconds: number | undefined;
      try {
        unfreezeTimeoutSeconds = parseUnfreezeTimeout(new URL(req.url ?? '/', 'https://agent.invalid').searchParams);
      } catch (err) {
        throw badRequest(err instanceof Error ? err.message : String(err));
      }
      await this.agent().guestAction(namespace, name, operation.action, unfreezeTimeoutSeconds === undefined ? {} : { unfreezeTimeoutSeconds });
      this.logger.info('guest action', { action: operation.action, namespace, name });
      sendStatus(res, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 });
    } catch (err) {
      this.refused(req, err);
      // A refused upload's body is not wanted: let it drain rather than stall the connection.
      req.resume();
      if (!res.headersSent) sendStatus(res, toStatus(err));
      else res.destroy();
    }
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A peer that resets during the handshake must not take the agent down.
    socket.on('error', () => { socket.destroy(); });
    try {
      const { operation, namespace, name } = await this.authorize(req);
      if (operation.kind === 'portforward') {
        await this.streams.upgrade(req, socket, head, {
          path: pathOf(req),
          open: async () => ({ stream: await this.agent().openPortForward(namespace, name, operation.port), log: { namespace, name, kind: 'portforward', port: operation.port } }),
        });
        return;
      }
      if (operation.kind !== 'stream') throw badRequest(`${pathOf(req)} does not accept a protocol upgrade: only console, vnc and portforward are WebSockets`);
      await this.streams.upgrade(req, socket, head, {
        path: pathOf(req),
        open: async () => ({ stream: await this.agent().openStream(namespace, name, operation.stream), log: { namespace, name, kind: operation.stream } }),
      });
    } catch (err) {
      this.refused(req, err);
      rejectUpgrade(socket, toStatus(err));
    }
  }

  /**
   * The request, once its token is the cluster's (or, for an export, one the
   * export access admits) and its path one the endpoint serves.
   */
  private async authorize(req: IncomingMessage): Promise<AgentRequest> {
    const request = parseAgentRequest(pathOf(req));
    if (bearerMatches(req.headers.authorization, this.options.token)) {
      if (request === undefined) throw new ApiError('NotFound', `the agent endpoint could not find ${pathOf(req)}: ${served}`);
      return request;
    }
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (pathOf(req) === agentMetricsPath) {
      await this.authorizeMetrics(req);
      if (request === undefined) throw new ApiError('NotFound', `the agent endpoint could not find ${pathOf(req)}: ${served}`);
      return request;
    }
    const access = this.options.exportAccess;
    if (request?.operation.kind === 'export' && presented !== undefined && access !== undefined) {
      const target = new URL(req.url ?? '/', 'https://agent.invalid').searchParams.get('target') ?? '';
      if (target === '') throw badRequest(`${pathOf(req)} needs ?target=UID: the uid of the claim the volume is copied into`);
      await access.authorize(presented, target);
      return request;
    }
    throw new ApiError('Unauthorized', 'Unauthorized: the agent endpoint accepts only the API server\'s bearer token (the cluster token), and for volume exports the node credential of a node copying into a claim of its own');
  }

  /**
   * `GET /metrics` is for the API server (the cluster token) and scrapers
   * (a metrics token, which the metrics access reviews); 401/403 otherwise.
   * A `/metrics` route calls this before it answers.
   */
  private async authorizeMetrics(req: IncomingMessage): Promise<void> {
    if (bearerMatches(req.headers.authorization, this.options.token)) return;
    const presented = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    const access = this.options.metricsAccess;
    if (presented === undefined || access === undefined) {
      throw new ApiError('Unauthorized', `Unauthorized: ${agentMetricsPath} on the agent endpoint takes the cluster token${access === undefined ? '' : ' or a metrics token ("vireo token create --metrics")'}`);
    }
    await access.authorize(presented);
  }

  /** GET: the export of a claim or VolumeSnapshot for copy `?target=UID`; DELETE: its release. */
  private async export(req: IncomingMessage, res: ServerResponse, claim: ExportSource): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'DELETE') throw new ApiError('MethodNotAllowed', `${req.method ?? ''} is not allowed on ${pathOf(req)}: use GET to read the export, DELETE to release it`);
    const target = new URL(req.url ?? '/', 'https://agent.invalid').searchParams.get('target') ?? '';
    if (target === '') throw badRequest(`${pathOf(req)} needs ?target=UID: the uid of the claim the volume is copied into`);
    const exports = this.exports;
    if (exports === undefined) throw new ApiError('ServiceUnavailable', 'this node agent does not export volumes yet (it is still starting): try again in a moment');
    if (req.method === 'DELETE') {
      await exports.releaseExport(claim, target);
      sendStatus(res, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 });
      return;
    }
    const exported = await exports.prepareExport(claim, target);
    this.logger.info('volume export', { kind: claim.kind, namespace: claim.namespace, name: claim.name, target, range: req.headers.range });
    await sendExport(req, res, exported, this.options.exportRateBytesPerSecond === undefined ? {} : { rateBytesPerSecond: this.options.exportRateBytesPerSecond });
  }

  private agent(): AgentHandle {
    if (this.served === undefined) throw new ApiError('ServiceUnavailable', 'the node agent is still starting: try again in a moment');
    return this.served;
  }

  private refused(req: IncomingMessage, err: unknown): void {
    const status = toStatus(err);
    if (status.code >= 500) this.logger.error('agent endpoint request failed', { method: req.method, url: req.url, err });
    else this.logger.debug('agent endpoint request refused', { method: req.method, url: req.url, code: status.code });
  }
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'https://agent.invalid').pathname;
}

/** The JSON body of a migration step (at most 64 KiB), checked. */
async function readMigrationCommand(req: IncomingMessage): Promise<MigrationCommand> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > 65_536) throw badRequest('a migration step is at most 64 KiB of JSON');
    chunks.push(buffer);
  }
  try {
    return parseMigrationCommand(JSON.parse(Buffer.concat(chunks).toString('utf8')));
  } catch (err) {
    throw badRequest(`not a migration step: ${err instanceof Error ? err.message : String(err)}`);
  }
}
