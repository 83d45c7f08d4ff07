/**
 * The Client over HTTPS with a bearer token, as any Kubernetes client does
 * it: keep-alive connections, JSON bodies, `Status` errors turned back into
 * ApiErrors, watches as line-delimited JSON streams. Given several servers
 * (one cluster's `vireo server`s on one etcd), it uses one until it fails to
 * connect or answers 503, then the next (`server-list.ts` says which
 * requests may be sent again); a watch that breaks ends, and its informer
 * resumes it, from its last resourceVersion, on the server that answers.
 */
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { KList, KObject } from '../api/object.js';
import { ApiError } from '../api/errors.js';
import { errorFromResponse } from './status-error.js';
import { isUnavailableStatus, mayRetryElsewhere, parseServerList } from './server-list.js';
import type { Client, ClientWatchEvent, DeleteOptions, ListQuery, PatchOptions, PatchType, ResourceRef, WatchQuery } from './types.js';

export interface HttpClientOptions {
  /** `https://host:port`, or several (a list, or separated by commas) of one cluster. */
  server: string | readonly string[];
  /** A server that has not accepted the connection after this long counts as unreachable (default 5 s). */
  connectTimeoutMs?: number;
  token: string;
  /** PEM of the CA that signed the server's certificate. */
  caCert: string;
  /** `fieldManager` for writes (Kubernetes records it in managedFields). */
  userAgent?: string;
  /**
   * A request (not a watch) whose connection stays silent this long fails
   * with a 503 ApiError and its socket is dropped. Default 30 s: without it
   * a request sent into a cut link waits for TCP to give up (minutes), and
   * holds up whatever awaits it (the agent's reconciles, its Lease).
   */
  requestTimeoutMs?: number;
}

const patchTypes: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  json: 'application/json-patch+json',
  apply: 'application/apply-patch+yaml',
};

