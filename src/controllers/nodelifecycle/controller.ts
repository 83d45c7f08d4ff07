/**
 * The node lifecycle controller (kube-controller-manager's, with
 * virt-controller's handling of an unresponsive virt-handler): watches the
 * Nodes and their Leases in `kube-node-lease`. A node whose Lease this
 * controller has not seen renewed for the grace period gets its conditions
 * `Unknown` (`NodeStatusUnknown`), the `node.kubernetes.io/unreachable`
 * taints (NoSchedule, NoExecute) and an Event; its VMIs that have not ended
 * go `Failed` with reason `NodeUnresponsive`, so that the VM controller
 * starts them again elsewhere as their run strategy says; a VMI of such a
 * node that is being deleted loses the agent's finalizer, which no agent
 * would release. Once the Lease is renewed again the taints go; the agent
 * posts Ready itself.
 *
 * Time is counted, as kube does, from when this controller observed the
 * Lease change (a monotonic clock of this process), never from the
 * agent's `renewTime`: the two hosts' clocks need not agree. A controller
 * that starts sees every Lease as just renewed. Each Node carries the grace
 * period in an annotation: its agent fences itself before it runs out
 * (src/agent/node-fence.ts).
 */
import { performance } from 'node:perf_hooks';
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { recordsAt, stringAt } from '../../api/kinds/read.js';
import { isFinal, isMarkedForDeletion, nodeNameOf } from '../../api/kinds/vm-state.js';
import { formatDuration, nodeMonitorGracePeriodAnnotation, nodeUnresponsiveReason, unreachableTaintKey } from '../../api/kinds/node-lifecycle.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { agentFinalizer } from '../../agent/index.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { timestamp } from '../vmi/index.js';

/** Where node Leases live. */
const leaseNamespace = 'kube-node-lease';

/** What the controller needs to know. */
export interface NodeLifecycleOptions {
  /** `--node-monitor-grace-period`, in ms. */
  gracePeriodMs: number;
  /** A monotonic clock in ms (tests); default `performance.now`. */
  now?: () => number;
}

/** When this controller last saw a node's Lease change. */
interface Observation {
  renewTime: string;
  observedAt: number;
}

/** See the module comment. */
export class NodeLifecycleController {
  private readonly nodes: Informer;
  private readonly leases: Informer;
  private readonly vmis: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  private readonly observed = new Map<string, Observation>();
  private readonly now: () => number;
  private readonly grace: string;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    private readonly options: NodeLifecycleOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.grace = formatDuration(options.gracePeriodMs);
    this.recorder = new EventRecorder(client, 'node-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 2, baseDelayMs: 200, maxDelayMs: 10_000, objectOf: (key) => this.nodes.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.nodes = this.loop.informer(undefined, () => new Informer(client, resources.nodes, logger));
    this.leases = this.loop.informer(undefined, () => new Informer(client, resources.leases, logger, { namespace: leaseNamespace }));
    this.vmis = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.nodes.onChange((key) => { this.queue.add(key); });
    // A Lease is named after its node: the change is the node's.
    this.leases.onChange((key) => { this.queue.add(key.slice(key.indexOf('/') + 1)); });
    // A VMI bound to (or deleted on) a dead node needs that node's pass.
    this.vmis.onChange((key) => {
      const vmi = this.vmis.get(key);
      const node = vmi === undefined ? undefined : nodeNameOf(vmi);
      if (node !== undefined) this.queue.add(node);
    });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('node lifecycle controller started', { nodeMonitorGracePeriod: this.grace });
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const node = this.nodes.get(name);
    if (node === undefined) {
      this.observed.delete(name);
      return undefined;
    }
    if (node.metadata.annotations?.[nodeMonitorGracePeriodAnnotation] !== this.grace) {
      await this.patchNode(name, { metadata: { annotations: { [nodeMonitorGracePeriodAnnotation]: this.grace } } });
    }
    const silentMs = this.silentMs(name);
    if (silentMs < this.options.gracePeriodMs) {
      await this.markReachable(node);
      // Checked again the moment the grace runs out, unless the Lease changes first.
      return { requeueAfter: Math.max(50, Math.ceil(this.options.gracePeriodMs - silentMs) + 50) };
    }
    await this.markUnreachable(node, silentMs);
    await this.failVmisOf(name);
    // VMIs bound to the node later (a scheduler that had not seen it yet) come through the VMI informer.
    return undefined;
  }

  /** How long since this controller saw `node`'s Lease change (since the controller's start for a Lease it has not seen change). */
  private silentMs(node: string): number {
    const lease = this.leases.get(`${leaseNamespace}/${node}`);
    const renewTime = lease === undefined ? '' : (stringAt(lease, 'spec', 'renewTime') ?? '');
    const seen = this.observed.get(node);
    if (seen === undefined || seen.renewTime !== renewTime) {
      this.observed.set(node, { renewTime, observedAt: this.now() });
      return 0;
    }
    return this.now() - seen.observedAt;
  }

