/**
 * The Client over HTTPS with a bearer token, as any Kubernetes client does
 * it: keep-alive connections, JSON bodies, `Status` errors turned back into
 * ApiErrors, watches as line-delimited JSON streams.
 */
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { KList, KObject } from '../api/object.js';
import { ApiError } from '../api/errors.js';
import { errorFromResponse } from './status-error.js';
import type { Client, ClientWatchEvent, DeleteOptions, ListQuery, PatchOptions, PatchType, ResourceRef, WatchQuery } from './types.js';

export interface HttpClientOptions {
  /** `https://host:port` */
  server: string;
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

  constructor(private readonly options: HttpClientOptions) {
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

  watch(ref: ResourceRef, query: WatchQuery, onEvent: (event: ClientWatchEvent) => void, signal: AbortSignal): Promise<void> {
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
    return new Promise((resolve, reject) => {
      if (signal.aborted) { resolve(); return; }
      const req = request(`${this.options.server}${path}`, { agent: this.streamAgent, headers: this.headers() }, (res: IncomingMessage) => {
        if ((res.statusCode ?? 0) !== 200) {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => { reject(errorFromResponse(res.statusCode ?? 0, text)); });
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
        res.on('end', () => { resolve(); });
        res.on('close', () => { resolve(); });
        res.on('error', () => { resolve(); });
      });
      const onAbort = (): void => {
        req.destroy();
        resolve();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      req.on('error', (err) => {
        if (signal.aborted) resolve();
        else reject(err);
      });
      req.on('close', () => { signal.removeEventListener('abort', onAbort); });
      req.end();
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
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.options.server}${path}`,
        { method, agent: this.agent, headers: this.headers(payload === undefined ? undefined : contentType, payload === undefined ? undefined : Buffer.byteLength(payload)) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }); });
          res.on('error', reject);
        },
      );
      req.on('error', (err) => { reject(err instanceof ApiError ? err : new ApiError('ServiceUnavailable', `cannot reach the API server at ${this.options.server}: ${err.message}`, { cause: err })); });
      const timeoutMs = this.options.requestTimeoutMs ?? 30_000;
      req.setTimeout(timeoutMs, () => { req.destroy(new ApiError('ServiceUnavailable', `the API server at ${this.options.server} did not answer ${method} ${path.split('?')[0] ?? path} within ${timeoutMs / 1000} s: the network or the server is down`)); });
      req.end(payload);
    });
  }
}
