/**
 * The node agent (KubeVirt's virt-handler, without a launcher per VM): it
 * registers its Node and heartbeats a Lease, watches the VMIs bound to its
 * node, and runs one QEMU per VMI directly. QEMU outlives the agent; a new
 * agent re-derives what runs from the VMI directories and carries on.
 */
import { NodeMigrations } from './migration/index.js';
import type { MigrationAnswer, MigrationCommand } from './migration/index.js';
import { PodNetwork } from '../net/pod/index.js';
import { CniRuntime, SecondaryNetworks } from '../net/cni/index.js';
import { podCidrsOf } from '../controllers/nodeipam/controller.js';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { ApiError } from '../api/errors.js';
import { booleanAt, stringAt } from '../api/kinds/read.js';
import type { KObject } from '../api/object.js';
import type { Client } from '../client/index.js';
import { Informer, resources } from '../client/index.js';
import { EventRecorder } from '../controllers/events/index.js';
import { WorkQueue } from '../controllers/queue.js';
import type { Logger } from '../log/logger.js';
import type { AgentEndpointInfo } from './endpoint-api.js';
import type { AgentHandle, GuestAction, GuestActionParameters, UploadOptions, UploadResult } from './handle.js';
import type { ImageStore } from './images/index.js';
import type { NodeFacts } from './qemu/index.js';
import { checkSocketPaths, vmisRoot } from './layout.js';
import { qemuVersion, resolveNodeFacts } from './node-facts.js';
import type { ResolvedFacts } from './node-facts.js';
import { describeHost } from './node-info.js';
import { NodeRegistrar } from './node-registration.js';
import { NodeFence } from './node-fence.js';
import { nodeFencedReason } from '../api/kinds/node-lifecycle.js';
import { Cgroups } from './cgroups.js';
import { Exposition, GuestMetrics } from './metrics/index.js';
import type { ScrapeReport } from './metrics/index.js';
import { GuestPanics } from './metrics/guest-panics.js';
import { recoverRuntimes } from './recovery.js';
import type { StartFacts } from './vmi-runner.js';
import { VmiRunner } from './vmi-runner.js';
import { resizeLiveDisks } from './volume-resize.js';
import { LocalProvisioner } from '../storage/local/provisioner.js';
import { SnapshotSidecar } from '../storage/snapshots/sidecar.js';
import { VolumeExporter } from '../storage/snapshots/export.js';
import type { ExportSource, ExportedVolume, VolumeExports } from '../storage/snapshots/export.js';
import { liveGuests } from './volume-snapshot.js';
import type { Machine } from './machine.js';
import { compressionAnnotation, localVolumeOf } from '../storage/local/index.js';
import type { LocalVolume } from '../storage/local/index.js';
import { ImportRunner, UploadReceiver } from '../storage/import/index.js';
import type { ImportTarget } from '../storage/import/index.js';
import { pullerFor } from './images/index.js';
import { NodeNetworkPolicy } from './network-policy.js';
import { NodeServices } from './service-proxy.js';
import { NodePodRoutes } from './pod-routes.js';

/** What a node agent needs; see the fields. */
export interface NodeAgentOptions {
  client: Client;
  /** The Node this agent is. */
  nodeName: string;
  /** The agent's own directory (`<server data dir>/agent`): VMI directories live under `vmis/`. */
  dataDir: string;
  logger: Logger;
  /** Where containerDisk and kernelBoot images come from. */
  images: ImageStore;
  /** Facts to use instead of detecting them; `accel` skips the KVM probe (tests pass `tcg`). */
  facts?: Partial<NodeFacts>;
  /** The agent runs inside `vireo server`: its Node also gets the control-plane role label. */
  controlPlane?: boolean;
  /** The parent cgroup of the VMIs' cgroups (relative to each hierarchy's root). Default `vireo`. */
  cgroupParent?: string;
  /** VMIs reconciled at once. Default 16. */
  concurrency?: number;
  /**
   * The agent runs on another host (`vireo agent`): the endpoint the API
   * server reaches it on, published on its Node, and the address it is
   * reached at (the Node's InternalIP; default the first non-loopback IPv4).
   */
  endpoint?: AgentEndpointInfo & { address?: string };
  /**
   * The bearer token this agent presents to another node's export (its
   * agent endpoint, or the API server's port) to copy a volume from it: the
   * cluster token, or a joined agent's node credential, which the source
   * checks with a TokenReview. Without it, clones whose source is on
   * another node wait.
   */
  copyToken?: string;
  /** Annotations the agent keeps on its Node (a joined agent marks its Node as bound to its credential). */
  nodeAnnotations?: Record<string, string>;
  /** The API server's URL and CA: the agent inside `vireo server` serves its volumes' exports there. */
  apiServer?: { url: string; caCert: string };
}

