/**
 * `vireo metrics scrape-config --dir DIR`: a Prometheus `scrape_configs`
 * for the cluster. The servers (job `vireo-server`: the control plane and
 * each server's own node agent) are scraped over HTTPS trusting the
 * cluster CA; each `vireo agent`'s endpoint (job `vireo-agent`, label
 * `node`) trusting exactly its self-signed certificate, pinned from its
 * Node as the API server pins it (one scrape config per agent, since each
 * has its own `ca_file` and `server_name`; relabelled to one job). Every
 * target is read with a metrics token (`src/api/metrics-token.ts`), made
 * now unless `--token-file` names one. The files go to DIR; the YAML to
 * stdout.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { KObject } from '../../api/object.js';
import { metricsTokenIdOf } from '../../api/metrics-token.js';
import { endpointOfNode, publishesEndpoint } from '../../agent/endpoint-address.js';
import { resources } from '../../client/index.js';
import { CliError } from '../errors.js';
import { clientFor, connectionFor } from './connection.js';
import { createMetricsToken } from './metrics-token.js';

export const metricsUsage = `  metrics scrape-config --dir DIR [--token-file FILE]
                         Print a Prometheus scrape_configs for the servers and every agent
                         endpoint, writing the CA, the agents' pinned certificates and a new
                         metrics token (or --token-file's) into DIR.
`;

/** What the scrape config is made from. */
export interface ScrapeTargets {
  /** The servers' `https://host:port` URLs. */
  servers: string[];
  /** The agents publishing an endpoint: node, `host:port`, their certificate's file. */
  agents: { node: string; target: string; certificateFile: string }[];
  caFile: string;
  tokenFile: string;
}

/** The `scrape_configs` for `targets` (Prometheus' own YAML shape). */
export function scrapeConfigOf(targets: ScrapeTargets): { scrape_configs: Record<string, unknown>[] } {
  const authorization = { type: 'Bearer', credentials_file: targets.tokenFile };
  const server = {
    job_name: 'vireo-server',
    scheme: 'https',
    metrics_path: '/metrics',
    authorization,
    tls_config: { ca_file: targets.caFile },
    static_configs: [{ targets: targets.servers.map((url) => new URL(url).host) }],
  };
  const agents = targets.agents.map((agent) => ({
    job_name: `vireo-agent-${agent.node}`,
    scheme: 'https',
    metrics_path: '/metrics',
    // The series carry their own `node` (the same as the target's): kept as they are, not renamed exported_node.
    honor_labels: true,
    authorization,
    // The agent's certificate is self-signed for its node name: trust exactly it, and check that name.
    tls_config: { ca_file: agent.certificateFile, server_name: agent.node },
    static_configs: [{ targets: [agent.target], labels: { node: agent.node } }],
    relabel_configs: [{ target_label: 'job', replacement: 'vireo-agent' }],
  }));
  return { scrape_configs: [server, ...agents] };
}

export async function runMetrics(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'scrape-config') throw new CliError('usage', `vireo metrics needs scrape-config, got ${sub === undefined ? 'nothing' : `"${sub}"`}:\n${metricsUsage}`);
  const { values, positionals } = parseArgs({
    args: rest,
    options: { kubeconfig: { type: 'string' }, dir: { type: 'string' }, 'token-file': { type: 'string' } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new CliError('usage', `vireo metrics scrape-config takes no arguments, got ${positionals.join(' ')}`);
  if (values.dir === undefined) throw new CliError('usage', `vireo metrics scrape-config needs --dir DIR: where Prometheus will read the CA, the agents' certificates and the token from`);
  const dir = resolve(values.dir);
  const connection = connectionFor({ kubeconfig: values.kubeconfig });
  const client = clientFor(connection);
  try {
    mkdirSync(dir, { recursive: true });
    const tokenFile = values['token-file'] === undefined ? join(dir, 'metrics-token') : resolve(values['token-file']);
    if (values['token-file'] === undefined) {
      writeSecretFile(tokenFile, `${await createMetricsToken(client, `prometheus scrape config in ${dir}`)}\n`);
    } else {
      checkTokenFile(tokenFile);
    }
    const caFile = join(dir, 'ca.crt');
    writeFileSync(caFile, connection.caCert);
    const nodes = await client.list(resources.nodes);
    const agents = nodes.items.filter((node: KObject) => publishesEndpoint(node)).map((node: KObject) => {
      const name = node.metadata.name ?? '';
      const endpoint = endpointOfNode(name, node);
      const certificateFile = join(dir, `agent-${name}.crt`);
      writeFileSync(certificateFile, endpoint.certificate);
      return { node: name, target: `${endpoint.address.includes(':') ? `[${endpoint.address}]` : endpoint.address}:${endpoint.port}`, certificateFile };
    });
    process.stdout.write(stringify(scrapeConfigOf({ servers: connection.servers, agents, caFile, tokenFile })));
  } finally {
    client.close();
  }
}

function writeSecretFile(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

function checkTokenFile(path: string): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new CliError('usage', `--token-file ${path} cannot be read (${err instanceof Error ? err.message : String(err)}): give the file "vireo token create --metrics" printed into, or leave --token-file out to make a new token`, err);
  }
  if (metricsTokenIdOf(text) === undefined) throw new CliError('usage', `--token-file ${path} does not hold a metrics token (vireo-metrics.ID.SECRET): make one with "vireo token create --metrics"`);
}
