/**
 * The host's side of joining (`vireo agent --server URL --token T`): learn
 * the server's CA from `/vireo/v1/cluster-info`, trusted only when its
 * signature shows the server knows the join token and, with
 * `--ca-cert-hash`, when it is the pinned CA (kubeadm's token discovery);
 * then exchange the token for the node's own credential, kept in
 * `<data-dir>/node-credential.json` (0600). Later starts read that file and
 * never use the join token again.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { caCertHash, caSignature, parseJoinToken, sameSecret } from '../api/join-token.js';
import { clusterInfoPath, joinPath, parseClusterInfo, parseJoinResponse, vireoVersion } from '../api/node-credential.js';
import type { ClusterInfo } from '../api/node-credential.js';
import { isPlainObject } from '../api/object.js';
import { HttpClient, parseServerList } from '../client/index.js';
import { CliError } from './errors.js';

/** What a joined agent keeps in its data directory. */
export interface NodeCredentialFile {
  /** The server the node joined through. */
  server: string;
  /** Every server of the cluster the agent may use (`--server a,b`), `server` first; older files have only `server`. */
  servers: string[];
  caCert: string;
  nodeName: string;
  /** The node's bearer token for the API server. */
  credential: string;
  /** SHA-256 (hex) of the token the API server presents to this agent's endpoint. */
  serverTokenSha256: string;
}

export interface JoinOptions {
  /** `--server`: one URL or several, comma-separated, of one cluster. */
  server: string;
  token: string;
  /** `sha256:<hex>`: the CA must have this public key. */
  caCertHash: string | undefined;
  nodeName: string;
  dataDir: string;
  /** Told when the CA is trusted without a pin. */
  warn: (message: string) => void;
}

export function nodeCredentialPath(dataDir: string): string {
  return join(dataDir, 'node-credential.json');
}

/** The stored credential of a host that joined before, or undefined. */
export function loadNodeCredential(dataDir: string): NodeCredentialFile | undefined {
  const path = nodeCredentialPath(dataDir);
  if (!existsSync(path)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError('usage', `${path} is not readable JSON (${err instanceof Error ? err.message : String(err)}): remove it and join again with a new token`, err);
  }
  const fields = ['server', 'caCert', 'nodeName', 'credential', 'serverTokenSha256'] as const;
  if (!isPlainObject(value) || fields.some((f) => typeof value[f] !== 'string' || value[f] === '')) {
    throw new CliError('usage', `${path} lacks one of ${fields.join(', ')}: remove it and join again with a new token`);
  }
  const servers = Array.isArray(value.servers) && value.servers.every((s) => typeof s === 'string') ? value.servers : [String(value.server)];
  return { server: String(value.server), servers, caCert: String(value.caCert), nodeName: String(value.nodeName), credential: String(value.credential), serverTokenSha256: String(value.serverTokenSha256) };
}

