/**
 * The API server: HTTPS, bearer-token authentication, and dispatch to
 * discovery, OpenAPI, health and resource endpoints. Every failure becomes
 * a `Status` with the right code; a client's mistake is never a 5xx.
 */
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AgentDirectory } from '../agent/handle.js';
import { ApiError, toStatus } from '../api/errors.js';
import { StoreError } from '../store/types.js';
import type { Logger } from '../log/logger.js';
import type { Store } from '../store/types.js';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, aggregatedDiscovery } from './discovery.js';
import { buildResourceRequest, handleResource, sendJson } from './handlers.js';
import type { HandlerDeps, Writer } from './handlers.js';
import { negotiateDiscovery } from './negotiate.js';
import { ObjectStore } from './object-store.js';
import { OpenApiService } from './openapi.js';
import { parseRequestPath } from './request-info.js';
import type { ResourceRegistry } from './resources.js';
import { createAdmission } from './admission.js';
import type { ServiceNetwork } from './admission-service.js';
import { SubresourceApi, rejectUpgrade } from './subresources/index.js';
import { UploadProxy } from './upload-proxy.js';
import { UploadTokens } from './upload-token.js';
import { createUploadTokenRequest, isUploadTokenRequest, uploadTokenRequestDef } from './upload-token-request.js';
import { createTokenReview, isTokenReview, tokenReviewDef } from './token-review.js';
import { version } from './version.js';
import { exportRouteOf, serveVolumeExport } from './volume-export.js';
import { listenOn } from '../net/listen.js';
import { textFormat } from '../agent/metrics/index.js';
import { Credentials } from './credentials.js';
import type { Identity } from './credentials.js';
import { isJoinPath, serveJoin } from './join.js';
import { Registry } from 'prom-client';
import { ApiRequestMetrics } from './request-metrics.js';
import type { MeteredRequest } from './request-metrics.js';
import { isMetricsRead } from '../api/metrics-token.js';

export interface TlsMaterial {
  cert: string;
  key: string;
}

export interface ApiServerOptions {
  store: Store;
  registry: ResourceRegistry;
  /** The bearer token every request must carry. */
  token: string;
  /**
   * The bearer token of Vireo's own components (controllers, scheduler,
   * agents): their writes pass admission as KubeVirt's components' do, so
   * they may set what users may not (the VMI's reserved `kubevirt.io/` labels).
   */
  componentToken?: string;
  tls: TlsMaterial;
  logger: Logger;
  afterWrite?: HandlerDeps['afterWrite'];
  /** The node agents, for the guest actions and console/VNC streams of `subresources.kubevirt.io`, and uploads. */
  agents?: AgentDirectory;
  /** The key CDI upload tokens are signed with (kept in the data directory); random per start when absent. */
  uploadKey?: Buffer;
  /** The Service cluster IP and node port ranges (default 10.96.0.0/12 and 30000-32767). */
  serviceNetwork?: ServiceNetwork;
  /** The CA certificate, which hosts joining with a token learn (`/vireo/v1/cluster-info`); without it, joining is refused. */
  caCert?: string;
  /**
   * The registry `GET /metrics` serves (the control plane's families);
   * the server adds its request metrics to it. A registry of its own when
   * absent. Never prom-client's global one: tests run several servers in
   * one process.
   */
  metrics?: Registry;
  /**
   * The text of this process's node agent's metrics, appended to
   * `/metrics` (its families are the agent's, never the control plane's).
   * Called at scrape time; an answer later than {@link nodeMetricsDeadlineMs}
   * or a failure leaves them out of that scrape.
   */
  nodeMetrics?: () => Promise<string>;
}

/** How long a scrape waits for the node agent's text. */
export const nodeMetricsDeadlineMs = 5_000;


/** The node of `/api/v1/nodes/{node}/proxy/metrics`, the only node proxy path served. */
function nodeMetricsProxyOf(path: string): string | undefined {
  const match = /^\/api\/v1\/nodes\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)\/proxy\/metrics$/.exec(path);
  return match?.[1];
}

/** How often join tokens past their expiration are deleted. */
const tokenSweepMs = 60_000;

export class ApiServer {
  readonly objects: ObjectStore;
  private readonly server: Server;
  private readonly openapi: OpenApiService;
  private readonly credentials: Credentials;
  private sweep: NodeJS.Timeout | undefined;
  /** Aborts every request in flight on stop; each request (a watch may last hours) listens on it once. */
  private readonly shutdown = new AbortController();
  private readonly deps: HandlerDeps;
  private readonly subresources: SubresourceApi;
  private readonly uploadTokens: UploadTokens;
  private readonly uploads: UploadProxy;
  private address = '127.0.0.1:6443';
  private readonly metrics: Registry;
  private readonly requestMetrics: ApiRequestMetrics;

