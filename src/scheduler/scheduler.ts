/**
 * The VMI scheduler: what kube-scheduler and KubeVirt's VMI controller do
 * together for a virt-launcher pod, done directly on the VMI. A VMI without
 * a node is placed on a Ready, uncordoned node whose taints it tolerates,
 * whose labels match its selector and required affinity, and that has the
 * CPU and memory left, preferring the least loaded; binding writes
 * `status.nodeName` and phase `Scheduled` with compare-and-swap on the
 * resourceVersion. When nothing fits, the VMI gets KubeVirt's `PodScheduled`
 * False/`Unschedulable` condition with kube-scheduler's message, and is
 * retried whenever a node or a VMI changes.
 *
 * Volumes (`volumes.ts`): a VMI goes where its bound volumes are; its
 * unbound WaitForFirstConsumer claims go with it, to a node with room for
 * them, and are sent there (`volume.kubernetes.io/selected-node`) before
 * the VMI is bound, as kube-scheduler's volume binder does.
 *
 * Reconciles run one at a time, and bindings not yet seen in the cache are
 * remembered ("assumed", as kube-scheduler does), so two VMIs never both
 * take the last room on a node.
 */
import type { KObject } from '../api/object.js';
import { ApiError } from '../api/errors.js';
import { arrayAt, recordAt, stringAt } from '../api/kinds/read.js';
import type { Client } from '../client/index.js';
import { Informer, resources } from '../client/index.js';
import type { Logger } from '../log/logger.js';
import { WorkQueue } from '../controllers/queue.js';
import { ControllerLoop } from '../controllers/loop.js';
import type { ReconcileResult } from '../controllers/queue.js';
import { EventRecorder } from '../controllers/events/index.js';
import { conditionsOf, conditionTypes, findCondition, isFinal, isMarkedForDeletion, logFieldsOf, nodeNameOf, removeCondition, setCondition, timestamp, vmiPhase, vmiPhases } from '../controllers/vmi/index.js';
import { freeBytes, isLocalClass, selectedNodeAnnotation } from '../storage/local/index.js';
import type { StorageView } from '../storage/local/index.js';
import { place } from './placement.js';
import type { RequestOptions, Resources } from './resources.js';
import { add, vmiRequests, zero } from './resources.js';
import { cordonedVolumeHint, holdsDataSource, volumeFilter, volumeNeeds } from './volumes.js';
import type { VolumeLookup, VolumeNeeds } from './volumes.js';

/** Tuning and seams of the scheduler; every field is optional. */
export interface SchedulerOptions {
  /** VMIs whose `spec.schedulerName` is unset or this name are ours. Default `default-scheduler`. */
  schedulerName?: string;
  /** vCPUs per core requested by VMIs without a CPU request. Default 10, as KubeVirt. */
  cpuAllocationRatio?: number;
  /** Memory reserved per VMI beside its guest, for QEMU itself. Default 32 MiB. */
  memoryOverheadBytes?: number;
  now?: () => number;
  nodeInformer?: Informer;
  vmiInformer?: Informer;
  recorder?: EventRecorder;
}

const schedulablePhases: readonly string[] = [vmiPhases.unset, vmiPhases.pending, vmiPhases.scheduling];

/** The VMI label naming its node, as KubeVirt sets it. */
export const nodeNameLabel = 'kubevirt.io/nodeName';