/** Why the guests of a KubeVirt CR with `useEmulation` run under TCG. */
const useEmulationReason = 'spec.configuration.developerConfiguration.useEmulation is set in the KubeVirt CR';

/** The node agent of one node: Node + Lease, the VMIs bound to it, their QEMUs, and the {@link AgentHandle} the API server uses. */
export class NodeAgent implements AgentHandle, VolumeExports {
  readonly nodeName: string;
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  private registrar: NodeRegistrar | undefined;
  private fence: NodeFence | undefined;
  private informer: Informer | undefined;
  private queue: WorkQueue | undefined;
  private runner: VmiRunner | undefined;
  private facts: Promise<ResolvedFacts> | undefined;
  private events: EventRecorder | undefined;
  private provisioner: LocalProvisioner | undefined;
  private snapshots: SnapshotSidecar | undefined;
  private imports: ImportRunner | undefined;
  private uploads: UploadReceiver | undefined;
  private exporter: VolumeExporter | undefined;
  private networkPolicy: NodeNetworkPolicy | undefined;
  private services: NodeServices | undefined;
  private podRoutes: NodePodRoutes | undefined;
  private podNetwork: PodNetwork | undefined;
  private migrations: NodeMigrations | undefined;
  private readonly guestMetrics = new GuestMetrics();
  /** The node's guest OS panics since this agent started (`kubevirt_vmi_guest_os_panic_total`). */
  private readonly guestPanics: GuestPanics;

  constructor(private readonly options: NodeAgentOptions) {
    this.nodeName = options.nodeName;
    this.logger = options.logger.child({ component: 'agent', node: options.nodeName });
    this.guestPanics = new GuestPanics(options.nodeName);
  }

