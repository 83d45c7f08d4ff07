/**
 * The live migration controller (KubeVirt's migration controller and the
 * two virt-handlers' migration steps, driven from one place): for each
 * VirtualMachineInstanceMigration, one level-based pass takes the next
 * step of KubeVirt's phases — checks (Pending), a target node by the
 * scheduler's filters without the source (Scheduling → Scheduled), the
 * target agent's waiting QEMU (PreparingTarget → TargetReady), the source
 * agent's mirror and migration, followed by polling (Running), then the
 * hand-over (Succeeded) or the roll-back (Failed) — and keeps the VMI's
 * `status.migrationState` and `LiveMigratable` condition true. A deleted
 * migration that has not switched over is cancelled: the guest runs on at
 * the source.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import type { AgentDirectory, AgentHandle, MigrationAnswer, MigrationCommand, MigrationTarget } from '../../agent/index.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { place, vmiRequests, add, zero } from '../../scheduler/index.js';
import type { Resources } from '../../scheduler/index.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { conditionsOf, isFinal, isMarkedForDeletion, logFieldsOf, nodeNameOf, setCondition, timestamp, vmiPhase } from '../vmi/index.js';
import { liveMigratableCondition, migratabilityOf, migrationMethodOf } from '../../api/kinds/vmi-migratable.js';
import { bandwidthOf, downtimeAnnotation, isFinished, keptTarget, migrationFinalizer, migrationStateOf, phaseOf, policyFor, targetAnnotation, totalTimeAnnotation } from './model.js';
import type { MigrationPhase } from './model.js';

/** How often a running migration is polled (KubeVirt's monitor polls every 400 ms): the guest waits paused on the target for up to one poll after the stream ends, so it is short. */
const pollMs = 100;

/** What the scheduler adds per VMI for QEMU itself (its default). */
const requestOptions = { cpuAllocationRatio: 10, memoryOverheadBytes: 32 * 2 ** 20 };

const migrationPolicies = { group: 'migrations.kubevirt.io', version: 'v1alpha1', plural: 'migrationpolicies', namespaced: false };

/** Runs VirtualMachineInstanceMigrations; see the module comment. */
export class MigrationController {
  private readonly migrations: Informer;
  private readonly vmis: Informer;
  private readonly nodes: Informer;
  private readonly policies: Informer;
  private readonly namespaces: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  /** The migration as our last status write returned it, by uid: fresher than the cache until the watch catches up. */
  private readonly written = new Map<string, KObject>();