  /** Conditions Unknown, the unreachable taints and an Event; nothing when the node is marked already. */
  private async markUnreachable(node: KObject, silentMs: number): Promise<void> {
    const name = node.metadata.name ?? '';
    const conditions = recordsAt(node, 'status', 'conditions');
    const ready = conditions.find((c) => c.type === 'Ready');
    if (ready?.status !== 'Unknown') {
      const stamp = timestamp(Date.now());
      const message = `The vireo agent of ${name} stopped renewing its Lease: not heard from for ${(silentMs / 1000).toFixed(1)} s (node-monitor-grace-period ${this.grace}). Kubelet stopped posting node status.`;
      const next = (conditions.length === 0 ? [{ type: 'Ready' }] : conditions).map((c) => ({ ...c, status: 'Unknown', reason: 'NodeStatusUnknown', message, lastTransitionTime: stamp }));
      await this.patchNode(name, { status: { conditions: next } }, 'status');
      this.logger.warn('node is not ready: its agent stopped renewing its Lease', { node: name, silentMs: Math.round(silentMs), nodeMonitorGracePeriod: this.grace });
      this.recorder.record(node, 'Normal', 'NodeNotReady', `Node ${name} status is now: NodeNotReady`);
    }
    const taints = recordsAt(node, 'spec', 'taints');
    const missing = ['NoSchedule', 'NoExecute'].filter((effect) => !taints.some((t) => t.key === unreachableTaintKey && t.effect === effect));
    if (missing.length > 0) {
      const added = missing.map((effect) => ({ key: unreachableTaintKey, effect, ...(effect === 'NoExecute' ? { timeAdded: timestamp(Date.now()) } : {}) }));
      await this.patchNode(name, { metadata: { resourceVersion: node.metadata.resourceVersion }, spec: { taints: [...taints, ...added] } });
    }
  }

  /** The unreachable taints go once the Lease is renewed again (the agent posts Ready itself). */
  private async markReachable(node: KObject): Promise<void> {
    const taints = recordsAt(node, 'spec', 'taints');
    const kept = taints.filter((t) => t.key !== unreachableTaintKey);
    if (kept.length === taints.length) return;
    await this.patchNode(node.metadata.name ?? '', { metadata: { resourceVersion: node.metadata.resourceVersion }, spec: { taints: kept } });
    this.logger.info('node renews its Lease again: unreachable taints removed', { node: node.metadata.name });
    this.recorder.record(node, 'Normal', 'NodeReachable', `Node ${node.metadata.name ?? ''} renews its Lease again`);
  }

  /**
   * The VMIs of a dead node: those not ended go Failed (NodeUnresponsive);
   * those being deleted lose the agent's finalizer. Safe because the agent,
   * if it still lives, killed its guests before the grace period ran out
   * (self-fencing), and one that comes back cleans up what is left of them
   * without starting anything.
   */
  private async failVmisOf(node: string): Promise<void> {
    for (const vmi of this.vmis.list()) {
      if (nodeNameOf(vmi) !== node) continue;
      const namespace = vmi.metadata.namespace;
      const name = vmi.metadata.name ?? '';
      try {
        if (!isFinal(vmi)) {
          const stamp = timestamp(Date.now());
          const message = `the agent of node ${node} stopped renewing its Lease for longer than the node-monitor-grace-period (${this.grace}): the VMI is marked Failed so that it can run elsewhere`;
          const conditions = recordsAt(vmi, 'status', 'conditions').filter((c) => c.type !== 'Ready' && c.type !== 'AgentConnected');
          const transitions = recordsAt(vmi, 'status', 'phaseTransitionTimestamps');
          await this.client.patch(resources.virtualMachineInstances, namespace, name, 'merge', {
            metadata: { resourceVersion: vmi.metadata.resourceVersion },
            status: {
              phase: 'Failed',
              reason: nodeUnresponsiveReason,
              conditions: [...conditions, { type: 'Ready', status: 'False', reason: nodeUnresponsiveReason, message, lastProbeTime: null, lastTransitionTime: stamp }],
              phaseTransitionTimestamps: [...transitions, { phase: 'Failed', phaseTransitionTimestamp: stamp }],
            },
          });
          this.logger.warn('VMI marked Failed: its node is unresponsive', { node, namespace, name, uid: vmi.metadata.uid });
          this.recorder.record(vmi, 'Warning', nodeUnresponsiveReason, message);
        } else if (isMarkedForDeletion(vmi) && (vmi.metadata.finalizers ?? []).includes(agentFinalizer)) {
          const finalizers = (vmi.metadata.finalizers ?? []).filter((f) => f !== agentFinalizer);
          await this.client.patch(resources.virtualMachineInstances, namespace, name, 'merge', { metadata: { resourceVersion: vmi.metadata.resourceVersion, finalizers } });
          this.logger.info('released the agent finalizer of a VMI on an unresponsive node', { node, namespace, name, uid: vmi.metadata.uid });
        }
      } catch (err) {
        // Changed meanwhile: the informer brings the new version and another pass.
        if (err instanceof ApiError && (err.reason === 'Conflict' || err.reason === 'NotFound')) continue;
        throw err;
      }
    }
  }

  private async patchNode(name: string, body: Record<string, unknown>, subresource?: string): Promise<void> {
    try {
      await this.client.patch(resources.nodes, undefined, name, 'merge', body, subresource === undefined ? {} : { subresource });
    } catch (err) {
      // Gone, or changed meanwhile: the informer brings the next pass.
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return;
      throw err;
    }
  }
}
