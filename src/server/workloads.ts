/**
 * The parts of `vireo server` that make VMs run, wired the way Kubernetes'
 * own components are: each talks to the API server only through the API
 * (an HTTPS client on loopback), so each could run anywhere. The VM and
 * replica-set controllers, the scheduler, the Event TTL cleaner, node IPAM
 * and the storage controllers are singletons (`addControllerLoops`: they
 * run on the leading server only); the node agent of this host runs on
 * every server.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { HttpClient } from '../client/index.js';
import { VirtualMachineController } from '../controllers/vm/index.js';
import { ReplicaSetController } from '../controllers/replicaset/index.js';
import { DataVolumeController } from '../controllers/datavolume/index.js';
import { CdiConfigController } from '../controllers/cdiconfig/index.js';
import { EventTtlCleaner } from '../controllers/events/index.js';
import { Scheduler } from '../scheduler/index.js';
import { VolumeController } from '../controllers/volumes/index.js';
import { SnapshotController } from '../controllers/snapshots/index.js';
import { SnapshotControllers as VmSnapshotControllers } from '../controllers/vmsnapshot/index.js';
import { NodeIpamController } from '../controllers/nodeipam/controller.js';
import { NodeLifecycleController } from '../controllers/nodelifecycle/index.js';
import type { Cidr } from '../net/pod/cidr.js';
import { NodeAgent } from '../agent/index.js';
import type { AgentDirectory, LocalAgentDirectory } from '../agent/index.js';
import { MigrationController } from '../controllers/migration/index.js';
import { EvacuationController } from '../controllers/evacuation/index.js';
import type { NodeFacts } from '../agent/qemu/index.js';
import { ImageStore } from '../agent/images/index.js';
import type { Logger } from '../log/logger.js';
import type { CertificateIssuer } from '../net/certificate-issuer.js';
import type { Singletons } from './singletons.js';

export interface WorkloadOptions {
  /** `https://127.0.0.1:<port>` of this server. */
  server: string;
  token: string;
  /** The token node agents accept on their endpoints (the users' cluster token): this host's agent copies volumes from them with it. */
  clusterToken?: string;
  caCert: string;
  logger: Logger;
  /** Run a node agent for this host, with its files under `dataDir`. */
  agent?: {
    dataDir: string;
    nodeName?: string;
    facts?: Partial<NodeFacts>;
    directory: LocalAgentDirectory;
    /** Kill the guests when the server stops (tests); by default they outlive it and the next start picks them up. */
    stopGuests?: boolean;
  };
}

export interface Workloads {
  client: HttpClient;
  agent: NodeAgent | undefined;
  images: ImageStore | undefined;
  stop(): Promise<void>;
}

/** What the controller loops need: the API client and this server's address. */
export interface ControllerLoopOptions {
  client: HttpClient;
  /** `https://127.0.0.1:<port>` of this server: the upload proxy is served on it. */
  server: string;
  logger: Logger;
  /** The ranges the node IPAM hands Nodes their pod subnets from. */
  clusterCidrs: readonly Cidr[];
  /** Every node's agent (this host's in-process, the others' over HTTPS): the migration controller drives migrations through them. */
  agents?: AgentDirectory;
  /** `--node-monitor-grace-period` of the node lifecycle controller, in ms. */
  nodeMonitorGracePeriodMs: number;
  /** Issues the migrations' TLS certificates from the cluster CA (none: only migrations with TLS disabled run). */
  certificates?: CertificateIssuer;
}

/** Registers the VM/replica-set/storage controllers, the scheduler, the Event TTL and node IPAM as singletons. */
export function addControllerLoops(singletons: Singletons, options: ControllerLoopOptions): void {
  const { client } = options;
  const log = (component: string): Logger => options.logger.child({ component });
  singletons.add('virtualmachine-controller', () => new VirtualMachineController(client, log('virtualmachine-controller')));
  singletons.add('replicaset-controller', () => new ReplicaSetController(client, log('replicaset-controller')));
  singletons.add('scheduler', () => new Scheduler(client, log('scheduler')));
  singletons.add('volume-controller', () => new VolumeController(client, log('volume-controller')));
  singletons.add('datavolume-controller', () => new DataVolumeController(client, log('datavolume-controller')));
  singletons.add('snapshot-controller', () => new SnapshotController(client, log('snapshot-controller')));
  singletons.add('vmsnapshot-controllers', () => new VmSnapshotControllers(client, log('vmsnapshot-controllers')));
  singletons.add('cdi-config-controller', () => new CdiConfigController(client, options.server, log('cdi-config-controller')));
  singletons.add('node-ipam-controller', () => new NodeIpamController(client, log('node-ipam-controller'), { clusterCidrs: options.clusterCidrs }));
  singletons.add('event-ttl', () => new EventTtlCleaner(client, log('event-ttl')));
  // Node failure: NotReady after the grace period, the node's VMIs Failed.
  singletons.add('node-lifecycle-controller', () => new NodeLifecycleController(client, log('node-lifecycle-controller'), { gracePeriodMs: options.nodeMonitorGracePeriodMs }));
  const { agents } = options;
  if (agents !== undefined) singletons.add('migration-controller', () => new MigrationController(client, agents, log('migration-controller'), options.certificates));
  // Drains: migrations for the VMIs marked to leave a node (the migration controller runs them).
  if (agents !== undefined) singletons.add('evacuation-controller', () => new EvacuationController(client, log('evacuation-controller')));
}

export async function startWorkloads(options: WorkloadOptions): Promise<Workloads> {
  const client = new HttpClient({ server: options.server, token: options.token, caCert: options.caCert, userAgent: 'vireo-server' });
  const stops: (() => Promise<void>)[] = [];
  let agent: NodeAgent | undefined;
  let images: ImageStore | undefined;
  if (options.agent !== undefined) {
    const { dataDir, directory } = options.agent;
    images = new ImageStore(join(dataDir, 'images'));
    agent = new NodeAgent({
      client,
      // Node names are DNS subdomains: lowercase.
      nodeName: options.agent.nodeName ?? hostname().toLowerCase(),
      dataDir: join(dataDir, 'agent'),
      logger: options.logger,
      images,
      controlPlane: true,
      ...(options.clusterToken === undefined ? {} : { copyToken: options.clusterToken }),
      apiServer: { url: options.server, caCert: options.caCert },
      ...(options.agent.facts === undefined ? {} : { facts: options.agent.facts }),
    });
    await agent.start();
    directory.register(agent);
    const started = agent;
    const stopGuests = options.agent.stopGuests ?? false;
    stops.unshift(async () => {
      directory.unregister(started.nodeName);
      await started.stop({ stopGuests });
    });
  }
  return {
    client,
    agent,
    images,
    async stop() {
      for (const stop of stops) await stop();
      client.close();
    },
  };
}
