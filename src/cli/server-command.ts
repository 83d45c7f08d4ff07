/**
 * `vireo server` / `vireo up`: prepares the data directory (PKI, token,
 * store), starts the control plane, writes the kubeconfig, says `ready`, and
 * stops cleanly on SIGTERM or SIGINT.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createLogger } from '../log/logger.js';
import type { LogLevel } from '../log/logger.js';
import { openStore, parseEtcdUrl, StoreError } from '../store/index.js';
import { startControlPlane } from '../server/control-plane.js';
import { defaultLeaderLease } from '../server/leader-election.js';
import { loadUploadKey } from '../apiserver/upload-token.js';
import { ensurePki } from './pki.js';
import { OpenSslIssuer } from '../net/certificate-issuer.js';
import { renderKubeconfig } from './kubeconfig.js';
import { CliError } from './errors.js';
import { parseClusterCidrs } from '../controllers/nodeipam/controller.js';
import type { Cidr } from '../net/pod/cidr.js';
import { demoVmName, ensureDemo } from './demo.js';
import type { ControlPlane } from '../server/control-plane.js';
import { httpsUrl } from '../net/listen.js';
import type { ServiceNetwork } from '../apiserver/index.js';
import { untilStopSignal } from './signals.js';
import { defaultNodeMonitorGracePeriodMs, formatDuration, minimumNodeMonitorGracePeriodMs, parseDurationMs } from '../api/kinds/node-lifecycle.js';

export interface ServerCommandOptions {
  dataDir: string;
  listen: string;
  /** `--cluster-cidr`: the pod network's ranges, comma-separated. */
  clusterCidr: string;
  logLevel: LogLevel;
  /** `vireo up`: print how to use kubectl. */
  newcomer: boolean;
  serviceNetwork: ServiceNetwork;
  /** Where the cluster DNS listens (UDP and TCP), or "off"; undefined: the default address, if it is free. */
  clusterDnsListen: string | undefined;
  /** `--store`: "sqlite" (in the data dir) or `etcd://host:port[,host:port…][/prefix]`; undefined: sqlite. */
  store: string | undefined;
  /**
   * `--pki-dir`: where the cluster's shared secrets are (ca.crt, ca.key,
   * token, upload-token.key): every server of one cluster on etcd uses the
   * same. Undefined: the data directory, where the first server makes them.
   */
  pkiDir: string | undefined;
  /** `--node-name`: the Node of this server's own agent (default this host's name; servers side by side on one host need their own). */
  nodeName: string | undefined;
  /** `--node-monitor-grace-period` as given (a Go duration); undefined: Kubernetes' default. */
  nodeMonitorGracePeriod?: string | undefined;
}

export function parseListen(listen: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (m === null || port > 65535) throw new CliError('usage', `${flag} ${listen} is not valid: use HOST:PORT, e.g. 127.0.0.1:6443 or [::1]:6443`);
  return { host: m[1] ?? (m[2] === '' ? '0.0.0.0' : (m[2] ?? '127.0.0.1')), port };
}

export async function runServer(options: ServerCommandOptions): Promise<void> {
  const { host, port } = parseListen(options.listen);
  const storeOptions = parseStoreFlag(options.store, options.dataDir);
  let clusterCidrs: Cidr[];
  try {
    clusterCidrs = parseClusterCidrs(options.clusterCidr);
  } catch (err) {
    throw new CliError('usage', `--cluster-cidr: ${(err as Error).message}`);
  }
  const nodeMonitorGracePeriodMs = parseGracePeriodFlag(options.nodeMonitorGracePeriod);
  const logger = createLogger({ level: options.logLevel }, { component: 'server' });
  // Everything the server writes (keys, token, database, kubeconfig) is for root only.
  process.umask(0o077);
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  chmodSync(options.dataDir, 0o700);
  const pkiDir = options.pkiDir ?? options.dataDir;
  if (options.pkiDir !== undefined && !existsSync(join(pkiDir, 'token'))) {
    throw new CliError('usage', `--pki-dir ${pkiDir} has no token file: copy ca.crt, ca.key, token and upload-token.key from the first server's --data-dir into it`);
  }
  const pki = await ensurePki(options.dataDir, [host], options.pkiDir === undefined ? {} : { caDir: pkiDir }).catch((err: unknown) => {
    throw new CliError('usage', err instanceof Error ? err.message : String(err), err);
  });
  const token = loadOrCreateToken(join(pkiDir, 'token'));
  const store = await openStore(
    storeOptions.backend === 'etcd'
      ? { ...storeOptions, onWaiting: (message) => { logger.warn(message); } }
      : storeOptions,
  ).catch((err: unknown) => {
    if (err instanceof StoreError && err.code === 'Unavailable') throw new CliError('unavailable', err.message);
    throw err;
  });
  logger.info('store opened', { store: storeOptions.backend === 'etcd' ? `etcd ${storeOptions.endpoints.join(',')} under ${storeOptions.prefix}` : storeOptions.path });
  const plane = await startControlPlane({
    store,
    tls: { cert: pki.serverCert, key: pki.serverKey },
    caCert: pki.caCert,
    certificates: new OpenSslIssuer({ certFile: join(pkiDir, 'ca.crt'), keyFile: join(pkiDir, 'ca.key') }),
    token,
    logger,
    host,
    port,
    agent: { dataDir: options.dataDir, ...(options.nodeName === undefined ? {} : { nodeName: options.nodeName }) },
    clusterCidrs,
    uploadKey: loadUploadKey(pkiDir),
    // Several servers may share an etcd: the singletons run on the one holding the leader Lease. SQLite has one server, which leads at once.
    ...(storeOptions.backend === 'etcd' ? { leaderElection: {} } : {}),
    serviceNetwork: options.serviceNetwork,
    nodeMonitorGracePeriodMs,
    ...clusterDnsOption(options.clusterDnsListen),
  });
  const advertised = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const server = httpsUrl(advertised, plane.address.port);
  const kubeconfigPath = join(options.dataDir, 'kubeconfig');
  writeFileAtomic(kubeconfigPath, renderKubeconfig({ server, caCert: pki.caCert, token }));
  process.stdout.write(`vireo server ready at ${server}\n`);
  process.stdout.write(`kubeconfig: ${kubeconfigPath}\n`);
  if (plane.elector !== undefined) process.stdout.write(`leader election: candidate ${plane.elector.identity} for Lease ${defaultLeaderLease.namespace}/${defaultLeaderLease.name}\n`);
  const stopping = new AbortController();
  if (options.newcomer) void startDemo(plane, kubeconfigPath, stopping.signal);
  await untilStopSignal(logger);
  stopping.abort();
  await plane.stop();
  await store.close();
  logger.info('stopped');
}

