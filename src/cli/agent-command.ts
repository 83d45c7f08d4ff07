/**
 * `vireo agent`: the node agent of another host. It reaches the API server
 * either with its own node credential, got by joining with a token
 * (`--server URL --token T`, `./join.ts`) and kept in the data directory,
 * or with the kubeconfig `vireo server` wrote (server URL, CA, cluster
 * token). It runs the VMIs bound to its node, and serves its HTTPS endpoint
 * (`src/agent/endpoint.ts`) where the server reaches the guests; the
 * endpoint's certificate is made at first start and published on the Node.
 * Says `ready` once the Node is registered; SIGTERM or SIGINT stop it,
 * leaving the guests running for the next start.
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { AgentEndpoint, ExportAccess, MetricsAccess, NodeAgent, defaultAgentPort } from '../agent/index.js';
import { ImageStore } from '../agent/images/index.js';
import { HttpClient, parseServerList, resources } from '../client/index.js';
import { ApiError } from '../api/errors.js';
import { createLogger } from '../log/logger.js';
import type { LogLevel, Logger } from '../log/logger.js';
import { joinedAnnotation } from '../api/node-credential.js';
import { joinCluster, loadNodeCredential, nodeCredentialPath } from './join.js';
import type { NodeCredentialFile } from './join.js';
import { kubeconfigPath, loadConnection } from './commands/connection.js';
import { CliError } from './errors.js';
import { ensureSelfSigned } from './pki.js';
import { parseListen } from './server-command.js';
import { httpsUrl } from '../net/listen.js';
import { untilStopSignal } from './signals.js';

export interface AgentCommandOptions {
  /** Default: $KUBECONFIG, else ~/.vireo/kubeconfig. Not with `token`. */
  kubeconfig: string | undefined;
  /** `--server`: the server to join (with `token`), or several of one cluster, comma-separated. */
  server: string | undefined;
  /** `--token`: a join token (`vireo token create`), used once, when the data directory holds no credential yet. */
  token: string | undefined;
  /** `--ca-cert-hash sha256:…`: the server's CA must be this one. */
  caCertHash: string | undefined;
  dataDir: string;
  /** Default: this host's name, lowercased. */
  nodeName: string | undefined;
  /** Default `0.0.0.0:10250`. */
  listen: string | undefined;
  /** The Node's InternalIP; see {@link advertisedAddress}. */
  address: string | undefined;
  logLevel: LogLevel;
}

/** Node names are DNS subdomains (RFC 1123), as Kubernetes validates them. */
const nodeNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function nodeNameOf(flag: string | undefined): string {
  const name = flag ?? hostname().toLowerCase();
  if (name.length > 253 || !nodeNamePattern.test(name)) {
    throw new CliError('usage', `node name "${name}" is not valid: use lowercase letters, digits, '-' and '.' (a DNS subdomain)${flag === undefined ? '; pass --node-name NAME' : ''}`);
  }
  return name;
}

/**
 * The address the server reaches this agent at: `--address`, else the
 * `--listen` host when it is one address, else the first non-loopback
 * IPv4, else 127.0.0.1.
 */
export function advertisedAddress(flag: string | undefined, listenHost: string): string {
  if (flag !== undefined) {
    if (isIP(flag) === 0) throw new CliError('usage', `--address ${flag} is not an IP address: give the address the server reaches this host at`);
    return flag;
  }
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && isIP(listenHost) !== 0) return listenHost;
  const ipv4 = Object.values(networkInterfaces()).flatMap((list) => list ?? []).find((a) => a.family === 'IPv4' && !a.internal);
  return ipv4?.address ?? '127.0.0.1';
}

export async function runAgent(options: AgentCommandOptions): Promise<void> {
  const { host, port } = parseListen(options.listen ?? `0.0.0.0:${defaultAgentPort}`);
  const nodeName = nodeNameOf(options.nodeName);
  const address = advertisedAddress(options.address, host);
  const logger = createLogger({ level: options.logLevel }, { component: 'agent' });
  // The endpoint's key, the node credential and the guests' files are for root only.
  process.umask(0o077);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(options.dataDir, 0o700);
  const connection = await connect(options, nodeName, logger);
  const tls = await ensureSelfSigned(options.dataDir, 'agent', nodeName);
  const client = new HttpClient({ server: connection.servers, token: connection.token, caCert: connection.caCert, userAgent: `vireo-agent/${nodeName}` });
  // The endpoint listens before the Node says where it is (the port may be picked at random); until the agent has started it answers 503.
  const rate = exportRate(process.env.VIREO_EXPORT_RATE_LIMIT);
  const endpoint = new AgentEndpoint({ token: connection.serverToken, tls, logger, exportAccess: new ExportAccess(client), metricsAccess: new MetricsAccess(client), ...(rate === undefined ? {} : { exportRateBytesPerSecond: rate }) });
  const listening = await listenOrExplain(endpoint, host, port);
  const agent = new NodeAgent({
    client,
    nodeName,
    dataDir: join(options.dataDir, 'agent'),
    logger,
    images: new ImageStore(join(options.dataDir, 'images')),
    endpoint: { port: listening, certificate: tls.cert, address },
    // A joined agent presents its node credential to other nodes' exports; their agents (or the API server) check it.
    copyToken: connection.token,
    ...(connection.joined ? { nodeAnnotations: { [joinedAnnotation]: 'true' } } : {}),
    apiServer: { url: connection.servers[0] ?? '', caCert: connection.caCert },
  });
  endpoint.serve(agent, agent);
  await agent.start();
  process.stdout.write(`vireo agent ready: node ${nodeName}, endpoint ${httpsUrl(address, listening)}, server ${connection.servers.join(',')}\n`);
  await untilStopSignal(logger);
  await endpoint.close();
  await agent.stop();
  client.close();
  logger.info('stopped');
}