/** Joins the cluster at `options.server` and stores the node's credential; see the module comment. */
export async function joinCluster(options: JoinOptions): Promise<NodeCredentialFile> {
  const token = parseJoinToken(options.token);
  if (token === undefined) throw new CliError('usage', 'the --token is not a join token: it looks like abcdef.0123456789abcdef (6 and 16 lowercase letters or digits); get one on the server with "vireo token create"');
  if (options.caCertHash !== undefined && !/^sha256:[0-9a-f]{64}$/.test(options.caCertHash)) {
    throw new CliError('usage', `--ca-cert-hash ${options.caCertHash} is not valid: use sha256: and 64 hex digits, as "vireo token create" prints it`);
  }
  const servers = serverUrls(options.server);
  // Every server of one cluster serves the same cluster-info: the first that answers will do.
  const { server, info } = await firstClusterInfo(servers, token.id);
  if (!sameSecret(info.signature, caSignature(info.caCert, token))) {
    throw new CliError('usage', `the server at ${server} does not know join token ${token.id}.… (its CA signature does not match): this is not the server that made the token, or the token was mistyped`);
  }
  if (options.caCertHash === undefined) {
    options.warn(`trusting the CA of ${server} without --ca-cert-hash (${caCertHash(info.caCert)}): only the join token vouches for it; pass --ca-cert-hash to pin it`);
  } else if (caCertHash(info.caCert) !== options.caCertHash) {
    throw new CliError('usage', `the CA of ${server} has hash ${caCertHash(info.caCert)}, not ${options.caCertHash}: refusing to join a server that is not the pinned one (check --server and --ca-cert-hash)`);
  }
  const client = new HttpClient({ server: [server, ...servers.filter((s) => s !== server)], token: `${token.id}.${token.secret}`, caCert: info.caCert, userAgent: `vireo-agent/${options.nodeName}` });
  let answer: { status: number; body: string };
  try {
    answer = await client.raw('POST', joinPath, { nodeName: options.nodeName, version: vireoVersion });
  } finally {
    client.close();
  }
  if (answer.status !== 201) throw new CliError('usage', `the server at ${server} refused to join node ${options.nodeName}: ${messageOf(answer.body)}`);
  let response;
  try {
    response = parseJoinResponse(JSON.parse(answer.body));
  } catch (err) {
    throw new CliError('unavailable', `the server at ${server} answered the join with something unexpected (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const stored: NodeCredentialFile = { server, servers: [server, ...servers.filter((s) => s !== server)], caCert: info.caCert, nodeName: response.nodeName, credential: response.credential, serverTokenSha256: response.serverTokenSha256 };
  const path = nodeCredentialPath(options.dataDir);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
  chmodSync(`${path}.tmp`, 0o600);
  renameSync(`${path}.tmp`, path);
  return stored;
}

function serverUrls(flag: string): string[] {
  try {
    return parseServerList(flag);
  } catch (err) {
    throw new CliError('usage', `--server ${flag} is not valid: ${err instanceof Error ? err.message : String(err)} (of the vireo server, or several of one cluster)`);
  }
}

/** The cluster-info of the first server that answers; the last failure when none does. */
async function firstClusterInfo(servers: readonly string[], tokenId: string): Promise<{ server: string; info: ClusterInfo }> {
  let failure: unknown;
  for (const server of servers) {
    try {
      return { server, info: await fetchClusterInfo(server, tokenId) };
    } catch (err) {
      // Only an unreachable server sends the join to the next one; a refusal stands.
      if (!(err instanceof CliError) || err.code !== 'unavailable') throw err;
      failure = err;
    }
  }
  throw failure instanceof Error ? failure : new CliError('unavailable', 'no server to join');
}

/** `GET /vireo/v1/cluster-info` before the CA is known: TLS without verification; the answer is checked by its signature. */
async function fetchClusterInfo(server: string, tokenId: string): Promise<ClusterInfo> {
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(`${server}${clusterInfoPath}?token-id=${tokenId}`, { method: 'GET', rejectUnauthorized: false, timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { text += chunk; });
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: text }); });
      res.on('error', reject);
    });
    req.on('timeout', () => { req.destroy(new Error('no answer within 15 s')); });
    req.on('error', (err) => { reject(new CliError('unavailable', `cannot reach the vireo server at ${server} (${err.message}): check --server and that the server listens on an address this host reaches`, err)); });
    req.end();
  });
  if (status !== 200) throw new CliError('usage', `the server at ${server} refused the join token: ${messageOf(body)}`);
  try {
    return parseClusterInfo(JSON.parse(body));
  } catch (err) {
    throw new CliError('unavailable', `${server} answered ${clusterInfoPath} with something unexpected (${err instanceof Error ? err.message : String(err)}): is it a vireo server?`, err);
  }
}

/** The message of a `Status` body, else the body. */
function messageOf(body: string): string {
  try {
    const value: unknown = JSON.parse(body);
    if (isPlainObject(value) && typeof value.message === 'string') return value.message;
  } catch {
    // not JSON: show it as it is
  }
  return body.slice(0, 500);
}
