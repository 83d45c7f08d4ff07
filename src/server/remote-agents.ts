/**
 * How the API server reaches node agents on other hosts (`vireo agent`), as
 * kube-apiserver reaches kubelets: the address, port and certificate the
 * agent published on its Node; HTTPS for guest actions and the serial log,
 * a `plain.kubevirt.io` WebSocket for the console and VNC, a streamed
 * POST for the bytes of an upload. The agent's
 * certificate is self-signed and pinned: trust comes from the Node object
 * (which only agents holding the cluster token can write), not from a CA or
 * a hostname.
 */
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWebSocketStream } from 'ws';
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { agentRequestMethod, agentRequestPath, endpointOfNode } from '../agent/index.js';
import type { RemoteEndpoint } from '../agent/index.js';
import { parseMigrationAnswer } from '../agent/migration/index.js';
import type { MigrationAnswer, MigrationCommand } from '../agent/migration/index.js';
import type { AgentDirectory, AgentHandle, AgentOperation, GuestAction, GuestActionParameters, LocalAgentDirectory, UploadOptions, UploadResult } from '../agent/index.js';
import { isPlainObject } from '../api/object.js';
import { errorFromResponse } from '../client/index.js';
import { dialStream } from '../console/index.js';
import { httpsUrl } from '../net/listen.js';
import { pinnedTls } from '../net/pinned-tls.js';
import type { PinnedTls } from '../net/pinned-tls.js';

export { endpointOfNode };
export type { RemoteEndpoint };

function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => { resolve(Buffer.concat(chunks).toString('utf8')); });
    res.on('error', reject);
  });
}

/** How long a guest action or log read may take before the agent counts as unreachable. */
const requestTimeoutMs = 30_000;

/** A migration step may start a QEMU (pulling its image) or wait for mirrors to finish. */
const migrationTimeoutMs = 300_000;

/** An {@link AgentHandle} over HTTPS and WebSocket to a `vireo agent` endpoint. */
export class RemoteAgentHandle implements AgentHandle {
  private readonly tls: PinnedTls;
  private readonly agent: Agent;
  private readonly base: string;

  constructor(
    readonly nodeName: string,
    readonly endpoint: RemoteEndpoint,
    private readonly token: string,
  ) {
    this.tls = pinnedTls(endpoint.certificate);
    this.agent = new Agent({ ...this.tls, keepAlive: true, maxSockets: 16 });
    this.base = httpsUrl(endpoint.address, endpoint.port);
  }

  async guestAction(namespace: string, name: string, action: GuestAction, parameters: GuestActionParameters = {}): Promise<void> {
    await this.call(namespace, name, { kind: 'action', action, ...(parameters.unfreezeTimeoutSeconds === undefined ? {} : { unfreezeTimeoutSeconds: parameters.unfreezeTimeoutSeconds }) });
  }

  async serialLog(namespace: string, name: string): Promise<string> {
    return this.call(namespace, name, { kind: 'log' });
  }

  async metrics(): Promise<string> {
    return this.call('', '', { kind: 'metrics' });
  }

  async openStream(namespace: string, name: string, kind: 'console' | 'vnc'): Promise<Duplex> {
    return this.dial(agentRequestPath(namespace, name, { kind: 'stream', stream: kind }));
  }

  async openPortForward(namespace: string, name: string, port: number): Promise<Duplex> {
    return this.dial(agentRequestPath(namespace, name, { kind: 'portforward', port }));
  }

  private async dial(path: string): Promise<Duplex> {
    try {
      const ws = await dialStream({ server: this.base, token: this.token, caCert: this.tls.ca, checkServerIdentity: this.tls.checkServerIdentity, path, timeoutMs: requestTimeoutMs });
      return createWebSocketStream(ws);
    } catch (err) {
      // The dialer's own failures (not the agent's Status answers) carry the network error as their cause.
      throw err instanceof ApiError && err.cause !== undefined ? this.unreachable(err.cause) : this.explain(err);
    }
  }

