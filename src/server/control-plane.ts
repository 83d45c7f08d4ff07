/**
 * The control plane of one `vireo server`: the API server on a store, the
 * resource registry with built-in kinds and KubeVirt's CRDs, seeded
 * namespaces, and the in-process controllers (CRDs, namespaces, garbage
 * collection). The cluster's singletons (`singletons.ts`) run at once, or,
 * with `leaderElection`, only while this server holds the leader Lease
 * (several servers on one etcd). Tests start it in-process on the memory
 * store.
 */
import type { AddressInfo } from 'node:net';
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { builtinResources, calicoCustomResourceDefinitions, csiSnapshotCustomResourceDefinitions, kubevirtCustomResourceDefinitions } from '../api/kinds/index.js';
import { ApiServer } from '../apiserver/server.js';
import { publishUploadProxyUrl } from '../apiserver/upload-proxy.js';
import type { TlsMaterial } from '../apiserver/server.js';
import type { ServiceNetwork } from '../apiserver/index.js';
import { ResourceRegistry } from '../apiserver/resources.js';
import { CrdController } from '../controllers/crd/controller.js';
import { NamespaceController } from '../controllers/namespace/controller.js';
import { GarbageCollector } from '../controllers/gc/controller.js';
import { EndpointsController } from '../controllers/endpoints/index.js';
import { ClusterDns } from '../net/dns/index.js';
import { defaultStorageClass } from '../storage/local/index.js';
import { defaultSnapshotClass } from '../storage/snapshots/index.js';
import type { Logger } from '../log/logger.js';
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/types.js';
import { Compactor } from '../store/index.js';
import { LocalAgentDirectory } from '../agent/index.js';
import type { NodeFacts } from '../agent/qemu/index.js';
import { NodeAgentDirectory } from './remote-agents.js';
import { addControllerLoops, startWorkloads } from './workloads.js';
import { LeaderElector } from './leader-election.js';
import type { LeaderElectionOptions } from './leader-election.js';
import { Singletons } from './singletons.js';
import type { CertificateIssuer } from '../net/certificate-issuer.js';
import type { Workloads } from './workloads.js';
import { httpsUrl } from '../net/listen.js';
import { defaultClusterCidrs } from '../controllers/nodeipam/controller.js';
import { parseCidr } from '../net/pod/cidr.js';
import { defaultNodeMonitorGracePeriodMs } from '../api/kinds/node-lifecycle.js';
import type { Cidr } from '../net/pod/cidr.js';
import { Registry } from 'prom-client';
import { WorkQueueMetrics } from '../controllers/queue-metrics.js';
import { VirtControllerMetrics } from '../controllers/metrics/index.js';
import { addComponentStatus } from './component-metrics.js';

export interface ControlPlaneOptions {
  store: Store;
  tls: TlsMaterial;
  /** The CA that signed `tls.cert`: in-process components reach the API over HTTPS with it. */
  caCert: string;
  /** Issues certificates from that CA (the migrations' TLS); without it, migrations run only with TLS disabled. */
  certificates?: CertificateIssuer;
  /** The users' bearer token (the kubeconfig's). */
  token: string;
  /**
   * The bearer token of this process's own components (controllers,
   * scheduler, this host's agent): admission lets them write what KubeVirt
   * lets only its components write. Random per start unless given; never
   * leaves the process.
   */
  componentToken?: string;
  logger: Logger;
  host: string;
  port: number;
  /** Run the VM/replica-set controllers, the scheduler and the Event TTL (default true). */
  controllers?: boolean;
  /**
   * Run the singletons only while holding the leader Lease
   * `kube-system/vireo-controller-manager` (several servers on one etcd);
   * without it they run at once (one server, e.g. on SQLite).
   */
  leaderElection?: Omit<LeaderElectionOptions, 'logger'>;
  /** The key CDI upload tokens are signed with (`vireo server` keeps it in its data directory); random per start when absent. */
  uploadKey?: Buffer;
  /** The Service cluster IP and node port ranges (default 10.96.0.0/12 and 30000-32767). */
  serviceNetwork?: ServiceNetwork;
  /**
   * Serve the cluster DNS (UDP and TCP) here; port 0 picks a free one. None
   * when absent. `optional`: an address that cannot be bound (another server
   * has the default port) is logged and the server runs without DNS.
   */
  clusterDns?: { host: string; port: number; optional?: boolean };
  /** The pod network's ranges the node IPAM hands Nodes subnets of (default 10.244.0.0/16 and fd10:244::/56). */
  clusterCidrs?: readonly Cidr[];
  /** `--node-monitor-grace-period` in ms (default Kubernetes' 50 s): a node whose Lease is not renewed for this long is NotReady and its VMIs fail. */
  nodeMonitorGracePeriodMs?: number;
  /**
   * The text of this host's node agent's metrics (`NodeAgent.metrics()`),
   * appended to the server's `/metrics` at scrape time.
   */
  nodeMetrics?: () => Promise<string>;
  /** Run this host's node agent, with images and VMI files under `dataDir`. */
  agent?: { dataDir: string; nodeName?: string; facts?: Partial<NodeFacts>; stopGuests?: boolean };
}