  constructor(private readonly options: ApiServerOptions) {
    this.objects = new ObjectStore(options.store, createAdmission(options.registry, options.serviceNetwork === undefined ? {} : { serviceNetwork: options.serviceNetwork }));
    this.openapi = new OpenApiService(options.registry);
    this.metrics = options.metrics ?? new Registry();
    this.requestMetrics = new ApiRequestMetrics(this.metrics, (group, version, resource) => options.registry.lookup(group, version, resource) !== undefined);
    this.credentials = new Credentials({
      objects: this.objects,
      registry: options.registry,
      token: options.token,
      logger: options.logger.child({ component: 'credentials' }),
      ...(options.componentToken === undefined ? {} : { componentToken: options.componentToken }),
    });
    // One listener per request in flight, so no fixed limit fits: Node's default of 10 warns at the 11th watch.
    setMaxListeners(0, this.shutdown.signal);
    this.deps = { store: options.store, objects: this.objects, ...(options.afterWrite === undefined ? {} : { afterWrite: options.afterWrite }) };
    this.subresources = new SubresourceApi({ objects: this.objects, registry: options.registry, logger: options.logger, ...(options.agents === undefined ? {} : { agents: options.agents }) });
    // CDI's upload API: UploadTokenRequest (a create-only virtual resource) and the upload proxy on this port.
    this.uploadTokens = new UploadTokens(options.uploadKey ?? randomBytes(32));
    options.registry.set('upload.cdi.kubevirt.io', [uploadTokenRequestDef()]);
    // TokenReview (create-only, nothing stored): node agents' endpoints ask who presented a token.
    options.registry.set('authentication.k8s.io', [tokenReviewDef()]);
    this.uploads = new UploadProxy({ objects: this.objects, registry: options.registry, agents: options.agents, tokens: this.uploadTokens, logger: options.logger.child({ component: 'upload-proxy' }) });
    this.server = createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, (req, res) => {
      void this.handle(req, res);
    });
    // Console and VNC are WebSockets (subresources.kubevirt.io); every other upgrade is refused with a Status.
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.handleUpgrade(req, socket, head);
    });
    // Long watches: no server-side request timeout; keep-alive like kube-apiserver.
    this.server.requestTimeout = 0;
    this.server.headersTimeout = 60_000;
    this.server.keepAliveTimeout = 65_000;
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    const addr = await listenOn(this.server, host, port);
    this.address = `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}`;
    // Kubernetes' token cleaner: expired join tokens go (they are refused before that anyway).
    this.sweep = setInterval(() => {
      this.credentials.sweepExpired(new Date()).catch((err: unknown) => { this.options.logger.warn('sweeping expired join tokens failed', { err }); });
    }, tokenSweepMs);
    this.sweep.unref();
    return addr;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    this.shutdown.abort();
    // Upgraded sockets are not HTTP connections: closeAllConnections() does not end them.
    this.subresources.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => { resolve(); });
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const abort = new AbortController();
    const onShutdown = (): void => { abort.abort(); };
    this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    const metered = this.requestMetrics.begin(req, parseRequestPath(new URL(req.url ?? '/', 'https://vireo.invalid').pathname));
    res.on('close', () => {
      abort.abort();
      this.requestMetrics.end(metered, res.statusCode);
    });
    try {
      // The upload proxy's bearer is an upload token, not the cluster's.
      if (this.uploads.serves(req)) { await this.uploads.handle(req, res); return; }
      // Joining: the CA discovery is unauthenticated, the exchange takes a join token.
      if (isJoinPath(new URL(req.url ?? '/', 'https://vireo.invalid').pathname)) { await this.serveJoin(req, res); return; }
      const identity = await this.credentials.authenticate(req);
      await this.route(req, res, abort.signal, identity);
    } catch (err) {
      this.fail(req, res, err);
    } finally {
      this.shutdown.signal.removeEventListener('abort', onShutdown);
      this.options.logger.debug('request', { method: req.method, url: req.url, code: res.statusCode, ms: Math.round(performance.now() - started) });
    }
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // A client that resets during the handshake must not take the server down.
    socket.on('error', () => { socket.destroy(); });
    const info = parseRequestPath(new URL(req.url ?? '/', 'https://vireo.invalid').pathname);
    const metered: MeteredRequest = this.requestMetrics.begin(req, info, true);
    let code = 101;
    socket.once('close', () => { this.requestMetrics.end(metered, code); });
    try {
      const identity = await this.credentials.authenticate(req);
      if (identity.kind === 'node' || identity.kind === 'joining' || identity.kind === 'metrics') throw new ApiError('Forbidden', `${req.url ?? '/'} is for users: a ${identity.kind === 'node' ? 'node credential' : identity.kind === 'metrics' ? 'metrics token' : 'join token'} cannot open consoles, VNC or port forwards`);
      if (!info.isResource || !this.subresources.serves(info)) {
        throw new ApiError('BadRequest', `${req.url ?? '/'} does not accept a protocol upgrade (Upgrade: ${req.headers.upgrade ?? ''}): only the console and vnc subresources of subresources.kubevirt.io are WebSockets`);
      }
      await this.subresources.upgrade(info, req, socket, head);
      this.options.logger.debug('upgrade', { url: req.url });
    } catch (err) {
      const status = toStatus(storeUnavailable(err));
      code = status.code;
      if (status.code >= 500) this.options.logger.error('upgrade failed', { url: req.url, err });
      else this.options.logger.debug('upgrade refused', { url: req.url, code: status.code });
      rejectUpgrade(socket, status);
    }
  }

  private async serveJoin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const caCert = this.options.caCert;
    if (caCert === undefined) throw new ApiError('NotFound', 'this API server does not take joining hosts (it was started without its CA certificate)');
    await serveJoin(req, res, { objects: this.objects, registry: this.options.registry, credentials: this.credentials, caCert, serverToken: this.options.token });
  }

  private async route(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, identity: Identity): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://vireo.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const info = parseRequestPath(path);
    if (identity.kind === 'joining') throw new ApiError('Forbidden', `a join token only joins a node (POST /vireo/v1/join, which vireo agent --token does): it cannot ${method} ${path}`);
    if (identity.kind === 'metrics' && !isMetricsRead(method, path)) {
      throw new ApiError('Forbidden', `a metrics token (user system:vireo:metrics-reader) may not ${method} ${path}: it reads only GET /metrics and GET /api/v1/nodes/NODE/proxy/metrics; use the cluster token (your kubeconfig) for anything else`);
    }
    if (path === '/metrics') { await this.serveMetrics(req, res); return; }
    if (identity.kind === 'node' && info.isResource && (this.subresources.serves(info) || isUploadTokenRequest(info))) {
      throw new ApiError('Forbidden', `node ${identity.nodeName} may not ${method} ${path}: guest actions, consoles and upload tokens are for users`);
    }
    if (info.isResource && this.subresources.serves(info)) { await this.subresources.handle(info, req, res); return; }
    const proxiedNode = nodeMetricsProxyOf(path);
    if (proxiedNode !== undefined) { await this.serveNodeMetrics(proxiedNode, identity, info, req, res); return; }
    // Exports of this server's own node's volumes, for copies to other nodes (their agents present the cluster token, or their node credential for a claim of their node).
    if (exportRouteOf(path) !== undefined) {
      await this.credentials.authorizeExport(identity, url.searchParams.get('target') ?? '');
      await serveVolumeExport(req, res, this.options.agents);
      return;
    }
    if (info.isResource && isTokenReview(info)) { await createTokenReview(info, req, res, this.credentials); return; }
    if (info.isResource && isUploadTokenRequest(info)) { await createUploadTokenRequest(info, req, res, { objects: this.objects, registry: this.options.registry, tokens: this.uploadTokens }); return; }
    if (!info.isResource) {
      if (method !== 'GET' && method !== 'HEAD') throw new ApiError('MethodNotAllowed', `${method} is not allowed on ${path}: it is read-only`);
      this.serveNonResource(info.parts, path, req, res); return;
    }
    const def = this.options.registry.lookup(info.group, info.version, info.resource);
    if (def === undefined) {
      throw new ApiError('NotFound', `the server could not find the requested resource (${info.group === '' ? '' : `${info.group}/`}${info.version} ${info.resource})`, {
        details: { group: info.group, kind: info.resource },
      });
    }
    await this.credentials.authorize(identity, { method, info });
    const writer: Writer = identity.kind === 'controller' ? 'controller' : 'user';
    const request = buildResourceRequest(info, def, url, req, res, signal, writer);
    if (identity.kind === 'node') request.admitCreate = (input: unknown): void => { this.credentials.admitCreate(identity, info, input); };
    await handleResource(request, this.deps);
  }

  /** The control plane's families, then this process's node agent's. */
  private async serveMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') throw new ApiError('MethodNotAllowed', `${method} is not allowed on /metrics: it is read-only (GET)`);
    const [controlPlane, node] = await Promise.all([this.metrics.metrics(), this.nodeMetricsText()]);
    const text = node === '' ? controlPlane : `${controlPlane}${controlPlane.endsWith('\n') || controlPlane === '' ? '' : '\n'}${node}`;
    res.writeHead(200, { 'Content-Type': textFormat, 'Content-Length': Buffer.byteLength(text) });
    res.end(method === 'HEAD' ? undefined : text);
  }

  /** The node agent's text, or '' when there is none, it failed, or it missed the deadline (logged). */
  private async nodeMetricsText(): Promise<string> {
    const hook = this.options.nodeMetrics;
    if (hook === undefined) return '';
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        this.options.logger.warn('the node agent\'s metrics missed the scrape deadline; served without them', { deadlineMs: nodeMetricsDeadlineMs });
        resolve('');
      }, nodeMetricsDeadlineMs);
    });
    try {
      return await Promise.race([hook(), deadline]);
    } catch (err) {
      this.options.logger.warn('the node agent\'s metrics failed; served without them', { err });
      return '';
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Kubernetes' node proxy for a node's metrics (`kubectl get --raw
   * /api/v1/nodes/NODE/proxy/metrics`, as a kubelet's are read): the node
   * agent's text, from this process's agent or over its endpoint.
   */
  private async serveNodeMetrics(node: string, identity: Identity, info: ReturnType<typeof parseRequestPath>, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (method !== 'GET') throw new ApiError('MethodNotAllowed', `${method} is not allowed on ${req.url ?? ''}: the node proxy serves only GET of the node's metrics`);
    if (info.isResource) await this.credentials.authorize(identity, { method, info });
    // An unknown node is a 404, as kube-apiserver answers.
    const nodes = this.options.registry.lookup('', 'v1', 'nodes');
    if (nodes !== undefined) await this.objects.get(nodes, undefined, node);
    const handle = this.options.agents?.forNode(node);
    if (handle === undefined) throw new ApiError('ServiceUnavailable', `this server cannot reach node agents: it was started without them, so it cannot read the metrics of node ${node}`);
    const text = await handle.metrics();
    res.writeHead(200, { 'Content-Type': textFormat, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  private serveNonResource(parts: string[], path: string, req: IncomingMessage, res: ServerResponse): void {
    const registry = this.options.registry;
    const [first, second, third] = parts;
    if (path === '/version' || path === '/version/') { sendJson(res, 200, version); return; }
    if (first === 'healthz' || first === 'livez' || first === 'readyz') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    if (first === 'api' && parts.length === 1) { this.serveDiscoveryRoot(req, res, true); return; }
    if (first === 'apis' && parts.length === 1) { this.serveDiscoveryRoot(req, res, false); return; }
    if (first === 'api' && second !== undefined && parts.length === 2) { sendFound(res, apiResourceList(registry, '', second), path); return; }
    if (first === 'apis' && second !== undefined && parts.length === 2) { sendFound(res, apiGroup(registry, second), path); return; }
    if (first === 'apis' && second !== undefined && third !== undefined && parts.length === 3) {
      sendFound(res, apiResourceList(registry, second, third), path); return;
    }
    if (first === 'openapi') { this.openapi.serve(parts.slice(1), req, res); return; }
    throw new ApiError('NotFound', `the server could not find the requested resource: ${path}`);
  }

  private serveDiscoveryRoot(req: IncomingMessage, res: ServerResponse, core: boolean): void {
    const wanted = negotiateDiscovery(req.headers.accept);
    if (wanted === 'legacy') {
      sendJson(res, 200, core ? apiVersions(this.address) : apiGroupList(this.options.registry)); return;
    }
    const text = JSON.stringify(aggregatedDiscovery(this.options.registry, core, wanted));
    res.writeHead(200, {
      'Content-Type': `application/json;g=apidiscovery.k8s.io;v=${wanted};as=APIGroupDiscoveryList`,
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    const status = toStatus(storeUnavailable(err));
    if (status.code >= 500) this.options.logger.error('request failed', { method: req.method, url: req.url, err });
    if (res.headersSent) {
      // A stream already started (watch): end it; the client re-watches.
      res.end();
      return;
    }
    sendJson(res, status.code, status);
  }
}

function sendFound(res: ServerResponse, body: object | undefined, path: string): void {
  if (body === undefined) throw new ApiError('NotFound', `the server could not find the requested resource: ${path}`);
  sendJson(res, 200, body);
}

/**
 * A store that cannot be reached (etcd down or cut off) is the server's
 * temporary state, not a bug: 503 with the store's message, which names
 * where it looked and what to do, so clients retry.
 */
function storeUnavailable(err: unknown): unknown {
  return err instanceof StoreError && err.code === 'Unavailable' ? new ApiError('ServiceUnavailable', err.message, { cause: err }) : err;
}