/** The collection path of a resource, e.g. `/apis/kubevirt.io/v1/namespaces/default/virtualmachines`. */
export function collectionPath(ref: ResourceRef, namespace: string | undefined): string {
  const base = ref.group === '' ? `/api/${ref.version}` : `/apis/${ref.group}/${ref.version}`;
  const ns = ref.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${ref.plural}`;
}

function itemPath(ref: ResourceRef, namespace: string | undefined, name: string, subresource?: string): string {
  return `${collectionPath(ref, namespace)}/${encodeURIComponent(name)}${subresource === undefined ? '' : `/${subresource}`}`;
}

function queryString(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}

export class HttpClient implements Client {
  private readonly agent: Agent;
  private readonly streamAgent: Agent;
  /** The servers, in the order given; requests go to `servers[current]` first. */
  readonly servers: readonly string[];
  private current = 0;

  constructor(private readonly options: HttpClientOptions) {
    this.servers = parseServerList(options.server);
    this.agent = new Agent({ ca: options.caCert, keepAlive: true, maxSockets: 32 });
    // Watches hold their connection for minutes; keep them off the request pool.
    this.streamAgent = new Agent({ ca: options.caCert, keepAlive: false });
  }

  close(): void {
    this.agent.destroy();
    this.streamAgent.destroy();
  }

  async get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KObject> {
    return (await this.call('GET', itemPath(ref, namespace, name))) as KObject;
  }

  async tryGet(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KObject | undefined> {
    try {
      return await this.get(ref, namespace, name);
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
      throw err;
    }
  }

  async list(ref: ResourceRef, query: ListQuery = {}): Promise<KList> {
    const path = collectionPath(ref, query.namespace) + queryString({ labelSelector: query.labelSelector, fieldSelector: query.fieldSelector });
    return (await this.call('GET', path)) as KList;
  }

  async create(ref: ResourceRef, obj: KObject): Promise<KObject> {
    return (await this.call('POST', collectionPath(ref, obj.metadata.namespace) + this.managerQuery(), obj)) as KObject;
  }

  async update(ref: ResourceRef, obj: KObject, subresource?: string): Promise<KObject> {
    return (await this.call('PUT', itemPath(ref, obj.metadata.namespace, obj.metadata.name ?? '', subresource) + this.managerQuery(), obj)) as KObject;
  }

  async patch(ref: ResourceRef, namespace: string | undefined, name: string, type: PatchType, body: unknown, options: PatchOptions = {}): Promise<KObject> {
    const query = queryString({ fieldManager: options.fieldManager ?? this.options.userAgent, force: options.force });
    return (await this.call('PATCH', itemPath(ref, namespace, name, options.subresource) + query, body, patchTypes[type])) as KObject;
  }

  async delete(ref: ResourceRef, namespace: string | undefined, name: string, options: DeleteOptions = {}): Promise<void> {
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', ...options };
    await this.call('DELETE', itemPath(ref, namespace, name), body);
  }

  async raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    const res = await this.send(method, path, body, 'application/json');
    return { status: res.status, body: res.text };
  }

  async watch(ref: ResourceRef, query: WatchQuery, onEvent: (event: ClientWatchEvent) => void, signal: AbortSignal): Promise<void> {
    const path =
      collectionPath(ref, query.namespace) +
      queryString({
        watch: 'true',
        resourceVersion: query.resourceVersion,
        labelSelector: query.labelSelector,
        fieldSelector: query.fieldSelector,
        allowWatchBookmarks: query.allowWatchBookmarks,
        timeoutSeconds: query.timeoutSeconds,
      });
    const answer = await this.acrossServers('GET', (server) => this.watchOn(server, path, onEvent, signal));
    if (isUnavailableStatus(answer.status)) throw errorFromResponse(answer.status, answer.text);
  }

  /** The server requests go to first: the one that answered last. */
  get server(): string {
    return this.servers[this.current] ?? '';
  }

  /**
   * Runs `attempt` on the current server, then on the next ones while it
   * fails in a way another server may fix (see `server-list.ts`) or answers
   * 503; the last failure or 503 stands when every server had its turn.
   */
  private async acrossServers<T extends { status: number }>(method: string, attempt: (server: string) => Promise<T>): Promise<T> {
    const count = this.servers.length;
    const failures: string[] = [];
    const first = this.current;
    for (let i = 0; i < count; i++) {
      const index = (first + i) % count;
      const server = this.servers[index] ?? '';
      const last = i === count - 1;
      try {
        const answer = await attempt(server);
        if (isUnavailableStatus(answer.status) && !last) {
          failures.push(`${server}: 503`);
          this.current = (index + 1) % count;
          continue;
        }
        this.current = index;
        return answer;
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failures.push(`${server}: ${message}`);
        if (err instanceof ApiError) throw err;
        if (!mayRetryElsewhere(err, method) || last) {
          if (mayRetryElsewhere(err, method)) this.current = (index + 1) % count;
          const where = count === 1 ? `the API server at ${server}` : `any of the API servers (${failures.join('; ')})`;
          throw new ApiError('ServiceUnavailable', `cannot reach ${where}${count === 1 ? `: ${message}` : ''}`, { cause: err });
        }
        this.current = (index + 1) % count;
      }
    }
    throw new ApiError('ServiceUnavailable', `cannot reach any of the API servers (${failures.join('; ')})`);
  }

  /** One watch stream on one server; resolves with status 200 when the stream ends, rejects with its Status otherwise. */
  private watchOn(server: string, path: string, onEvent: (event: ClientWatchEvent) => void, signal: AbortSignal): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) { resolve({ status: 200, text: '' }); return; }
      const done = (): void => { resolve({ status: 200, text: '' }); };
      const req = request(`${server}${path}`, { agent: this.streamAgent, headers: this.headers() }, (res: IncomingMessage) => {
        if ((res.statusCode ?? 0) !== 200) {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => {
            // A 503 goes to the next server; other Statuses are the caller's.
            if (isUnavailableStatus(res.statusCode ?? 0)) resolve({ status: 503, text });
            else reject(errorFromResponse(res.statusCode ?? 0, text));
          });
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim() === '') continue;
            try {
              onEvent(JSON.parse(line) as ClientWatchEvent);
            } catch (err) {
              req.destroy(err instanceof Error ? err : new Error(String(err)));
            }
          }
        });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      });
      this.limitConnect(req);
      const onAbort = (): void => {
        req.destroy();
        done();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => {
        if (signal.aborted) done();
        else reject(err);
      });
      req.on('close', () => { signal.removeEventListener('abort', onAbort); });
      req.end();
    });
  }

  /** A connection not made within the connect timeout fails as unreachable (a dead host may never refuse). */
  private limitConnect(req: ReturnType<typeof request>): void {
    const ms = this.options.connectTimeoutMs ?? 5_000;
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`no connection within ${ms} ms`), { code: 'ECONNECT_TIMEOUT' }));
      }, ms);
      socket.once('connect', () => { clearTimeout(timer); });
      socket.once('close', () => { clearTimeout(timer); });
    });
  }

  private managerQuery(): string {
    return this.options.userAgent === undefined ? '' : queryString({ fieldManager: this.options.userAgent });
  }

  private headers(contentType?: string, length?: number): Record<string, string> {
    const h: Record<string, string> = { authorization: `Bearer ${this.options.token}`, accept: 'application/json' };
    if (this.options.userAgent !== undefined) h['user-agent'] = this.options.userAgent;
    if (contentType !== undefined) h['content-type'] = contentType;
    if (length !== undefined) h['content-length'] = String(length);
    return h;
  }

  private async call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    const res = await this.send(method, path, body, contentType);
    if (res.status < 200 || res.status >= 300) throw errorFromResponse(res.status, res.text);
    return res.text === '' ? undefined : (JSON.parse(res.text) as unknown);
  }

  private send(method: string, path: string, body: unknown, contentType: string): Promise<{ status: number; text: string }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return this.acrossServers(method, (server) => this.sendTo(server, method, path, payload, contentType));
  }

  private sendTo(server: string, method: string, path: string, payload: string | undefined, contentType: string): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const req = request(
        `${server}${path}`,
        { method, agent: this.agent, headers: this.headers(payload === undefined ? undefined : contentType, payload === undefined ? undefined : Buffer.byteLength(payload)) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }); });
          res.on('error', reject);
        },
      );
      this.limitConnect(req);
      req.on('error', reject);
      // A request sent into a cut link may never be answered: it fails (503 once acrossServers wraps it) and its socket goes.
      const timeoutMs = this.options.requestTimeoutMs ?? 30_000;
      req.setTimeout(timeoutMs, () => { req.destroy(Object.assign(new Error(`no answer to ${method} ${path.split('?')[0] ?? path} within ${timeoutMs / 1000} s: the network or the server is down`), { code: 'ETIMEDOUT' })); });
      req.end(payload);
    });
  }
}