/** Binds VMIs to nodes. */
export class Scheduler {
  private readonly nodes: Informer;
  private readonly vmis: Informer;
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly classes: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  private readonly schedulerName: string;
  private readonly requestOptions: RequestOptions;
  private readonly now: () => number;
  /** Bindings written but not yet in the VMI cache, by VMI key. */
  private readonly assumed = new Map<string, { uid: string; node: string; request: Resources }>();
  /** Claims sent to a node whose annotation is not yet in the claim cache, by claim uid. */
  private readonly assumedClaims = new Map<string, { node: string; bytes: number }>();

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: SchedulerOptions = {},
  ) {
    this.schedulerName = options.schedulerName ?? 'default-scheduler';
    this.requestOptions = { cpuAllocationRatio: options.cpuAllocationRatio ?? 10, memoryOverheadBytes: options.memoryOverheadBytes ?? 32 * 2 ** 20 };
    this.now = options.now ?? Date.now;
    this.recorder = options.recorder ?? new EventRecorder(client, this.schedulerName, logger);
    // One at a time: each placement must see the room the previous one took.
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 1, baseDelayMs: 50, maxDelayMs: 30_000, objectOf: (key) => this.vmis.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.nodes = this.loop.informer(options.nodeInformer, () => new Informer(client, resources.nodes, logger));
    this.vmis = this.loop.informer(options.vmiInformer, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.claims = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumeClaims, logger));
    this.volumes = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumes, logger));
    this.classes = this.loop.informer(undefined, () => new Informer(client, resources.storageClasses, logger));
    this.nodes.onChange(() => { this.enqueuePending(); });
    // A claim appearing, binding or being sent to a node may make a waiting VMI placeable.
    for (const informer of [this.claims, this.volumes, this.classes]) informer.onChange(() => { this.enqueuePending(); });
    this.vmis.onChange((key) => { this.onVmiChange(key); });
  }

  /** Fills the caches, then schedules every unbound VMI and every change. */
  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('scheduler started', { schedulerName: this.schedulerName });
  }

  /** Stops scheduling and waits for a running placement to end. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private onVmiChange(key: string): void {
    const vmi = this.vmis.get(key);
    if (vmi === undefined || nodeNameOf(vmi) !== undefined || isFinal(vmi) || vmi.metadata.uid !== this.assumed.get(key)?.uid) this.assumed.delete(key);
    if (vmi !== undefined && this.isPending(vmi)) {
      this.queue.add(key);
      return;
    }
    // A VMI that ended, went away or moved may have freed room for those waiting.
    this.enqueuePending();
  }

  private enqueuePending(): void {
    for (const vmi of this.vmis.list()) {
      if (this.isPending(vmi)) this.queue.add(`${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`);
    }
  }

  private isPending(vmi: KObject): boolean {
    const name = stringAt(vmi, 'spec', 'schedulerName') ?? '';
    return nodeNameOf(vmi) === undefined && schedulablePhases.includes(vmiPhase(vmi)) && (name === '' || name === this.schedulerName);
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const vmi = this.vmis.get(key);
    if (vmi === undefined || !this.isPending(vmi)) return {};
    if (this.assumed.get(key)?.uid === vmi.metadata.uid) return {};
    const log = this.logger.child(logFieldsOf(vmi));
    if (isMarkedForDeletion(vmi)) {
      // Nothing runs it, and nothing will: KubeVirt fails a VMI deleted before it was scheduled.
      await this.writeStatus(vmi, { ...recordAt(vmi, 'status'), phase: vmiPhases.failed, phaseTransitionTimestamps: this.transitions(vmi, vmiPhases.failed) });
      return {};
    }
    const request = vmiRequests(vmi, this.requestOptions);
    const lookup: VolumeLookup = {
      claim: (namespace, name) => this.claims.get(`${namespace}/${name}`),
      volume: (name) => this.volumes.get(name),
      storageClass: (name) => this.classes.get(name),
      node: (name) => this.nodes.get(name),
    };
    const needs = volumeNeeds(vmi, lookup);
    if ('unresolvable' in needs) {
      // kube-scheduler's PreFilter rejection: no node is even tried.
      await this.markUnschedulable(vmi, `0/${this.nodes.list().length} nodes are available: ${needs.unresolvable}.`, log);
      return {};
    }
    const view = this.storageView();
    const placement = place(vmi, request, this.nodes.list(), this.usage(), (node) => volumeFilter(needs, node, this.freeLocal(node, view)), (node) => holdsDataSource(needs, node));
    if ('node' in placement) await this.bind(vmi, { node: placement.node, request, needs }, log);
    else {
      const hint = cordonedVolumeHint(vmi, lookup);
      await this.markUnschedulable(vmi, hint === undefined ? placement.unschedulable : `${placement.unschedulable} ${hint[0]?.toUpperCase() ?? ''}${hint.slice(1)}.`, log);
    }
    return {};
  }

  private storageView(): StorageView {
    for (const [uid, claim] of this.assumedClaims) {
      const cached = this.claims.list().find((pvc) => pvc.metadata.uid === uid);
      if (cached === undefined || cached.metadata.annotations?.[selectedNodeAnnotation] === claim.node) this.assumedClaims.delete(uid);
    }
    return { pvs: this.volumes.list(), pvcs: this.claims.list(), isLocalClass: (name) => isLocalClass(this.classes.get(name)) };
  }

  /** The node's free local storage, less the claims sent to it that the cache does not show yet. */
  private freeLocal(node: KObject, view: StorageView): number | undefined {
    const free = freeBytes(node, view);
    if (free === undefined) return undefined;
    let assumed = 0;
    for (const claim of this.assumedClaims.values()) if (claim.node === node.metadata.name) assumed += claim.bytes;
    return free - assumed;
  }

  /** Sends the VMI's unbound claims to `node` (kube-scheduler's volume binder); false when one is gone. */
  private async sendClaims(needs: VolumeNeeds, node: string): Promise<boolean> {
    for (const claim of needs.unbound) {
      if (claim.selectedNode !== undefined) continue;
      try {
        await this.client.patch(resources.persistentVolumeClaims, claim.pvc.metadata.namespace, claim.pvc.metadata.name ?? '', 'merge', {
          metadata: { resourceVersion: claim.pvc.metadata.resourceVersion, annotations: { [selectedNodeAnnotation]: node } },
        });
      } catch (err) {
        // Gone or changed meanwhile: the change requeues the VMI, which is placed again on fresh state.
        if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return false;
        throw err;
      }
      if (claim.local) this.assumedClaims.set(claim.pvc.metadata.uid ?? '', { node, bytes: claim.bytes });
    }
    return true;
  }

  /** What bound, unfinished VMIs (and assumed bindings) take on each node. */
  private usage(): Map<string, Resources> {
    const used = new Map<string, Resources>();
    const charge = (node: string, r: Resources): void => {
      used.set(node, add(used.get(node) ?? zero, r));
    };
    for (const vmi of this.vmis.list()) {
      const node = nodeNameOf(vmi);
      if (node !== undefined && !isFinal(vmi)) charge(node, vmiRequests(vmi, this.requestOptions));
    }
    for (const [key, a] of this.assumed) {
      const cached = this.vmis.get(key);
      if (cached !== undefined && nodeNameOf(cached) === undefined) charge(a.node, a.request);
    }
    return used;
  }

  private async bind(vmi: KObject, placed: { node: string; request: Resources; needs: VolumeNeeds }, log: Logger): Promise<void> {
    const { node, request } = placed;
    if (!(await this.sendClaims(placed.needs, node))) return;
    const conditions = removeCondition(conditionsOf(vmi), conditionTypes.podScheduled);
    const status = { ...recordAt(vmi, 'status'), nodeName: node, phase: vmiPhases.scheduled, conditions, phaseTransitionTimestamps: this.transitions(vmi, vmiPhases.scheduled) };
    // KubeVirt's label for selecting VMIs by node (e.g. `kubectl get vmi -l kubevirt.io/nodeName=N`); only components may set it.
    if (!(await this.writeStatus(vmi, status, { [nodeNameLabel]: node }))) return;
    this.assumed.set(`${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`, { uid: vmi.metadata.uid ?? '', node, request });
    log.info('VMI scheduled', { node, cpuMillis: request.cpu, memoryBytes: request.memory });
    this.recorder.record(vmi, 'Normal', 'Scheduled', `Successfully assigned ${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''} to ${node}`);
  }

  private async markUnschedulable(vmi: KObject, message: string, log: Logger): Promise<void> {
    const before = conditionsOf(vmi);
    const condition = { type: conditionTypes.podScheduled, status: 'False', reason: 'Unschedulable', message, lastProbeTime: null, lastTransitionTime: timestamp(this.now()) };
    const conditions = setCondition(before, condition);
    const unchanged = findCondition(before, conditionTypes.podScheduled)?.message === message && findCondition(before, conditionTypes.podScheduled)?.status === 'False';
    if (unchanged && vmiPhase(vmi) === vmiPhases.scheduling) return;
    if (!(await this.writeStatus(vmi, { ...recordAt(vmi, 'status'), phase: vmiPhases.scheduling, conditions, phaseTransitionTimestamps: this.transitions(vmi, vmiPhases.scheduling) }))) return;
    log.info('VMI unschedulable', { message });
    this.recorder.record(vmi, 'Warning', 'FailedScheduling', message);
  }

  /** The phase history with `phase` appended, unless it is already the latest. */
  private transitions(vmi: KObject, phase: string): unknown[] {
    const history = arrayAt(vmi, 'status', 'phaseTransitionTimestamps');
    const last = history[history.length - 1];
    if (typeof last === 'object' && last !== null && 'phase' in last && last.phase === phase) return history;
    return [...history, { phase, phaseTransitionTimestamp: timestamp(this.now()) }];
  }

  /** VMIs have no status subresource: a merge patch pinned to the resourceVersion read. False when the VMI is gone. */
  private async writeStatus(vmi: KObject, status: Record<string, unknown>, labels?: Record<string, string>): Promise<boolean> {
    try {
      await this.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', {
        metadata: { resourceVersion: vmi.metadata.resourceVersion, ...(labels === undefined ? {} : { labels }) },
        status,
      });
      return true;
    } catch (err) {
      // Gone meanwhile: nothing to schedule. Conflicts retry through the queue on fresh state.
      if (err instanceof ApiError && err.reason === 'NotFound') return false;
      throw err;
    }
  }
}