/** Where the cluster DNS listens, as `startControlPlane` takes it. */
function clusterDnsOption(listen: string | undefined): { clusterDns?: { host: string; port: number; optional?: boolean } } {
  if (listen === 'off') return {};
  if (listen === undefined) return { clusterDns: { ...parseListen(defaultClusterDnsListen), optional: true } };
  return { clusterDns: parseListen(listen, '--cluster-dns-listen') };
}

/** `--node-monitor-grace-period`: a Go duration of at least 6 s; Kubernetes' 50 s when absent. */
export function parseGracePeriodFlag(flag: string | undefined): number {
  if (flag === undefined) return defaultNodeMonitorGracePeriodMs;
  const ms = parseDurationMs(flag);
  if (ms === undefined) throw new CliError('usage', `--node-monitor-grace-period ${flag} is not a duration: use e.g. 50s, 2m or 1m30s`);
  if (ms < minimumNodeMonitorGracePeriodMs) {
    throw new CliError('usage', `--node-monitor-grace-period ${flag} is too short: agents renew their Lease several times within it and fence themselves before it ends, which needs at least ${formatDuration(minimumNodeMonitorGracePeriodMs)}`);
  }
  return ms;
}

/** The store `--store` names: SQLite in the data dir unless it is an etcd URL. */
export function parseStoreFlag(
  flag: string | undefined,
  dataDir: string,
): { backend: 'sqlite'; path: string } | { backend: 'etcd'; endpoints: string[]; prefix: string } {
  if (flag === undefined || flag === 'sqlite') return { backend: 'sqlite', path: join(dataDir, 'state.db') };
  if (!flag.startsWith('etcd://')) {
    throw new CliError('usage', `--store ${flag} is not valid: use "sqlite" (the default, in --data-dir) or etcd://host:port[,host:port…][/prefix]`);
  }
  try {
    return { backend: 'etcd', ...parseEtcdUrl(flag) };
  } catch (err) {
    throw new CliError('usage', `--store: ${(err as Error).message}`);
  }
}

export const defaultClusterDnsListen = '127.0.0.1:10053';

function loadOrCreateToken(path: string): string {
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 32) return token;
  }
  const token = randomBytes(32).toString('hex');
  writeFileAtomic(path, `${token}\n`);
  return token;
}

/** Writes a root-only file in one step, so readers never see a partial one. */
function writeFileAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** `vireo up`: a running demo VM and how to reach it. Failures are reported, never fatal: the server keeps serving. */
async function startDemo(plane: ControlPlane, kubeconfigPath: string, signal: AbortSignal): Promise<void> {
  const say = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const images = plane.workloads.images;
  try {
    if (images !== undefined) await ensureDemo({ client: plane.workloads.client, images, signal, say });
    say(`\nVireo is running. Use it with kubectl:\n  export KUBECONFIG=${kubeconfigPath}\n  kubectl get vms\n  kubectl get vmis -o wide\n\nThe demo VM's serial console (Ctrl+] to leave):\n  vireo console ${demoVmName}\n  vireo logs ${demoVmName}\n\nPress Ctrl-C to stop the server (guests keep running and are picked up at the next start).`);
  } catch (err) {
    if (signal.aborted) return;
    say(`could not set up the demo VM: ${err instanceof Error ? err.message : String(err)}\nThe server is running; kubectl works with KUBECONFIG=${kubeconfigPath}.`);
  }
}
