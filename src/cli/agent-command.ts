/**
 * `vireo agent`: the node agent of another host. It reaches the API server
 * with the kubeconfig `vireo server` wrote (server URL, CA, cluster token),
 * runs the VMIs bound to its node, and serves its HTTPS endpoint
 * (`src/agent/endpoint.ts`) where the server reaches the guests; the
 * endpoint's certificate is made at first start and published on the Node.
 * Says `ready` once the Node is registered; SIGTERM or SIGINT stop it,
 * leaving the guests running for the next start.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { AgentEndpoint, NodeAgent, defaultAgentPort } from '../agent/index.js';
import { ImageStore } from '../agent/images/index.js';
import { HttpClient } from '../client/index.js';
import { createLogger } from '../log/logger.js';
import type { LogLevel } from '../log/logger.js';
import { kubeconfigPath, loadConnection } from './commands/connection.js';
import { CliError } from './errors.js';
import { ensureSelfSigned } from './pki.js';
import { parseListen } from './server-command.js';
import { httpsUrl } from '../net/listen.js';
import { untilStopSignal } from './signals.js';

export interface AgentCommandOptions {
  /** Default: $KUBECONFIG, else ~/.vireo/kubeconfig. */
  kubeconfig: string | undefined;
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
  const connection = loadConnection(kubeconfigPath(options.kubeconfig));
  const logger = createLogger({ level: options.logLevel }, { component: 'agent' });
  // The endpoint's key and the guests' files are for root only.
  process.umask(0o077);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(options.dataDir, 0o700);
  const tls = await ensureSelfSigned(options.dataDir, 'agent', nodeName);
  const client = new HttpClient({ server: connection.server, token: connection.token, caCert: connection.caCert, userAgent: `vireo-agent/${nodeName}` });
  // The endpoint listens before the Node says where it is (the port may be picked at random); until the agent has started it answers 503.
  const rate = exportRate(process.env.VIREO_EXPORT_RATE_LIMIT);
  const endpoint = new AgentEndpoint({ token: connection.token, tls, logger, ...(rate === undefined ? {} : { exportRateBytesPerSecond: rate }) });
  const listening = await listenOrExplain(endpoint, host, port);
  const agent = new NodeAgent({
    client,
    nodeName,
    dataDir: join(options.dataDir, 'agent'),
    logger,
    images: new ImageStore(join(options.dataDir, 'images')),
    endpoint: { port: listening, certificate: tls.cert, address },
    clusterToken: connection.token,
    apiServer: { url: connection.server, caCert: connection.caCert },
  });
  endpoint.serve(agent, agent);
  await agent.start();
  process.stdout.write(`vireo agent ready: node ${nodeName}, endpoint ${httpsUrl(address, listening)}, server ${connection.server}\n`);
  await untilStopSignal(logger);
  await endpoint.close();
  await agent.stop();
  client.close();
  logger.info('stopped');
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
