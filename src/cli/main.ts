#!/usr/bin/env node
/**
 * The `vireo` command. Subcommands:
 *   vireo server --data-dir DIR [--listen HOST:PORT] [--cluster-cidr CIDRS] [--log-level LEVEL] [--service-cluster-ip-range CIDR] [--cluster-dns-listen HOST:PORT] [--store URL] [--pki-dir DIR] [--node-name NAME] [--node-monitor-grace-period DURATION]
 *   vireo up                          (server with the defaults, for a newcomer)
 *   vireo agent --kubeconfig FILE | --server URL --token T [--ca-cert-hash sha256:…]  --data-dir DIR [--node-name NAME] [--listen HOST:PORT] [--address IP] [--log-level LEVEL]
 *   vireo token create|list|delete …  (join and metrics tokens, src/cli/commands/token.ts)
 *   vireo metrics scrape-config --dir DIR  (Prometheus scrape_configs, src/cli/commands/metrics.ts)
 *   vireo drain|cordon|uncordon NODE …  (node maintenance, src/cli/commands/drain.ts)
 *   vireo kubeconfig [--data-dir DIR] [--servers URL,URL…]
 *   vireo start|stop|restart|pause|unpause|soft-reboot|reset|console|vnc|logs …  (src/cli/commands)
 *   vireo image-upload dv|pvc NAME --image-path FILE --size SIZE …  (src/cli/commands/image-upload.ts)
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { isLogLevel } from '../log/logger.js';
import type { LogLevel } from '../log/logger.js';
import { runServer } from './server-command.js';
import { renderKubeconfig } from './kubeconfig.js';
import { loadConnection } from './commands/connection.js';
import { parseServerList } from '../client/index.js';
import { defaultNodePortRange, defaultServiceClusterIpRange, parseServiceNetwork } from '../apiserver/index.js';
import type { ServiceNetwork } from '../apiserver/index.js';
import { defaultClusterCidrs } from '../controllers/nodeipam/controller.js';
import { runAgent } from './agent-command.js';
import { CliError, exitCodeOf } from './errors.js';
import { isVmCommand, runVmCommand, vmCommandsUsage } from './commands/index.js';
import { imageUploadUsage, runImageUpload } from './commands/image-upload.js';
import { runToken, tokenUsage } from './commands/token.js';
import { metricsUsage, runMetrics } from './commands/metrics.js';
import { drainUsage, runCordon, runDrain } from './commands/drain.js';

const usage = `Usage: vireo <command> [flags]

Commands:
  up                     Run Vireo on this machine with its data in ~/.vireo (the quick start).
                         Takes the server's flags below (e.g. --log-level debug).
  server                 Run the Vireo server.
      --data-dir DIR     Where state, certificates and the kubeconfig live (required).
      --store URL        Where the cluster's state lives: sqlite (default, in --data-dir) or
                         etcd://host:port[,host:port…][/prefix] (etcd v3; keys under /vireo/ by default).
                         Several servers may share one etcd: all serve the API, one at a time
                         (the holder of Lease kube-system/vireo-controller-manager) runs the controllers.
      --pki-dir DIR      The cluster's CA (ca.crt, ca.key), token and upload-token.key, shared by every
                         server of one cluster (default --data-dir; a second server on the same etcd
                         takes a copy of the first one's).
      --node-name NAME   The Node of the server's own agent (default this host's name).
      --listen HOST:PORT Address to serve HTTPS on (default 127.0.0.1:6443).
      --cluster-cidr CIDRS
                         The pod network: one IPv4 and optionally one IPv6 range, comma-separated;
                         each Node gets a /24 and a /64 of it (default 10.244.0.0/16,fd10:244::/56).
      --log-level LEVEL  debug, info, warn or error (default info): the least severe JSON log
                         record written to stderr.
      --service-cluster-ip-range CIDR[,CIDR]  Where Services' cluster IPs come from (default 10.96.0.0/12).
      --service-node-port-range FIRST-LAST    Where NodePorts come from (default 30000-32767).
      --cluster-dns-listen HOST:PORT          The cluster DNS (UDP and TCP; default 127.0.0.1:10053, "off" for none).
      --node-monitor-grace-period DURATION    A node whose agent does not renew its Lease for this long is
                         NotReady and its VMIs fail, to restart elsewhere (default 50s, as Kubernetes;
                         at least 6s). Agents kill their guests before it runs out when cut off.
  agent                  Run the node agent of another host.
      --server URL[,URL…] Join the server at https://HOST:PORT (with --token, on first start)...
                         several servers of one cluster: the agent uses the next when one fails.
      --token TOKEN      ...with a join token from "vireo token create"; the node's own
                         credential is kept in the data directory and used from then on.
      --ca-cert-hash sha256:HEX
                         Join only if the server's CA is this one (vireo token create prints it).
      --kubeconfig FILE  Or: the kubeconfig vireo server wrote (default $KUBECONFIG, else ~/.vireo/kubeconfig).
      --data-dir DIR     Where its guests, images and endpoint certificate live (required).
      --node-name NAME   The Node it runs as (default this host's name).
      --listen HOST:PORT Address of its HTTPS endpoint for the server (default 0.0.0.0:10250).
      --address IP       The address the server reaches it at (default the --listen host,
                         else the first non-loopback IPv4).
      --log-level LEVEL  debug, info, warn or error (default info).
  kubeconfig             Print the kubeconfig of a server.
      --data-dir DIR     The server's data directory (default ~/.vireo).
      --servers URL,URL… Every server of the cluster: kubectl uses the first, the vireo CLI and
                         agents all of them (the vireo.io/servers cluster extension).
  help                   Show this help.
${vmCommandsUsage}
Storage commands (-n/--namespace NS and --kubeconfig FILE as above):
${imageUploadUsage}
Join tokens (--kubeconfig FILE as above):
${tokenUsage}
Metrics (--kubeconfig FILE as above):
${metricsUsage}
${drainUsage}`;

export const defaultDataDir = join(homedir(), '.vireo');

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'up':
    case 'server': {
      const { values } = parseArgs({
        args: rest,
        options: {
          'data-dir': { type: 'string' },
          listen: { type: 'string' },
          'cluster-cidr': { type: 'string' },
          'log-level': { type: 'string' },
          'service-cluster-ip-range': { type: 'string' },
          'service-node-port-range': { type: 'string' },
          'cluster-dns-listen': { type: 'string' },
          store: { type: 'string' },
          'pki-dir': { type: 'string' },
          'node-name': { type: 'string' },
          'node-monitor-grace-period': { type: 'string' },
        },
        strict: true,
      });
      const dataDir = values['data-dir'] ?? (command === 'up' ? defaultDataDir : undefined);
      if (dataDir === undefined) throw new CliError('usage', 'vireo server needs --data-dir DIR: the directory for its state, certificates and kubeconfig');
      await runServer({
        dataDir,
        listen: values.listen ?? '127.0.0.1:6443',
        clusterCidr: values['cluster-cidr'] ?? defaultClusterCidrs.join(','),
        logLevel: logLevelOf(values['log-level']),
        newcomer: command === 'up',
        serviceNetwork: serviceNetworkOf(values['service-cluster-ip-range'], values['service-node-port-range']),
        clusterDnsListen: values['cluster-dns-listen'],
        store: values.store,
        pkiDir: values['pki-dir'],
        nodeName: values['node-name'],
        nodeMonitorGracePeriod: values['node-monitor-grace-period'],
      });
      return;
    }
    case 'agent': {
      const { values } = parseArgs({
        args: rest,
        options: {
          kubeconfig: { type: 'string' },
          server: { type: 'string' },
          token: { type: 'string' },
          'ca-cert-hash': { type: 'string' },
          'data-dir': { type: 'string' },
          'node-name': { type: 'string' },
          listen: { type: 'string' },
          address: { type: 'string' },
          'log-level': { type: 'string' },
        },
        strict: true,
      });
      const dataDir = values['data-dir'];
      if (dataDir === undefined) throw new CliError('usage', 'vireo agent needs --data-dir DIR: the directory for its guests, images and endpoint certificate');
      await runAgent({ kubeconfig: values.kubeconfig, server: values.server, token: values.token, caCertHash: values['ca-cert-hash'], dataDir, nodeName: values['node-name'], listen: values.listen, address: values.address, logLevel: logLevelOf(values['log-level']) });
      return;
    }
    case 'kubeconfig': {
      const { values } = parseArgs({ args: rest, options: { 'data-dir': { type: 'string' }, servers: { type: 'string' } }, strict: true });
      const path = join(values['data-dir'] ?? defaultDataDir, 'kubeconfig');
      if (values.servers !== undefined) { process.stdout.write(kubeconfigWithServers(path, values.servers)); return; }
      try {
        process.stdout.write(readFileSync(path, 'utf8'));
      } catch (err) {
        throw new CliError('not-found', `no kubeconfig at ${path}: start the server first (vireo up, or vireo server --data-dir DIR)`, err);
      }
      return;
    }
    case 'image-upload':
      await runImageUpload(rest);
      return;
    case 'token':
      await runToken(rest);
      return;
    case 'metrics':
      await runMetrics(rest);
      return;
    case 'drain':
      await runDrain(rest);
      return;
    case 'cordon':
    case 'uncordon':
      await runCordon(command, rest);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(usage);
      return;
    default:
      if (isVmCommand(command)) { await runVmCommand(command, rest); return; }
      throw new CliError('usage', `unknown command "${command}": run "vireo help" for the list of commands`);
  }
}

/** The kubeconfig at `path`, with `servers` (comma-separated) as its server and the `vireo.io/servers` extension. */
function kubeconfigWithServers(path: string, servers: string): string {
  let list: string[];
  try {
    list = parseServerList(servers);
  } catch (err) {
    throw new CliError('usage', `--servers ${servers} is not valid: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  const connection = loadConnection(path);
  const [first, ...more] = list;
  return renderKubeconfig({ server: first ?? connection.server, moreServers: more, caCert: connection.caCert, token: connection.token });
}

function serviceNetworkOf(ipRange: string | undefined, portRange: string | undefined): ServiceNetwork {
  try {
    return parseServiceNetwork(ipRange ?? defaultServiceClusterIpRange, portRange ?? defaultNodePortRange);
  } catch (err) {
    throw new CliError('usage', err instanceof Error ? err.message : String(err), err);
  }
}

function logLevelOf(flag: string | undefined): LogLevel {
  const level = flag ?? 'info';
  if (!isLogLevel(level)) throw new CliError('usage', `--log-level ${level} is not valid: use debug, info, warn or error`);
  return level;
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vireo: ${message}\n`);
  process.exit(exitCodeOf(err));
});
