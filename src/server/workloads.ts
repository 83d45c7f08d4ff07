/**
 * The parts of `vireo server` that make VMs run, wired the way Kubernetes'
 * own components are: each talks to the API server only through the API
 * (an HTTPS client on loopback), so each could run anywhere. The VM and
 * replica-set controllers, the scheduler, the Event TTL cleaner, and the
 * node agent of this host.
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
import type { LocalAgentDirectory } from '../agent/index.js';
import type { NodeFacts } from '../agent/qemu/index.js';
import { ImageStore } from '../agent/images/index.js';
import type { Logger } from '../log/logger.js';

export interface WorkloadOptions {
  /** `https://127.0.0.1:<port>` of this server. */
  server: string;
  token: string;
  /** The token node agents accept on their endpoints (the users' cluster token): this host's agent copies volumes from them with it. */
  clusterToken?: string;
  caCert: string;
  logger: Logger;
  /** Run the VM/replica-set controllers, scheduler and Event TTL. */
  controllers: boolean;
  /** The ranges the node IPAM (one of the controllers) hands Nodes their pod subnets from. */
  clusterCidrs: readonly Cidr[];
  /** `--node-monitor-grace-period` of the node lifecycle controller (one of the controllers), in ms. */
  nodeMonitorGracePeriodMs: number;
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

export async function startWorkloads(options: WorkloadOptions): Promise<Workloads> {
  const client = new HttpClient({ server: options.server, token: options.token, caCert: options.caCert, userAgent: 'vireo-server' });
  const stops: (() => Promise<void>)[] = [];
  if (options.controllers) {
    const vms = new VirtualMachineController(client, options.logger.child({ component: 'virtualmachine-controller' }));
    const sets = new ReplicaSetController(client, options.logger.child({ component: 'replicaset-controller' }));
    const dataVolumes = new DataVolumeController(client, options.logger.child({ component: 'datavolume-controller' }));
    const scheduler = new Scheduler(client, options.logger.child({ component: 'scheduler' }));
    const ttl = new EventTtlCleaner(client, options.logger.child({ component: 'event-ttl' }));
    const volumes = new VolumeController(client, options.logger.child({ component: 'volume-controller' }));
    const snapshots = new SnapshotController(client, options.logger.child({ component: 'snapshot-controller' }));
    const vmSnapshots = new VmSnapshotControllers(client, options.logger.child({ component: 'vmsnapshot-controllers' }));
    // The upload proxy is served on this server's own port.
    const cdiConfig = new CdiConfigController(client, options.server, options.logger.child({ component: 'cdi-config-controller' }));
    const nodeIpam = new NodeIpamController(client, options.logger.child({ component: 'node-ipam-controller' }), { clusterCidrs: options.clusterCidrs });
    await Promise.all([vms.start(), sets.start(), scheduler.start(), volumes.start(), dataVolumes.start(), snapshots.start(), vmSnapshots.start(), cdiConfig.start(), nodeIpam.start()]);
    ttl.start();
    stops.push(() => vms.stop(), () => sets.stop(), () => scheduler.stop(), () => ttl.stop(), () => volumes.stop(), () => dataVolumes.stop(), () => snapshots.stop(), () => vmSnapshots.stop(), () => cdiConfig.stop(), () => nodeIpam.stop());
  }
  if (options.controllers) {
    // Node failure: NotReady after the grace period, the node's VMIs Failed. One writer per cluster (a leader-only loop with several servers).
    const nodeLifecycle = new NodeLifecycleController(client, options.logger.child({ component: 'node-lifecycle-controller' }), { gracePeriodMs: options.nodeMonitorGracePeriodMs });
    await nodeLifecycle.start();
    stops.push(() => nodeLifecycle.stop());
  }
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
      ...(options.clusterToken === undefined ? {} : { clusterToken: options.clusterToken }),
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