/** How the agent reaches the API server, and what the server presents to its endpoint. */
interface AgentConnection {
  /** The servers of the cluster, the one to try first first. */
  servers: string[];
  caCert: string;
  /** The bearer token for the API: the node credential, or the cluster token. */
  token: string;
  serverToken: string | { sha256: string };
  /** Joined with a token (own credential) rather than the cluster kubeconfig. */
  joined: boolean;
}

/** The stored node credential, else a join with `--token`, else the kubeconfig. */
async function connect(options: AgentCommandOptions, nodeName: string, logger: Logger): Promise<AgentConnection> {
  if (options.token !== undefined && options.kubeconfig !== undefined) throw new CliError('usage', 'vireo agent takes --token (with --server) or --kubeconfig, not both');
  if (options.caCertHash !== undefined && options.token === undefined) throw new CliError('usage', '--ca-cert-hash goes with --token and --server: it pins the CA of the server being joined');
  let stored = loadNodeCredential(options.dataDir);
  if (stored !== undefined) {
    if (stored.nodeName !== nodeName) throw new CliError('usage', `${nodeCredentialPath(options.dataDir)} holds the credential of node ${stored.nodeName}, not ${nodeName}: start with --node-name ${stored.nodeName}, or use another --data-dir`);
    const refusal = await credentialRefusal(stored);
    if (refusal === undefined) {
      if (options.token !== undefined) logger.info('this host joined already; its stored node credential is used, not --token', { node: nodeName, server: stored.server });
    } else if (options.token === undefined) {
      throw new CliError('usage', `the server refuses this node's stored credential: ${refusal}`);
    } else {
      // As a kubelet whose certificate is refused falls back to its bootstrap token.
      logger.warn('the server refuses the stored node credential; joining again with --token', { node: nodeName, reason: refusal });
      rmSync(nodeCredentialPath(options.dataDir));
      stored = undefined;
    }
  }
  if (stored === undefined && options.token !== undefined) {
    if (options.server === undefined) throw new CliError('usage', 'vireo agent --token needs --server https://HOST:PORT: the server the token is for');
    stored = await joinCluster({ server: options.server, token: options.token, caCertHash: options.caCertHash, nodeName, dataDir: options.dataDir, warn: (message) => { logger.warn(message); } });
    logger.info('joined the cluster', { node: nodeName, server: stored.server });
  } else if (stored === undefined && options.server !== undefined) {
    throw new CliError('usage', `--server needs --token (a join token from "vireo token create"): ${nodeCredentialPath(options.dataDir)} does not exist, so this host has not joined yet`);
  }
  if (stored !== undefined) return { servers: storedServers(stored, options.server), caCert: stored.caCert, token: stored.credential, serverToken: { sha256: stored.serverTokenSha256 }, joined: true };
  const kubeconfig = loadConnection(kubeconfigPath(options.kubeconfig));
  return { servers: kubeconfig.servers, caCert: kubeconfig.caCert, token: kubeconfig.token, serverToken: kubeconfig.token, joined: false };
}

/**
 * The servers a joined agent uses: those it stored at joining, or those
 * `--server` names now (an operator adding a server to the cluster need not
 * join the node again).
 */
function storedServers(stored: NodeCredentialFile, flag: string | undefined): string[] {
  if (flag === undefined) return stored.servers;
  try {
    return parseServerList(flag);
  } catch (err) {
    throw new CliError('usage', `--server ${flag} is not valid: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The server's message when it refuses the stored credential (401), else undefined (other failures are the agent's to retry). */
async function credentialRefusal(stored: NodeCredentialFile): Promise<string | undefined> {
  const client = new HttpClient({ server: stored.servers, token: stored.credential, caCert: stored.caCert, userAgent: `vireo-agent/${stored.nodeName}` });
  try {
    await client.tryGet(resources.nodes, undefined, stored.nodeName);
    return undefined;
  } catch (err) {
    if (err instanceof ApiError && err.reason === 'Unauthorized') return err.message;
    return undefined;
  } finally {
    client.close();
  }
}

/** `VIREO_EXPORT_RATE_LIMIT`: bytes a second one volume copy to another node is sent at (unset: no limit). */
export function exportRate(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  const rate = Number(value);
  if (!Number.isSafeInteger(rate) || rate <= 0) throw new CliError('usage', `VIREO_EXPORT_RATE_LIMIT=${value} is not a positive whole number of bytes a second: set e.g. 104857600 (100 MiB/s), or unset it`);
  return rate;
}

async function listenOrExplain(endpoint: AgentEndpoint, host: string, port: number): Promise<number> {
  try {
    return (await endpoint.listen(host, port)).port;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new CliError('unavailable', `cannot listen on ${host}:${port}: the port is in use (a kubelet or another vireo agent?); pass --listen HOST:PORT`, err);
    throw err;
  }
}