export interface ControlPlane {
  server: ApiServer;
  registry: ResourceRegistry;
  address: AddressInfo;
  workloads: Workloads;
  /** The cluster DNS, when `clusterDns` asked for one. */
  dns: ClusterDns | undefined;
  /** The leader election, when `leaderElection` asked for one. */
  elector: LeaderElector | undefined;
  /** The loops that run on the leader only. */
  singletons: Singletons;
  /** The control plane's metric families, served on `/metrics`. */
  metrics: Registry;
  stop(): Promise<void>;
}

const seededNamespaces = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const registry = new ResourceRegistry();
  registry.set('builtin', builtinResources());
  const componentToken = options.componentToken ?? randomBytes(32).toString('hex');
  const local = new LocalAgentDirectory();
  // This host's agent answers in-process; the agents of other hosts (vireo agent) over HTTPS, as their Nodes publish.
  const agents = new NodeAgentDirectory({ local, token: options.token, readNode: (name: string): Promise<KObject | undefined> => server.objects.tryGet(nodeDef(registry), undefined, name) });
  const crds = new CrdController(registry, options.logger.child({ component: 'crd-controller' }));
  // One registry per server: several servers run in one test process.
  const metrics = new Registry();
  /** The workloads once started (the metrics hook below is built before them). */
  const started: { workloads?: Workloads } = {};
  const server = new ApiServer({
    metrics,
    // This host's agent, once the workloads below have started it: its per-VMI families follow the control plane's.
    ...(options.nodeMetrics !== undefined ? { nodeMetrics: options.nodeMetrics } : options.agent === undefined ? {} : { nodeMetrics: () => started.workloads?.agent?.metrics() ?? Promise.resolve('') }),
    store: options.store,
    registry,
    token: options.token,
    componentToken,
    tls: options.tls,
    caCert: options.caCert,
    logger: options.logger.child({ component: 'apiserver' }),
    agents,
    ...(options.uploadKey === undefined ? {} : { uploadKey: options.uploadKey }),
    ...(options.serviceNetwork === undefined ? {} : { serviceNetwork: options.serviceNetwork }),
    afterWrite: (def: ResourceDef, obj: KObject, deleted: boolean) => {
      if (def.group === 'apiextensions.k8s.io' && def.plural === 'customresourcedefinitions') crds.sync(obj, deleted);
    },
  });
  crds.attach(server.objects);
  await crds.start();
  // KubeVirt's, CDI's and Multus' CRDs, as their operators would install them.
  // And the CSI snapshot API's, as external-snapshotter installs them.
  await crds.install([...kubevirtCustomResourceDefinitions(), ...csiSnapshotCustomResourceDefinitions(), ...calicoCustomResourceDefinitions()]);
  await seedNamespaces(server, registry);
  await seedStorageClass(server, registry);
  await seedOnce(server, registry, { group: 'snapshot.storage.k8s.io', version: 'v1', plural: 'volumesnapshotclasses' }, defaultSnapshotClass());
  const address = await server.listen(options.host, options.port);
  const loopback = options.host === '0.0.0.0' || options.host === '' ? '127.0.0.1' : options.host === '::' ? '::1' : options.host;
  // CDI's upload proxy is served on this port: say so where virtctl looks (CDIConfig config's status.uploadProxyURL).
  await publishUploadProxyUrl(server.objects, registry, httpsUrl(loopback, address.port));
  const workloads = await startWorkloads({
    server: httpsUrl(loopback, address.port),
    token: componentToken,
    clusterToken: options.token,
    caCert: options.caCert,
    logger: options.logger,
    ...(options.agent === undefined ? {} : { agent: { ...options.agent, directory: local } }),
  });
  started.workloads = workloads;
  const log = (component: string): Logger => options.logger.child({ component });
  const singletons = new Singletons(log('singletons'), new WorkQueueMetrics(metrics));
  // virt-controller's object families: a singleton, so only the leader reports them.
  singletons.add('virt-controller-metrics', () => new VirtControllerMetrics(workloads.client, metrics, log('virt-controller-metrics')));
  singletons.add('namespace-controller', () => new NamespaceController(server.objects, registry, log('namespace-controller')));
  singletons.add('garbage-collector', () => new GarbageCollector(server.objects, registry, log('garbage-collector')));
  singletons.add('compactor', () => new Compactor(options.store, { logger: log('compactor') }));
  // Services work with or without the VM controllers: their endpoints follow whatever VMIs exist.
  singletons.add('endpoints-controller', () => new EndpointsController(workloads.client, log('endpoints-controller')));
  if (options.controllers ?? true) {
    addControllerLoops(singletons, { client: workloads.client, server: httpsUrl(loopback, address.port), logger: options.logger, clusterCidrs: options.clusterCidrs ?? defaultClusterCidrs.map(parseCidr), agents, nodeMonitorGracePeriodMs: options.nodeMonitorGracePeriodMs ?? defaultNodeMonitorGracePeriodMs, ...(options.certificates === undefined ? {} : { certificates: options.certificates }) });
  }
  let elector: LeaderElector | undefined;
  if (options.leaderElection === undefined) {
    await singletons.start();
  } else {
    elector = new LeaderElector(workloads.client, { startLeading: () => singletons.start(), stopLeading: () => singletons.stop() }, { ...options.leaderElection, logger: options.logger });
    elector.start();
  }
  const leader = elector;
  addComponentStatus(metrics, { leading: () => leader === undefined || leader.isLeader });
  const stopParts = async (): Promise<void> => {
    // The Lease is released through this server's own API, so before it closes.
    if (elector === undefined) await singletons.stop();
    else await elector.stop();
    await workloads.stop();
    await server.close();
    agents.close();
    await crds.stop();
  };
  let dns: ClusterDns | undefined;
  if (options.clusterDns !== undefined) {
    const dnsLogger = options.logger.child({ component: 'cluster-dns' });
    dns = new ClusterDns(workloads.client, dnsLogger, options.clusterDns);
    try {
      await dns.start();
    } catch (err) {
      await dns.stop();
      dns = undefined;
      const where = `${options.clusterDns.host}:${options.clusterDns.port}`;
      const why = err instanceof Error ? err.message : String(err);
      if (options.clusterDns.optional !== true) {
        await stopParts();
        throw new Error(`the cluster DNS cannot listen on ${where} (${why}): pick a free address with --cluster-dns-listen HOST:PORT, or "off"`, { cause: err });
      }
      dnsLogger.warn('the cluster DNS is off: its default address is taken; set --cluster-dns-listen to choose another', { address: where, error: why });
    }
  }
  return {
    server,
    registry,
    address,
    workloads,
    dns,
    elector,
    singletons,
    metrics,
    async stop() {
      await dns?.stop();
      await stopParts();
    },
  };
}