  constructor(
    private readonly client: Client,
    private readonly agents: AgentDirectory,
    private readonly logger: Logger,
  ) {
    this.recorder = new EventRecorder(client, 'migration-controller', logger);
    const queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 4, baseDelayMs: 200, maxDelayMs: 10_000 });
    this.loop = new ControllerLoop(queue, this.recorder);
    this.migrations = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstanceMigrations, logger));
    this.vmis = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.nodes = this.loop.informer(undefined, () => new Informer(client, resources.nodes, logger));
    this.policies = this.loop.informer(undefined, () => new Informer(client, migrationPolicies, logger));
    this.namespaces = this.loop.informer(undefined, () => new Informer(client, resources.namespaces, logger));
    this.migrations.onChange((key) => { queue.add(`migration/${key}`); });
    this.vmis.onChange((key) => {
      queue.add(`vmi/${key}`);
      for (const m of this.migrations.list()) if (`${m.metadata.namespace ?? ''}/${stringAt(m, 'spec', 'vmiName') ?? ''}` === key) queue.add(`migration/${m.metadata.namespace ?? ''}/${m.metadata.name ?? ''}`);
    });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('migration controller started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const slash = key.indexOf('/');
    const kind = key.slice(0, slash);
    const rest = key.slice(slash + 1);
    if (kind === 'vmi') {
      await this.syncMigratable(rest);
      return {};
    }
    const cached = this.migrations.get(rest);
    if (cached === undefined) return {};
    const written = this.written.get(cached.metadata.uid ?? '');
    const migration = written !== undefined && revision(written) > revision(cached) ? written : cached;
    if (migration === cached) this.written.delete(cached.metadata.uid ?? '');
    return this.syncMigration(migration);
  }

  /** The VMI's `LiveMigratable` condition, on VMIs that run. */
  private async syncMigratable(key: string): Promise<void> {
    const vmi = this.vmis.get(key);
    if (vmi === undefined || vmiPhase(vmi) !== 'Running') return;
    const verdict = migratabilityOf(vmi);
    const condition = verdict.migratable
      ? { type: liveMigratableCondition, status: 'True', lastProbeTime: null, lastTransitionTime: null }
      : { type: liveMigratableCondition, status: 'False', reason: verdict.reason, message: verdict.message, lastProbeTime: null, lastTransitionTime: null };
    const before = conditionsOf(vmi);
    const after = setCondition(before, { ...condition, lastTransitionTime: timestamp(Date.now()) });
    if (JSON.stringify(before) === JSON.stringify(after)) return;
    // Pinned to the version read: the agent writes the other conditions.
    await this.patchVmi(vmi, { metadata: { resourceVersion: vmi.metadata.resourceVersion }, status: { conditions: after } });
  }

  private async syncMigration(migration: KObject): Promise<ReconcileResult> {
    const vmi = this.vmis.get(`${migration.metadata.namespace ?? ''}/${stringAt(migration, 'spec', 'vmiName') ?? ''}`);
    if (migration.metadata.deletionTimestamp !== undefined) return this.cancel(migration, vmi);
    if (isFinished(migration)) return {};
    if (!(migration.metadata.finalizers ?? []).includes(migrationFinalizer)) {
      await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', {
        metadata: { resourceVersion: migration.metadata.resourceVersion, finalizers: [...(migration.metadata.finalizers ?? []), migrationFinalizer] },
      });
      return {};
    }
    const phase = phaseOf(migration);
    const log = this.logger.child({ ...logFieldsOf(migration), vmi: stringAt(migration, 'spec', 'vmiName') });
    try {
      switch (phase) {
        case '':
          await this.setPhase(migration, 'Pending');
          return {};
        case 'Pending':
          return await this.pending(migration, vmi);
        case 'Scheduling':
          return await this.schedule(migration, this.requireVmi(vmi));
        case 'Scheduled':
        case 'PreparingTarget':
          return await this.prepareTarget(migration, this.requireVmi(vmi), log);
        case 'TargetReady':
          return await this.startSource(migration, this.requireVmi(vmi));
        case 'Running':
          return await this.follow(migration, this.requireVmi(vmi), log);
        default:
          return {};
      }
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'Conflict' && err.message.includes('the object has been modified')) throw err;
      const message = err instanceof Error ? err.message : String(err);
      log.warn('migration failed', { phase, message });
      await this.fail(migration, vmi, message);
      return {};
    }
  }

  /** The checks before anything is made: the VMI exists and runs (else the migration waits), can migrate, and has no other migration in flight. */
  private async pending(migration: KObject, vmi: KObject | undefined): Promise<ReconcileResult> {
    const name = stringAt(migration, 'spec', 'vmiName') ?? '';
    if (vmi === undefined) return this.fail(migration, vmi, `Cannot migrate VMI "${name}": it does not exist in namespace ${migration.metadata.namespace ?? ''}`);
    if (isFinal(vmi)) return this.fail(migration, vmi, `Cannot migrate VMI "${name}": it has finished (phase ${vmiPhase(vmi)}); start it again to migrate it`);
    // Admitted before the VMI runs (as KubeVirt does): Pending until it does; its changes requeue this migration.
    if (vmiPhase(vmi) !== 'Running' || nodeNameOf(vmi) === undefined) return {};
    const verdict = migratabilityOf(vmi);
    if (!verdict.migratable) return this.fail(migration, vmi, `Cannot migrate VMI, Reason: ${verdict.reason}, Message: ${verdict.message}`);
    const earlier = this.migrations.list().find((m) => m.metadata.uid !== migration.metadata.uid && m.metadata.namespace === migration.metadata.namespace && stringAt(m, 'spec', 'vmiName') === name && !isFinished(m) && phaseOf(m) !== '' && phaseOf(m) !== 'Pending');
    if (earlier !== undefined) return this.fail(migration, vmi, `in-flight migration detected. Active migration job (${earlier.metadata.uid ?? ''}) is currently already in progress for VMI ${name}.`);
    await this.setPhase(migration, 'Scheduling');
    return {};
  }

  /** A target by the scheduler's filters, the source left out; the VMI's migrationState begins. */
  private async schedule(migration: KObject, vmi: KObject): Promise<ReconcileResult> {
    const source = nodeNameOf(vmi) ?? '';
    const candidates = this.nodes.list().filter((n) => n.metadata.name !== source);
    const placement = place(vmi, vmiRequests(vmi, requestOptions), candidates, this.usage());
    if ('unschedulable' in placement) {
      this.recorder.record(migration, 'Warning', 'FailedScheduling', `no target node for the migration: ${placement.unschedulable}`);
      // Like a target pod that stays Pending: tried again as nodes change.
      return { requeueAfter: 5_000 };
    }
    const policy = policyFor(vmi, this.namespaces.get(migration.metadata.namespace ?? ''), this.policies.list());
    const state = {
      migrationUid: migration.metadata.uid,
      sourceNode: source,
      targetNode: placement.node,
      mode: 'PreCopy',
      ...(policy === undefined ? {} : { migrationPolicyName: policy.metadata.name }),
    };
    await this.patchVmi(vmi, { status: { migrationState: state, migrationMethod: migrationMethodOf(vmi) } });
    await this.setPhase(migration, 'Scheduled', { migrationState: state });
    this.recorder.record(migration, 'Normal', 'SuccessfulCreate', `target node ${placement.node} chosen for the migration from ${source}`);
    return {};
  }

  /** The target agent starts the waiting QEMU and exports its disks; kept on the migration for the next steps. */
  private async prepareTarget(migration: KObject, vmi: KObject, log: Logger): Promise<ReconcileResult> {
    const state = this.requireState(migration, vmi);
    const targetNode = stringAt(state, 'targetNode') ?? '';
    const preparing = phaseOf(migration) === 'Scheduled' ? await this.setPhase(migration, 'PreparingTarget', { migrationState: state }) : migration;
    const address = this.nodeAddress(targetNode);
    const answer = await this.step(targetNode, vmi, { step: 'prepare-target', migrationUid: migration.metadata.uid ?? '', vmiUid: vmi.metadata.uid ?? '', address });
    const target = answer.target;
    if (target === undefined) throw new Error(`the agent of ${targetNode} prepared no target`);
    log.info('migration target ready', { targetNode, ...target });
    const ready = { ...state, targetNodeAddress: target.address, targetDirectMigrationNodePorts: { [String(target.migrationPort)]: 0, [String(target.nbdPort)]: 49153 }, targetNodeDomainDetected: true };
    await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations: { [targetAnnotation]: JSON.stringify(target) } } });
    await this.patchVmi(vmi, { status: { migrationState: ready } });
    await this.setPhase(preparing, 'TargetReady', { migrationState: ready });
    return {};
  }

  /** The source mirrors the disks and migrates, in the background; `Running` from here. */
  private async startSource(migration: KObject, vmi: KObject): Promise<ReconcileResult> {
    const state = this.requireState(migration, vmi);
    const target = this.requireTarget(migration);
    const policy = policyFor(vmi, this.namespaces.get(migration.metadata.namespace ?? ''), this.policies.list());
    const bandwidth = bandwidthOf(policy);
    await this.step(nodeNameOf(vmi) ?? '', vmi, { step: 'start-source', migrationUid: migration.metadata.uid ?? '', target, ...(bandwidth === undefined ? {} : { bandwidthBytesPerSecond: bandwidth }) });
    const running = { ...state, startTimestamp: timestamp(Date.now()) };
    await this.patchVmi(vmi, { status: { migrationState: running } });
    await this.setPhase(migration, 'Running', { migrationState: running });
    return { requeueAfter: pollMs };
  }

  /** Polls the source; on completion hands the guest over, on failure rolls back. */
  private async follow(migration: KObject, vmi: KObject, log: Logger): Promise<ReconcileResult> {
    const state = this.requireState(migration, vmi);
    const source = stringAt(state, 'sourceNode') ?? '';
    const targetNode = stringAt(state, 'targetNode') ?? '';
    const uid = migration.metadata.uid ?? '';
    const progress = (await this.step(source, vmi, { step: 'source-status', migrationUid: uid })).source;
    if (progress === undefined) throw new Error(`the agent of ${source} did not say where the migration is`);
    if (progress.state === 'mirroring' || progress.state === 'migrating') return { requeueAfter: pollMs };
    if (progress.state !== 'completed') throw new Error(progress.message ?? `the migration ended ${progress.state} on the source`);
    await this.step(targetNode, vmi, { step: 'finish-target', migrationUid: uid });
    const done = { ...state, completed: true, endTimestamp: timestamp(Date.now()), targetNodeDomainReadyTimestamp: timestamp(Date.now()) };
    // From here the target's agent holds the guest: the VMI is bound there.
    await this.patchVmi(vmi, { metadata: { labels: { 'kubevirt.io/nodeName': targetNode } }, status: { nodeName: targetNode, migrationState: done } });
    const annotations: Record<string, string> = {};
    if (progress.downtimeMs !== undefined) annotations[downtimeAnnotation] = String(progress.downtimeMs);
    if (progress.totalTimeMs !== undefined) annotations[totalTimeAnnotation] = String(progress.totalTimeMs);
    await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations } });
    await this.setPhase(migration, 'Succeeded', { migrationState: done });
    // After Succeeded, as KubeVirt cleans up the source pod after the guest runs on the target: the source's clean-up (QEMU's exit, its cgroup) is not the migration's time.
    await this.step(source, vmi, { step: 'finish-source', migrationUid: uid }).catch((err: unknown) => { log.warn('the source did not clean up after the migration', { err }); });
    log.info('migration succeeded', { source, targetNode, downtimeMs: progress.downtimeMs, totalTimeMs: progress.totalTimeMs });
    this.recorder.record(migration, 'Normal', 'SuccessfulMigration', `Source node reported migration succeeded (downtime ${progress.downtimeMs ?? '?'} ms)`);
    return {};
  }

  /** A deleted migration: cancelled unless it already ended; then its finalizer goes. */
  private async cancel(migration: KObject, vmi: KObject | undefined): Promise<ReconcileResult> {
    if (!(migration.metadata.finalizers ?? []).includes(migrationFinalizer)) return {};
    const phase = phaseOf(migration);
    if (!isFinished(migration) && phase !== '' && phase !== 'Pending' && vmi !== undefined) {
      const state = migrationStateOf(vmi, migration.metadata.uid ?? '');
      const uid = migration.metadata.uid ?? '';
      const source = stringAt(state, 'sourceNode');
      const target = stringAt(state, 'targetNode');
      if (source !== undefined && phase === 'Running') await this.step(source, vmi, { step: 'cancel-source', migrationUid: uid });
      if (target !== undefined) await this.step(target, vmi, { step: 'abort-target', migrationUid: uid });
      if (state !== undefined) await this.patchVmi(vmi, { status: { migrationState: { ...state, abortRequested: true, abortStatus: 'Succeeded', failed: true, completed: false, endTimestamp: timestamp(Date.now()) } } });
      await this.setPhase(migration, 'Failed', { migrationState: { ...state, abortStatus: 'Succeeded', failed: true } }).catch(() => migration);
      this.recorder.record(vmi, 'Normal', 'MigrationAborted', 'the migration was cancelled; the guest runs on at the source');
    }
    const finalizers = (migration.metadata.finalizers ?? []).filter((f) => f !== migrationFinalizer);
    await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { finalizers } }).catch((err: unknown) => {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    });
    return {};
  }

  /** Fails the migration with `message`: whatever the agents made goes, the guest runs on at the source. */
  private async fail(migration: KObject, vmi: KObject | undefined, message: string): Promise<ReconcileResult> {
    const uid = migration.metadata.uid ?? '';
    const state = vmi === undefined ? undefined : migrationStateOf(vmi, uid);
    const source = stringAt(state, 'sourceNode');
    const target = stringAt(state, 'targetNode');
    if (vmi !== undefined && source !== undefined && phaseOf(migration) === 'Running') await this.step(source, vmi, { step: 'cancel-source', migrationUid: uid }).catch(() => undefined);
    if (vmi !== undefined && target !== undefined) await this.step(target, vmi, { step: 'abort-target', migrationUid: uid }).catch(() => undefined);
    const failed = state === undefined ? undefined : { ...state, failed: true, completed: false, endTimestamp: timestamp(Date.now()), failureReason: message };
    if (vmi !== undefined && failed !== undefined) await this.patchVmi(vmi, { status: { migrationState: failed } });
    await this.setPhase(migration, 'Failed', {
      ...(failed === undefined ? {} : { migrationState: failed }),
      conditions: [{ type: 'Failed', status: 'True', reason: 'MigrationFailed', message, lastProbeTime: null, lastTransitionTime: timestamp(Date.now()) }],
    });
    this.recorder.record(migration, 'Warning', 'FailedMigration', message);
    return {};
  }

  private async step(node: string, vmi: KObject, command: MigrationCommand): Promise<MigrationAnswer> {
    const agent: AgentHandle | undefined = this.agents.forNode(node);
    if (agent === undefined) throw new Error(`node ${node} has no agent this server can reach`);
    return agent.migration(vmi.metadata.namespace ?? '', vmi.metadata.name ?? '', command);
  }

  private requireVmi(vmi: KObject | undefined): KObject {
    if (vmi === undefined) throw new Error('the VMI is gone');
    if (isFinal(vmi)) throw new Error(`the VMI ended (${vmiPhase(vmi)}) during the migration`);
    // The source agent leaves a migrating VMI alone: a delete is carried out once the migration is given up.
    if (isMarkedForDeletion(vmi)) throw new Error('the VMI is being deleted');
    return vmi;
  }

  private requireState(migration: KObject, vmi: KObject): Record<string, unknown> {
    const state = migrationStateOf(vmi, migration.metadata.uid ?? '') ?? recordAt(migration, 'status', 'migrationState');
    if (state === undefined) throw new Error('the VMI has no migrationState for this migration (another migration replaced it?)');
    return state;
  }

  private requireTarget(migration: KObject): MigrationTarget {
    const target = keptTarget(migration);
    if (target === undefined) throw new Error(`the migration has no ${targetAnnotation} annotation: its target was not prepared`);
    return target;
  }

  /** The target node's InternalIP (the address its agent publishes), where QEMU listens. */
  private nodeAddress(node: string): string {
    const addresses = (recordAt(this.nodes.get(node), 'status')?.addresses ?? []) as { type?: unknown; address?: unknown }[];
    const internal = Array.isArray(addresses) ? addresses.find((a) => a.type === 'InternalIP' && typeof a.address === 'string') : undefined;
    if (internal === undefined || typeof internal.address !== 'string') throw new Error(`node ${node} publishes no InternalIP address to migrate to`);
    return internal.address;
  }

  /** What unfinished VMIs take on each node. */
  private usage(): Map<string, Resources> {
    const used = new Map<string, Resources>();
    for (const vmi of this.vmis.list()) {
      const node = nodeNameOf(vmi);
      if (node !== undefined && !isFinal(vmi)) used.set(node, add(used.get(node) ?? zero, vmiRequests(vmi, requestOptions)));
    }
    return used;
  }

  /** Writes `phase` (and `fields`) to the migration's status; the migration as written, for a later phase in the same pass. */
  private async setPhase(migration: KObject, phase: MigrationPhase, fields: Record<string, unknown> = {}): Promise<KObject> {
    const transitions = Array.isArray(recordAt(migration, 'status')?.phaseTransitionTimestamps) ? (recordAt(migration, 'status')?.phaseTransitionTimestamps as unknown[]) : [];
    const updated = await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', {
      status: { ...fields, phase, phaseTransitionTimestamps: [...transitions, { phase, phaseTransitionTimestamp: timestamp(Date.now()) }] },
    }, { subresource: 'status' });
    this.written.set(updated.metadata.uid ?? '', updated);
    return updated;
  }

  private async patchVmi(vmi: KObject, body: Record<string, unknown>): Promise<void> {
    await this.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', body);
  }
}

function revision(obj: KObject): number {
  const rv = Number(obj.metadata.resourceVersion ?? '');
  return Number.isFinite(rv) ? rv : 0;
}