  async upload(namespace: string, pvc: string, body: Readable, options: UploadOptions): Promise<UploadResult> {
    const operation: AgentOperation = { kind: 'upload', async: options.async };
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, 'content-type': 'application/octet-stream' };
    if (options.bytes !== undefined) headers['content-length'] = String(options.bytes);
    let answer: { code: number; body: string };
    try {
      answer = await new Promise((resolve, reject) => {
        // No timeout: the agent answers a sync upload only once the image is converted.
        const req = request(`${this.base}${agentRequestPath(namespace, pvc, operation)}`, { method: agentRequestMethod(operation), agent: this.agent, headers }, (res) => {
          readBody(res).then((text) => { resolve({ code: res.statusCode ?? 0, body: text }); }, reject);
        });
        req.on('error', reject);
        // The client's body cut short ends the request to the agent too, which then reports the upload interrupted.
        pipeline(body, req).catch((err: unknown) => { req.destroy(err instanceof Error ? err : new Error(String(err))); });
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (answer.code < 200 || answer.code >= 300) throw this.explain(errorFromResponse(answer.code, answer.body));
    return uploadResultOf(answer.body, this.nodeName);
  }

  async migration(namespace: string, name: string, command: MigrationCommand): Promise<MigrationAnswer> {
    const text = await this.call(namespace, name, { kind: 'migration' }, JSON.stringify(command), migrationTimeoutMs);
    try {
      return parseMigrationAnswer(JSON.parse(text));
    } catch (err) {
      throw new ApiError('InternalError', `the agent of node ${this.nodeName} answered a migration step with ${JSON.stringify(text.slice(0, 200))}: ${err instanceof Error ? err.message : String(err)}: run the same Vireo version on the server and the agent`);
    }
  }

  /** Lets go of the kept-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private async call(namespace: string, name: string, operation: AgentOperation, body?: string, timeoutMs = requestTimeoutMs): Promise<string> {
    const path = agentRequestPath(namespace, name, operation);
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    let answer: { code: number; body: string };
    try {
      answer = await new Promise((resolve, reject) => {
        const req = request(`${this.base}${path}`, { method: agentRequestMethod(operation), agent: this.agent, headers, timeout: timeoutMs }, (res) => {
          readBody(res).then((text) => { resolve({ code: res.statusCode ?? 0, body: text }); }, reject);
        });
        req.on('timeout', () => { req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)); });
        req.on('error', reject);
        req.end(body);
      });
    } catch (err) {
      throw this.unreachable(err);
    }
    if (answer.code >= 200 && answer.code < 300) return answer.body;
    throw this.explain(errorFromResponse(answer.code, answer.body));
  }

  /** An agent's refusal as the caller should see it: its own errors pass; its refusing this server is the server's problem. */
  private explain(err: unknown): ApiError {
    if (!(err instanceof ApiError)) return this.unreachable(err);
    if (err.reason !== 'Unauthorized' && err.reason !== 'Forbidden') return err;
    // A 401 passed on would tell the user their own credentials are wrong.
    return new ApiError('InternalError', `the agent of node ${this.nodeName} at ${this.base} refused this server's credentials (${err.message}): the agent must know this server's token: restart vireo agent with the kubeconfig vireo server wrote, or (a joined agent of another server) re-join it with a token of this server`, { cause: err });
  }

  private unreachable(err: unknown): ApiError {
    const code = (err as { code?: unknown } | undefined)?.code;
    const message = err instanceof Error ? err.message : String(err);
    // The pin failed: the peer's certificate is not the one on the Node (a restarted agent with a new one, or another process on that port).
    const why = typeof code === 'string' && code.includes('CERT') ? `its certificate is not the one node ${this.nodeName} publishes (${message})` : message;
    return new ApiError('ServiceUnavailable', `cannot reach the agent of node ${this.nodeName} at ${this.base}: ${why}; check that vireo agent runs there and that this server can reach that address`, { cause: err });
  }
}

/** What the directory needs; see the fields. */
export interface NodeAgentDirectoryOptions {
  /** The agents in this process (the one inside `vireo server`); they answer first. */
  local: LocalAgentDirectory;
  /** Reads a Node (the API server passes its store). */
  readNode: (nodeName: string) => Promise<KObject | undefined>;
  /** The bearer token the agents accept: the cluster token. */
  token: string;
}

/**
 * Every node's agent: the local one when it lives in this process, else a
 * handle that, on each call, reads the Node and reaches the agent it
 * publishes. The remote handle is kept per node while the Node's endpoint
 * and certificate stay the same, and replaced when they change.
 */
export class NodeAgentDirectory implements AgentDirectory {
  private readonly remotes = new Map<string, RemoteAgentHandle>();

  constructor(private readonly options: NodeAgentDirectoryOptions) {}

  forNode(nodeName: string): AgentHandle {
    return this.options.local.forNode(nodeName) ?? new LazyRemoteHandle(nodeName, () => this.remoteFor(nodeName));
  }

  /** Closes the remote handles' connections. */
  close(): void {
    for (const handle of this.remotes.values()) handle.close();
    this.remotes.clear();
  }

  /** The remote handle for the endpoint Node `nodeName` publishes now. */
  async remoteFor(nodeName: string): Promise<RemoteAgentHandle> {
    const endpoint = endpointOfNode(nodeName, await this.options.readNode(nodeName));
    const kept = this.remotes.get(nodeName);
    if (kept !== undefined && sameEndpoint(kept.endpoint, endpoint)) return kept;
    kept?.close();
    const handle = new RemoteAgentHandle(nodeName, endpoint, this.options.token);
    this.remotes.set(nodeName, handle);
    return handle;
  }
}

/** The agent's answer to an upload, checked rather than cast. */
function uploadResultOf(text: string, nodeName: string): UploadResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isPlainObject(parsed) || typeof parsed.bytes !== 'number' || typeof parsed.processing !== 'boolean') {
    throw new ApiError('InternalError', `the agent of node ${nodeName} answered an upload with ${JSON.stringify(text.slice(0, 200))}, not {bytes, processing}: run the same Vireo version on the server and the agent`);
  }
  return { bytes: parsed.bytes, processing: parsed.processing };
}