function nodeDef(registry: ResourceRegistry): ResourceDef {
  const def = registry.lookup('', 'v1', 'nodes');
  if (def === undefined) throw new Error('the built-in Node kind is missing');
  return def;
}

/** A cluster without any StorageClass gets the default `local` class; one the operator made is left alone. */
async function seedStorageClass(server: ApiServer, registry: ResourceRegistry): Promise<void> {
  const def = registry.lookup('storage.k8s.io', 'v1', 'storageclasses');
  if (def === undefined) throw new Error('the built-in StorageClass kind is missing');
  if ((await server.objects.list(def, undefined, { limit: 1 })).items.length > 0) return;
  await server.objects.create(def, undefined, defaultStorageClass());
}

/** `obj` is created when no object of its kind exists yet (a cluster's first start); the operator's own are left alone. */
async function seedOnce(server: ApiServer, registry: ResourceRegistry, kind: { group: string; version: string; plural: string }, obj: KObject): Promise<void> {
  const def = registry.lookup(kind.group, kind.version, kind.plural);
  if (def === undefined) throw new Error(`the ${kind.plural}.${kind.group} kind is missing`);
  if ((await server.objects.list(def, undefined, { limit: 1 })).items.length > 0) return;
  await server.objects.create(def, undefined, obj);
}

async function seedNamespaces(server: ApiServer, registry: ResourceRegistry): Promise<void> {
  const def = registry.lookup('', 'v1', 'namespaces');
  if (def === undefined) throw new Error('the built-in Namespace kind is missing');
  for (const name of seededNamespaces) {
    if ((await server.objects.tryGet(def, undefined, name)) !== undefined) continue;
    await server.objects.create(def, undefined, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
}
