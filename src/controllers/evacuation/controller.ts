/**
 * The evacuation controller (virt-controller's): live-migrates VMIs off a
 * node being drained. One level-based pass per node: the VMIs that
 * `vireo drain` marked with `status.evacuationNodeName` (or every VMI of a
 * node with the `kubevirt.io/drain` NoSchedule taint) and that migrate on
 * eviction get a VirtualMachineInstanceMigration named
 * `kubevirt-evacuation-…` with KubeVirt's `kubevirt.io/evacuationMigration`
 * annotation, one at a time per VMI; after a failed one the next waits out
 * a backoff (20 s, doubled per failure); a `LiveMigrate` VMI that cannot
 * migrate gets a Warning Event; the mark of a VMI that now runs elsewhere
 * is cleared. The plan is pure (`src/api/kinds/evacuation.ts`); the
 * migration controller runs the migrations (and will hold them to the
 * cluster's parallel limits).
 */
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { clusterKubeVirtOf } from '../../api/kinds/eviction.js';
import { evacuationMigrationAnnotation, evacuationMigrationPrefix, planEvacuation } from '../../api/kinds/evacuation.js';
import { stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { logFieldsOf } from '../vmi/index.js';

/** How long a migration this controller created may be missing from the cache before it is not waited for any more. */
const createdGraceMs = 30_000;

/** See the module comment. */
export class EvacuationController {
  private readonly nodes: Informer;
  private readonly vmis: Informer;
  private readonly migrations: Informer;
  private readonly kubevirts: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  /** Migrations created for a VMI (by uid) that the cache may not show yet: no second one meanwhile. */
  private readonly created = new Map<string, { name: string; atMs: number }>();

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
  ) {
    this.recorder = new EventRecorder(client, 'evacuation-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 2, baseDelayMs: 200, maxDelayMs: 10_000, objectOf: (key) => this.nodes.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.nodes = this.loop.informer(undefined, () => new Informer(client, resources.nodes, logger));
    this.vmis = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.migrations = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstanceMigrations, logger));
    this.kubevirts = this.loop.informer(undefined, () => new Informer(client, resources.kubeVirts, logger));
    this.nodes.onChange((key) => { this.queue.add(key); });
    // A VMI concerns the node it runs on and the node it is marked to leave.
    this.vmis.onChange((key) => { this.addNodesOf(this.vmis.get(key)); });
    this.migrations.onChange((key) => {
      const migration = this.migrations.get(key);
      const node = migration?.metadata.annotations?.[evacuationMigrationAnnotation];
      if (node !== undefined) this.queue.add(node);
      if (migration !== undefined) this.addNodesOf(this.vmis.get(`${migration.metadata.namespace ?? ''}/${stringAt(migration, 'spec', 'vmiName') ?? ''}`));
    });
    // The cluster's eviction strategy or drain taint key changed: every node may have work.
    this.kubevirts.onChange(() => { for (const node of this.nodes.list()) this.queue.add(node.metadata.name ?? ''); });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('evacuation controller started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private addNodesOf(vmi: KObject | undefined): void {
    for (const node of [stringAt(vmi, 'status', 'nodeName'), stringAt(vmi, 'status', 'evacuationNodeName')]) {
      if (node !== undefined && node !== '') this.queue.add(node);
    }
  }

  private async reconcile(name: string): Promise<ReconcileResult | undefined> {
    const node = this.nodes.get(name);
    if (node === undefined) return undefined;
    const migrations = this.migrations.list();
    this.forgetSeen(migrations);
    const nowMs = Date.now();
    const plan = planEvacuation(node, this.vmis.list(), migrations, { kubevirt: clusterKubeVirtOf(this.kubevirts.list()), nowMs });
    for (const vmi of plan.clearMark) await this.clearMark(vmi, name);
    for (const { vmi, reason, message } of plan.notMigratable) {
      this.recorder.record(vmi, 'Warning', 'FailedCreate', `VirtualMachineInstance is not migratable (${reason}: ${message}): it cannot be evacuated from node ${name}`);
    }
    for (const { vmi, failures, retryAtMs } of plan.backingOff) {
      this.recorder.record(vmi, 'Warning', 'MigrationBackoff', `${failures} evacuation migration(s) from node ${name} failed: the next one starts in ${Math.ceil((retryAtMs - nowMs) / 1000)} s`);
    }
    let failed: Error | undefined;
    for (const vmi of plan.migrate) {
      if (this.created.has(vmi.metadata.uid ?? '')) continue;
      try {
        await this.createMigration(vmi, name);
      } catch (err) {
        failed ??= err instanceof Error ? err : new Error(String(err));
      }
    }
    // Retried with the queue's backoff; the others were created meanwhile.
    if (failed !== undefined) throw failed;
    const retries = plan.backingOff.map((b) => b.retryAtMs - nowMs);
    return retries.length === 0 ? undefined : { requeueAfter: Math.max(100, Math.min(...retries) + 100) };
  }

  private async createMigration(vmi: KObject, node: string): Promise<void> {
    const log = this.logger.child(logFieldsOf(vmi));
    try {
      const created = await this.client.create(resources.virtualMachineInstanceMigrations, {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstanceMigration',
        metadata: { generateName: evacuationMigrationPrefix, namespace: vmi.metadata.namespace ?? '', annotations: { [evacuationMigrationAnnotation]: node } },
        spec: { vmiName: vmi.metadata.name ?? '' },
      });
      this.created.set(vmi.metadata.uid ?? '', { name: created.metadata.name ?? '', atMs: Date.now() });
      log.info('evacuation migration created', { node, migration: created.metadata.name });
      this.recorder.record(vmi, 'Normal', 'SuccessfulCreate', `Created Migration ${created.metadata.name ?? ''}`);
    } catch (err) {
      // Someone else's migration the cache has not shown yet: that one moves it.
      if (err instanceof ApiError && err.reason === 'BadRequest' && err.message.includes('in-flight migration detected')) return;
      this.recorder.record(vmi, 'Warning', 'FailedCreate', `Error creating a Migration: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
  }

  /** Clears a mark left on a VMI that runs on another node now; pinned to the version read, so a new mark is never lost. */
  private async clearMark(vmi: KObject, node: string): Promise<void> {
    try {
      await this.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', { metadata: { resourceVersion: vmi.metadata.resourceVersion }, status: { evacuationNodeName: null } });
      this.logger.info('evacuation done: the VMI left the node', { ...logFieldsOf(vmi), node, now: stringAt(vmi, 'status', 'nodeName') });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return;
      throw err;
    }
  }

  /** Drops what the cache shows now (or was never seen for a long while). */
  private forgetSeen(migrations: readonly KObject[]): void {
    const names = new Set(migrations.map((m) => m.metadata.name ?? ''));
    const nowMs = Date.now();
    for (const [uid, { name, atMs }] of this.created) {
      if (names.has(name) || nowMs - atMs > createdGraceMs) this.created.delete(uid);
    }
  }
}