function sameEndpoint(a: RemoteEndpoint, b: RemoteEndpoint): boolean {
  return a.address === b.address && a.port === b.port && a.certificate === b.certificate;
}

/** A node's agent found when it is used: the directory's lookup stays synchronous, the Node read is not. */
class LazyRemoteHandle implements AgentHandle {
  constructor(
    readonly nodeName: string,
    private readonly resolve: () => Promise<AgentHandle>,
  ) {}

  async guestAction(namespace: string, name: string, action: GuestAction, parameters?: GuestActionParameters): Promise<void> {
    await (await this.resolve()).guestAction(namespace, name, action, parameters);
  }

  async openStream(namespace: string, name: string, kind: 'console' | 'vnc'): Promise<Duplex> {
    return (await this.resolve()).openStream(namespace, name, kind);
  }

  async openPortForward(namespace: string, name: string, port: number): Promise<Duplex> {
    return (await this.resolve()).openPortForward(namespace, name, port);
  }

  async serialLog(namespace: string, name: string): Promise<string> {
    return (await this.resolve()).serialLog(namespace, name);
  }

  async metrics(): Promise<string> {
    return (await this.resolve()).metrics();
  }

  async upload(namespace: string, pvc: string, body: Readable, options: UploadOptions): Promise<UploadResult> {
    return (await this.resolve()).upload(namespace, pvc, body, options);
  }

  async migration(namespace: string, name: string, command: MigrationCommand): Promise<MigrationAnswer> {
    return (await this.resolve()).migration(namespace, name, command);
  }
}