  /**
   * Registers the Node, reattaches to the QEMUs already running, and starts
   * reconciling the node's VMIs. Resolves once the VMIs are listed.
   */
  async start(): Promise<void> {
    const { client, nodeName, dataDir } = this.options;
    const signal = this.abort.signal;
    checkSocketPaths(dataDir);
    await mkdir(vmisRoot(dataDir), { recursive: true, mode: 0o700 });
    const binary = this.options.facts?.qemuBinary ?? 'qemu-system-x86_64';
    const version = await qemuVersion(binary, signal);
    const endpoint = this.options.endpoint;
    const address = endpoint?.address === undefined ? {} : { address: endpoint.address };
    const host = describeHost({ nodeName, controlPlane: this.options.controlPlane ?? false, qemuVersion: version, dataDir, ...address });
    // Self-fencing: the guests die here before the server may start them elsewhere (the runner exists by the time it could fire).
    const fence = new NodeFence({
      dataDir,
      logger: this.logger,
      killGuests: async () => (await this.runner?.fence()) ?? [],
      onRecovered: (guests) => {
        const names = guests.length === 0 ? 'none was running' : guests.map((g) => `${g.namespace}/${g.name}`).join(', ');
        const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } };
        this.events?.record(node, 'Warning', nodeFencedReason, `the agent of ${nodeName} could not renew its Lease in time and killed its guests (self-fencing): ${names}; they are not started again here`);
      },
    });
    this.fence = fence;
    this.registrar = new NodeRegistrar({
      client,
      nodeName,
      host,
      logger: this.logger,
      fence,
      ...(endpoint === undefined ? {} : { endpoint: { port: endpoint.port, certificate: endpoint.certificate } }),
      ...(this.options.nodeAnnotations === undefined ? {} : { annotations: this.options.nodeAnnotations }),
    });
    await this.registrar.start();
    fence.start();
    // The KVM probe boots a guest: it runs in the background, and only starting a VMI waits for it.
    // Its outcome is kept in the data directory until the host reboots or QEMU changes: a restarted agent does not probe again.
    const probeCache = { file: join(dataDir, 'accelerator.json'), fingerprint: `${binary} ${version ?? 'unknown version'}` };
    const facts = resolveNodeFacts(this.options.facts ?? {}, { logger: this.logger, signal, probeCache });
    facts.catch(() => undefined);
    this.facts = facts;

    const cgroups = await Cgroups.detect(this.options.cgroupParent === undefined ? {} : { parent: this.options.cgroupParent });
    if (cgroups.mode === 'none') this.logger.warn('guests run without cgroups: their CPU weight and memory limits are not applied', { reason: cgroups.reason });
    const events = new EventRecorder(client, 'virt-handler', this.logger, { instance: nodeName });
    this.events = events;
    const informer = new Informer(client, resources.virtualMachineInstances, this.logger, { fieldSelector: `status.nodeName=${nodeName}` });
    const podNetwork = new PodNetwork({
      dataDir,
      podCidrs: async () => podCidrsOf(await client.get(resources.nodes, undefined, nodeName)),
      logger: this.logger,
      // The guests' DNS server: the cluster DNS this agent serves on the node's gateway (NodeServices).
      gatewayDns: true,
      // Multus NICs: Debian's CNI plugins, their results cached in the data directory so DEL works after a restart.
      secondaryNetworks: new SecondaryNetworks({ client, runtime: new CniRuntime({ cacheDir: join(dataDir, 'cni', 'results') }), logger: this.logger }),
    });
    this.podNetwork = podNetwork;
    const runner = new VmiRunner({
      client,
      nodeName,
      dataDir,
      images: this.options.images,
      cgroups,
      podNetwork,
      logger: this.logger,
      lookup: (key) => informer.get(key),
      enqueue: (key) => { queue.add(key); },
      startFacts: (s) => this.startFacts(s),
      events,
      mayStartGuests: () => fence.mayStartGuests(),
      onPanic: (namespace, name, info) => { this.guestPanics.record(namespace, name, info); },
    });
    const queue = new WorkQueue((key, s) => runner.reconcile(key, s), { logger: this.logger, concurrency: this.options.concurrency ?? 16, objectOf: (key) => informer.get(key) });
    this.informer = informer;
    this.runner = runner;
    this.migrations = new NodeMigrations({ client, host: runner, logger: this.logger, dataDir, nodeName, events });
    this.queue = queue;
    for (const runtime of await recoverRuntimes({ dataDir, cgroups, logger: this.logger, enqueue: (key) => { queue.add(key); }, onPanic: (namespace, name, info) => { this.guestPanics.record(namespace, name, info); }, signal })) runner.adopt(runtime);
    // Sandboxes no VMI directory accounts for (a start interrupted before its record): removed. The others go with their VMI's cleanup.
    const swept = await podNetwork.sweep(new Set(await readdir(vmisRoot(dataDir))), signal);
    if (swept.length > 0) this.logger.info('removed network sandboxes left by an interrupted start', { uids: swept });
    // NetworkPolicies on this node's sandboxes, from when the pod network is up (a restarted agent's at once).
    await podNetwork.load();
    this.networkPolicy = new NodeNetworkPolicy({ client, podNetwork, vmis: informer, logger: this.logger });
    this.networkPolicy.start();
    // Services' cluster IPs and node ports, and the guests' DNS, from when the pod network is up.
    this.services = new NodeServices({ client, podNetwork, logger: this.logger });
    this.services.start();
    // Routes to the other nodes' pod ranges, and the cluster's pod ranges the node's pods reach without masquerade.
    this.podRoutes = new NodePodRoutes({ client, nodeName, podNetwork, logger: this.logger });
    await this.podRoutes.start();
    informer.onChange((key) => { queue.add(key); });
    await informer.start();
    // Runtimes whose VMI is gone get no informer event: queue them too.
    for (const key of runner.keys()) queue.add(key);
    queue.start();
    // The node's local volumes: provisioned here, grown online through the runner's machines.
    const machineOf = (ns: string, name: string): Machine | undefined => runner.liveMachine(ns, name);
    const live = liveGuests({ vmis: () => informer.list(), machineOf });
    this.provisioner = new LocalProvisioner({ client, nodeName, dataDir, logger: this.logger, live, resizeLive: (claim, bytes) => resizeLiveDisks(claim, bytes, { vmis: informer.list(), machineOf }) });
    await this.provisioner.start();
    // The node's snapshots of local volumes: cut, offline or live, and deleted here.
    this.snapshots = new SnapshotSidecar({ client, nodeName, dataDir, logger: this.logger, live });
    await this.snapshots.start();
    // DataVolume imports into the volumes of this node (CDI's importer pods, without pods).
    // Copies of volumes of this node to other nodes (the source side of a clone across nodes).
    this.exporter = new VolumeExporter({ client, nodeName, dataDir, live, logger: this.logger });
    const apiServer = this.options.apiServer;
    const copyAccess = { token: this.options.copyToken, ...(apiServer === undefined ? {} : { apiServer }) };
    const importEvents = new EventRecorder(client, 'import-controller', this.logger, { instance: nodeName });
    this.imports = new ImportRunner({ client, logger: this.logger, puller: pullerFor(this.options.images), resolveTarget: (pvc) => this.importTarget(pvc), copyAccess, events: importEvents });
    await this.imports.start();
    // CDI uploads into the volumes of this node (CDI's upload server pods, without pods).
    this.uploads = new UploadReceiver({ client, logger: this.logger, resolveTarget: (pvc) => this.importTarget(pvc) });
    await this.uploads.start();
    this.logger.info('node agent started', { dataDir });
  }

  /**
   * Stops watching and lets go of the QEMUs, which keep running for the
   * next agent. With `stopGuests`, kills them instead (their VMIs are
   * reported by the next agent to start on this data directory).
   */
  async stop(options: { stopGuests?: boolean } = {}): Promise<void> {
    this.abort.abort();
    this.guestMetrics.stop();
    this.exporter?.stop();
    await this.queue?.stop();
    await this.informer?.stop();
    await this.imports?.stop();
    await this.uploads?.stop();
    await this.snapshots?.stop();
    await this.provisioner?.stop();
    await this.registrar?.stop();
    await this.migrations?.stop();
    await this.fence?.stop();
    await this.runner?.stop({ stopGuests: options.stopGuests ?? false });
    // The policy tables stay enforcing for guests that run on; with none on the pod network they go, like the node bridge.
    const noSandboxes = this.podNetwork === undefined || this.podNetwork.sandboxStates().size === 0;
    await this.networkPolicy?.stop({ removeTables: (options.stopGuests ?? false) || noSandboxes });
    await this.services?.stop({ removeTable: (options.stopGuests ?? false) || noSandboxes });
    await this.podRoutes?.stop({ removeRoutes: (options.stopGuests ?? false) || noSandboxes });
    await this.events?.flush();
    this.logger.info('node agent stopped', { stopGuests: options.stopGuests ?? false });
  }

  async guestAction(namespace: string, name: string, action: GuestAction, parameters?: GuestActionParameters): Promise<void> {
    await this.started().guestAction(namespace, name, action, parameters);
  }

  async openStream(namespace: string, name: string, kind: 'console' | 'vnc'): Promise<Duplex> {
    return this.started().openStream(namespace, name, kind);
  }

  async openPortForward(namespace: string, name: string, port: number): Promise<Duplex> {
    return this.started().openPortForward(namespace, name, port);
  }

  async serialLog(namespace: string, name: string): Promise<string> {
    // Inside an async method a throw (not running) becomes the rejection the AgentHandle contract asks for.
    return Promise.resolve(this.started().serialLog(namespace, name));
  }

  /** KubeVirt's per-VMI families of this node's running guests, in Prometheus' text format. */
  async metrics(): Promise<string> {
    const runner = this.runner;
    if (runner === undefined || this.abort.signal.aborted) throw new ApiError('ServiceUnavailable', `the node agent of ${this.nodeName} is not running`);
    const panics = new Exposition();
    this.guestPanics.write(panics);
    return (await this.guestMetrics.scrape(runner.runningGuests(), this.nodeName)) + panics.text();
  }

  /** How the last scrape of {@link metrics} went (QEMU's answers asked ahead or at the scrape). */
  lastScrapeReport(): ScrapeReport | undefined {
    return this.guestMetrics.lastReport;
  }

  async migration(namespace: string, name: string, command: MigrationCommand): Promise<MigrationAnswer> {
    if (this.migrations === undefined || this.abort.signal.aborted) throw new ApiError('ServiceUnavailable', `the node agent of ${this.nodeName} is not running`);
    return this.migrations.handle(namespace, name, command, this.abort.signal);
  }

  async upload(namespace: string, pvc: string, body: Readable, options: UploadOptions): Promise<UploadResult> {
    if (this.uploads === undefined || this.abort.signal.aborted) throw new ApiError('ServiceUnavailable', `the node agent of ${this.nodeName} is not running`);
    return this.uploads.upload(namespace, pvc, body, options);
  }

  async prepareExport(source: ExportSource, target: string): Promise<ExportedVolume> {
    return this.exporting().prepareExport(source, target);
  }

  async releaseExport(source: ExportSource, target: string): Promise<void> {
    await this.exporting().releaseExport(source, target);
  }

  private exporting(): VolumeExporter {
    if (this.exporter === undefined || this.abort.signal.aborted) throw new ApiError('ServiceUnavailable', `the node agent of ${this.nodeName} is not running`);
    return this.exporter;
  }

  private started(): VmiRunner {
    if (this.runner === undefined || this.abort.signal.aborted) throw new ApiError('ServiceUnavailable', `the node agent of ${this.nodeName} is not running`);
    return this.runner;
  }

  /** The node's facts, with TCG forced while the KubeVirt CR asks for emulation. */
  /** The file of `pvc`'s volume when it is bound to a local volume of this node; undefined otherwise (another node's runner serves it). */
  private async importTarget(pvc: KObject): Promise<ImportTarget | undefined> {
    const pvName = stringAt(pvc, 'spec', 'volumeName');
    if (pvName === undefined || pvName === '') return undefined;
    const pv = await this.options.client.tryGet(resources.persistentVolumes, undefined, pvName);
    if (pv === undefined) return undefined;
    let volume: LocalVolume;
    try {
      volume = localVolumeOf(pvc, pv);
    } catch {
      return undefined;
    }
    if (volume.node !== this.nodeName) return undefined;
    return { path: volume.path, format: volume.format, sizeBytes: volume.bytes, ...(pv.metadata.annotations?.[compressionAnnotation] === 'true' ? { compress: true } : {}) };
  }

  private async startFacts(signal: AbortSignal): Promise<StartFacts> {
    if (this.facts === undefined) throw new Error('the node agent is not started');
    const resolved = await this.facts;
    signal.throwIfAborted();
    if (resolved.facts.accel === 'tcg' || !(await this.useEmulation())) return resolved;
    return { facts: { ...resolved.facts, accel: 'tcg' }, accelReason: useEmulationReason };
  }

  private async useEmulation(): Promise<boolean> {
    try {
      const list = await this.options.client.list(resources.kubeVirts);
      return list.items.some((kv) => booleanAt(kv, 'spec', 'configuration', 'developerConfiguration', 'useEmulation') === true);
    } catch (err) {
      this.logger.debug('cannot read the KubeVirt CR', { err });
      return false;
    }
  }
}
