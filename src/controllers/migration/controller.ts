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
 * the source. The settings (`settings.ts`) are resolved at scheduling; the
 * cluster's parallel limits (`limits.ts`) hold migrations in Pending.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import type { AgentDirectory, AgentHandle, MigrationAnswer, MigrationCommand, MigrationTarget, MigrationTls } from '../../agent/index.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import type { CertificateIssuer } from '../../net/certificate-issuer.js';
import { migrationCredentials } from './tls.js';
import { place, vmiRequests, add, zero } from '../../scheduler/index.js';
import type { Resources } from '../../scheduler/index.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { conditionsOf, isFinal, isMarkedForDeletion, logFieldsOf, nodeNameOf, setCondition, timestamp, vmiPhase } from '../vmi/index.js';
import { liveMigratableCondition, migrationMethodOf } from '../../api/kinds/vmi-migratable.js';
import type { ClaimLookup } from '../../api/kinds/vmi-claims-migratable.js';
import { claimNamesOf } from '../../storage/local/index.js';
import { copyRoomShortage, liveMigratabilityOf, moveClaimVolumes } from './claims.js';
import { downtimeAnnotation, isFinished, keptTarget, migrationFinalizer, migrationStateOf, phaseOf, targetAnnotation, totalTimeAnnotation } from './model.js';
import type { MigrationPhase } from './model.js';
import { cleanupWaitMs, sourceCleanupAnnotation, sourceSilenceLimitMs, within } from './faults.js';
import { slotVerdict } from './limits.js';
import type { SlotHolder, SlotRequest, SlotVerdict } from './limits.js';
import { recordedSettings, resolvedSettingsState, sourceSettingsOf } from './settings.js';
import { clusterKubeVirtOf, clusterMigrationConfigurationOf } from '../../api/kinds/migration-config.js';
import type { MigrationAnswer as AgentAnswer } from '../../agent/index.js';

/**
 * How often a running migration is polled (KubeVirt's monitor polls every
 * 400 ms): the guest waits paused on the target for up to one poll after
 * the stream ends, so it is as short as the source agent's own QMP poll
 * (a poll is one small request to the agent); at 100 ms it added ~50 ms to
 * every migration and to the guest's real downtime (bench:migration).
 */
const pollMs = 20;

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
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly snapshots: Informer;
  private readonly kubevirts: Informer;
  /** The source's TLS credentials, issued with the target's, until startSource takes them (undefined: TLS is off). */
  private readonly sourceCredentials = new Map<string, MigrationTls | undefined>();
  private readonly loop: ControllerLoop;
  /** Migrations this controller let past Pending (uid → source node), until the cache shows them so: the slots they hold. */
  private readonly starting = new Map<string, string>();
  private readonly recorder: EventRecorder;
  /** The migration as our last status write returned it, by uid: fresher than the cache until the watch catches up. */
  private readonly written = new Map<string, KObject>();
  /** When a running migration's source agent first did not answer, by migration uid. */
  private readonly sourceSilentSince = new Map<string, number>();

  constructor(
    private readonly client: Client,
    private readonly agents: AgentDirectory,
    private readonly logger: Logger,
    /** Issues the migrations' TLS certificates from the cluster CA; without it, only migrations with TLS disabled run. */
    private readonly certificates?: CertificateIssuer,
  ) {
    this.recorder = new EventRecorder(client, 'migration-controller', logger);
    const queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 4, baseDelayMs: 200, maxDelayMs: 10_000, objectOf: (key) => (key.startsWith('vmi/') ? this.vmis.get(key.slice('vmi/'.length)) : this.migrations.get(key.slice(key.indexOf('/') + 1))) });
    this.loop = new ControllerLoop(queue, this.recorder);
    this.migrations = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstanceMigrations, logger));
    this.vmis = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.nodes = this.loop.informer(undefined, () => new Informer(client, resources.nodes, logger));
    this.policies = this.loop.informer(undefined, () => new Informer(client, migrationPolicies, logger));
    this.namespaces = this.loop.informer(undefined, () => new Informer(client, resources.namespaces, logger));
    this.claims = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumeClaims, logger));
    this.volumes = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumes, logger));
    this.snapshots = this.loop.informer(undefined, () => new Informer(client, resources.volumeSnapshots, logger));
    // A claim's state, its volume's, its snapshots' and the other VMIs using it decide whether a VMI with claims can migrate.
    const requeueClaimUsers = (): void => { for (const vmi of this.vmis.list()) if (claimNamesOf(vmi).length > 0) queue.add(`vmi/${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`); };
    this.claims.onChange(requeueClaimUsers);
    this.volumes.onChange(requeueClaimUsers);
    this.snapshots.onChange(requeueClaimUsers);
    this.kubevirts = this.loop.informer(undefined, () => new Informer(client, resources.kubeVirts, logger));
    const queueWaiting = (): void => {
      for (const m of this.migrations.list()) if (phaseOf(m) === 'Pending') queue.add(`migration/${m.metadata.namespace ?? ''}/${m.metadata.name ?? ''}`);
    };
    // A migration that ends frees a slot, a changed KubeVirt CR may change the limits: the waiting ones look again.
    this.migrations.onChange((key) => { queue.add(`migration/${key}`); queueWaiting(); });
    this.kubevirts.onChange(() => { queueWaiting(); });
    this.vmis.onChange((key) => {
      queue.add(`vmi/${key}`);
      const changed = this.vmis.get(key);
      if (changed === undefined || claimNamesOf(changed).length > 0) requeueClaimUsers();
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
    const migration = this.newest(cached);
    if (migration === cached) this.written.delete(cached.metadata.uid ?? '');
    return this.syncMigration(migration);
  }

  /** `migration`, or what this controller wrote of it since, if that is newer. */
  private newest(migration: KObject): KObject {
    const written = this.written.get(migration.metadata.uid ?? '');
    return written !== undefined && revision(written) > revision(migration) ? written : migration;
  }

  /** The migrations past Pending and not ended (with those this controller just started), each with the node its guest leaves. */
  private inFlight(): SlotHolder[] {
    const holders = new Map<string, SlotHolder>();
    const seen = new Set<string>();
    for (const m of this.migrations.list()) {
      const uid = m.metadata.uid ?? '';
      seen.add(uid);
      const phase = phaseOf(m);
      if (phase === '' || phase === 'Pending' || isFinished(m)) {
        if (isFinished(m)) this.starting.delete(uid);
        if (!this.starting.has(uid)) continue;
      } else {
        this.starting.delete(uid);
      }
      const vmi = this.vmis.get(`${m.metadata.namespace ?? ''}/${stringAt(m, 'spec', 'vmiName') ?? ''}`);
      const sourceNode = stringAt(m, 'status', 'migrationState', 'sourceNode') ?? this.starting.get(uid) ?? (vmi === undefined ? '' : nodeNameOf(vmi) ?? '');
      holders.set(uid, { uid, sourceNode });
    }
    for (const uid of [...this.starting.keys()]) if (!seen.has(uid)) this.starting.delete(uid);
    return [...holders.values()];
  }

  /**
   * Whether the cluster's parallel limits let `migration` (its guest on
   * `sourceNode`) start now; the slot is taken before this returns (no
   * await between the count and the claim), so concurrent passes never
   * overshoot.
   */
  private takeSlot(migration: KObject, sourceNode: string): SlotVerdict {
    const config = clusterMigrationConfigurationOf(clusterKubeVirtOf(this.kubevirts.list()));
    const inFlight = this.inFlight();
    const request = (m: KObject, node: string): SlotRequest => ({ uid: m.metadata.uid ?? '', sourceNode: node, name: m.metadata.name ?? '', creationTimestamp: m.metadata.creationTimestamp ?? '' });
    const waiting: SlotRequest[] = [];
    for (const m of this.migrations.list()) {
      if (phaseOf(m) !== 'Pending' || m.metadata.deletionTimestamp !== undefined || this.starting.has(m.metadata.uid ?? '')) continue;
      const vmi = this.vmis.get(`${m.metadata.namespace ?? ''}/${stringAt(m, 'spec', 'vmiName') ?? ''}`);
      const node = vmi === undefined ? undefined : nodeNameOf(vmi);
      // Only those ready to go queue for a slot: a migration of a VMI that does not run yet holds no one back.
      if (vmi !== undefined && node !== undefined && vmiPhase(vmi) === 'Running') waiting.push(request(m, node));
    }
    const verdict = slotVerdict(request(migration, sourceNode), inFlight, waiting, { perCluster: config.parallelMigrationsPerCluster, perSourceNode: config.parallelOutboundMigrationsPerNode });
    if (verdict.start) this.starting.set(migration.metadata.uid ?? '', sourceNode);
    return verdict;
  }

  /** The VMI's `LiveMigratable` condition, on VMIs that run. */
  private async syncMigratable(key: string): Promise<void> {
    const vmi = this.vmis.get(key);
    if (vmi === undefined || vmiPhase(vmi) !== 'Running') return;
    const verdict = liveMigratabilityOf(vmi, this.claimLookup());
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
    if (migration.metadata.deletionTimestamp !== undefined) {
      const postCopy = vmi !== undefined && !isFinished(migration) && stringAt(migrationStateOf(vmi, migration.metadata.uid ?? ''), 'mode') === 'PostCopy';
      if (!postCopy) return this.cancel(migration, vmi);
      await this.refuseCancelInPostCopy(migration, vmi);
    }
    if (isFinished(migration)) return this.retrySourceCleanup(migration);
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
          return await this.pending(migration, vmi, log);
        case 'Scheduling':
          return await this.schedule(migration, this.requireVmi(vmi), log);
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
      // The pass may have moved on through several phases: fail what was last written, with the VMI as it is now.
      const latest = this.newest(migration);
      const current = vmi === undefined ? undefined : await this.client.tryGet(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '').catch(() => vmi);
      await this.fail(latest, current, message);
      return {};
    }
  }

  /** The checks before anything is made: the VMI exists and runs (else the migration waits), can migrate, and has no other migration in flight. */
  private async pending(migration: KObject, vmi: KObject | undefined, log: Logger): Promise<ReconcileResult> {
    const name = stringAt(migration, 'spec', 'vmiName') ?? '';
    if (vmi === undefined) return this.fail(migration, vmi, `Cannot migrate VMI "${name}": it does not exist in namespace ${migration.metadata.namespace ?? ''}`);
    if (isFinal(vmi)) return this.fail(migration, vmi, `Cannot migrate VMI "${name}": it has finished (phase ${vmiPhase(vmi)}); start it again to migrate it`);
    // Admitted before the VMI runs (as KubeVirt does): Pending until it does; its changes requeue this migration.
    if (vmiPhase(vmi) !== 'Running' || nodeNameOf(vmi) === undefined) return {};
    const verdict = liveMigratabilityOf(vmi, this.claimLookup());
    if (!verdict.migratable) return this.fail(migration, vmi, `Cannot migrate VMI, Reason: ${verdict.reason}, Message: ${verdict.message}`);
    const earlier = this.migrations.list().find((m) => m.metadata.uid !== migration.metadata.uid && m.metadata.namespace === migration.metadata.namespace && stringAt(m, 'spec', 'vmiName') === name && !isFinished(m) && phaseOf(m) !== '' && phaseOf(m) !== 'Pending');
    if (earlier !== undefined) return this.fail(migration, vmi, `in-flight migration detected. Active migration job (${earlier.metadata.uid ?? ''}) is currently already in progress for VMI ${name}.`);
    const slot = this.takeSlot(migration, nodeNameOf(vmi) ?? '');
    if (!slot.start) {
      this.recorder.record(migration, 'Normal', 'MigrationWaiting', slot.message);
      // As KubeVirt, looked at again after a while, besides whenever a migration ends.
      return { requeueAfter: 5_000 };
    }
    let scheduling: KObject;
    try {
      scheduling = await this.setPhase(migration, 'Scheduling');
    } catch (err) {
      this.starting.delete(migration.metadata.uid ?? '');
      throw err;
    }
    // The next phases follow in this pass, each written before the next begins (the cache may lag; `written` keeps them).
    return this.schedule(scheduling, vmi, log);
  }

  /** A target by the scheduler's filters, the source left out; the VMI's migrationState begins. */
  private async schedule(migration: KObject, vmi: KObject, log: Logger): Promise<ReconcileResult> {
    const source = nodeNameOf(vmi) ?? '';
    const candidates = this.nodes.list().filter((n) => n.metadata.name !== source);
    const claims = this.claimLookup();
    const roomForClaims = (node: KObject): string[] => { const short = copyRoomShortage(vmi, node, claims); return short === undefined ? [] : [short]; };
    const placement = place(vmi, vmiRequests(vmi, requestOptions), candidates, this.usage(), roomForClaims);
    if ('unschedulable' in placement) {
      this.recorder.record(migration, 'Warning', 'FailedScheduling', `no target node for the migration: ${placement.unschedulable}`);
      // Like a target pod that stays Pending: tried again as nodes change.
      return { requeueAfter: 5_000 };
    }
    const state = {
      migrationUid: migration.metadata.uid,
      sourceNode: source,
      targetNode: placement.node,
      mode: 'PreCopy',
      ...resolvedSettingsState(vmi, this.namespaces.get(migration.metadata.namespace ?? ''), this.policies.list(), this.kubevirts.list()),
    };
    // A merge patch keeps what a previous migration wrote (failed, abortStatus…): those fields are cleared.
    const previous = Object.keys(recordAt(vmi, 'status', 'migrationState') ?? {}).filter((field) => !(field in state));
    await this.patchVmi(vmi, { status: { migrationState: { ...Object.fromEntries(previous.map((field) => [field, null])), ...state }, migrationMethod: migrationMethodOf(vmi) } });
    const scheduled = await this.setPhase(migration, 'Scheduled', { migrationState: state });
    this.recorder.record(migration, 'Normal', 'SuccessfulCreate', `target node ${placement.node} chosen for the migration from ${source}`);
    return this.prepareTarget(scheduled, vmi, log);
  }

  /** The target agent starts the waiting QEMU and exports its disks; kept on the migration for the next steps. */
  private async prepareTarget(migration: KObject, vmi: KObject, log: Logger): Promise<ReconcileResult> {
    const state = this.requireState(migration, vmi);
    const targetNode = stringAt(state, 'targetNode') ?? '';
    const preparing = phaseOf(migration) === 'Scheduled' ? await this.setPhase(migration, 'PreparingTarget', { migrationState: state }) : migration;
    const address = this.nodeAddress(targetNode);
    const settings = recordedSettings(state);
    // The source's certificate is issued beside the target's (each is two openssl runs), for startSource.
    const uid = migration.metadata.uid ?? '';
    const [tls, sourceTls] = await Promise.all([
      migrationCredentials(this.certificates, settings, { migrationUid: uid, role: { side: 'target', address } }),
      migrationCredentials(this.certificates, settings, { migrationUid: uid, role: { side: 'source' } }),
    ]);
    this.sourceCredentials.set(uid, sourceTls);
    const answer = await this.step(targetNode, vmi, { step: 'prepare-target', migrationUid: migration.metadata.uid ?? '', vmiUid: vmi.metadata.uid ?? '', address, allowPostCopy: settings.allowPostCopy, ...(tls === undefined ? {} : { tls }) });
    const target = answer.target;
    if (target === undefined) throw new Error(`the agent of ${targetNode} prepared no target`);
    log.info('migration target ready', { targetNode, ...target });
    const ready = { ...state, targetNodeAddress: target.address, targetDirectMigrationNodePorts: { [String(target.migrationPort)]: 0, [String(target.nbdPort)]: 49153 }, targetNodeDomainDetected: true };
    await Promise.all([
      this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations: { [targetAnnotation]: JSON.stringify(target) } } }),
      this.patchVmi(vmi, { status: { migrationState: ready } }),
    ]);
    const targetReady = await this.setPhase(preparing, 'TargetReady', { migrationState: ready });
    return this.startSource(targetReady, vmi);
  }

  /** The source mirrors the disks and migrates, in the background; `Running` from here. */
  private async startSource(migration: KObject, vmi: KObject): Promise<ReconcileResult> {
    const state = this.requireState(migration, vmi);
    const target = this.requireTarget(migration);
    const settings = recordedSettings(state);
    const uid = migration.metadata.uid ?? '';
    // Issued with the target's, unless this controller took over after that (a restart, another leader).
    const tls = this.sourceCredentials.has(uid) ? this.sourceCredentials.get(uid) : await migrationCredentials(this.certificates, settings, { migrationUid: uid, role: { side: 'source' } });
    this.sourceCredentials.delete(uid);
    await this.step(nodeNameOf(vmi) ?? '', vmi, { step: 'start-source', migrationUid: migration.metadata.uid ?? '', target, ...sourceSettingsOf(settings), ...(tls === undefined ? {} : { tls }) });
    const running = { ...state, startTimestamp: timestamp(Date.now()) };
    await Promise.all([this.patchVmi(vmi, { status: { migrationState: running } }), this.setPhase(migration, 'Running', { migrationState: running })]);
    return { requeueAfter: pollMs };
  }

  /** Polls the source; on completion hands the guest over, on failure rolls back. */
  private async follow(migration: KObject, vmi: KObject, log: Logger): Promise<ReconcileResult> {
    const known = this.requireState(migration, vmi);
    const source = stringAt(known, 'sourceNode') ?? '';
    const targetNode = stringAt(known, 'targetNode') ?? '';
    const uid = migration.metadata.uid ?? '';
    if (known.completed === true && nodeNameOf(vmi) === targetNode) return this.resumeAfterHandOver(migration, vmi, known, log);
    const answer = await this.askSource(source, vmi, uid);
    if (answer === 'silent') return { requeueAfter: 1_000 };
    const progress = answer.source;
    if (progress === undefined) throw new Error(`the agent of ${source} did not say where the migration is`);
    if (progress.state === 'failed' && progress.aborted === true) return this.abortedBySource(migration, vmi, known, progress.message ?? 'the source aborted the migration');
    const state = await this.followMode(migration, vmi, known, progress);
    if (progress.state === 'mirroring' || progress.state === 'migrating') return { requeueAfter: pollMs };
    if (progress.state !== 'completed') throw new Error(progress.message ?? `the migration ended ${progress.state} on the source`);
    await this.step(targetNode, vmi, { step: 'finish-target', migrationUid: uid });
    const done = { ...state, completed: true, endTimestamp: timestamp(Date.now()), targetNodeDomainReadyTimestamp: timestamp(Date.now()) };
    const annotations: Record<string, string> = {};
    if (progress.downtimeMs !== undefined) annotations[downtimeAnnotation] = String(progress.downtimeMs);
    if (progress.totalTimeMs !== undefined) annotations[totalTimeAnnotation] = String(progress.totalTimeMs);
    // Three writes to three objects, all before Succeeded: side by side.
    await Promise.all([
      // From here the target's agent holds the guest: the VMI is bound there.
      this.patchVmi(vmi, { metadata: { labels: { 'kubevirt.io/nodeName': targetNode } }, status: { nodeName: targetNode, migrationState: done } }),
      // The claims' data is the target's now; until their volumes say so, the source keeps its copy (finish-source checks).
      moveClaimVolumes(this.client, this.requireTarget(migration).volumes ?? [], { targetNode, sourceNode: source, migrationUid: uid }).catch((err: unknown) => { log.error('the migrated claims\' volumes still name the source node', { err }); }),
      this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations } }),
    ]);
    await this.setPhase(migration, 'Succeeded', { migrationState: done });
    // After Succeeded, as KubeVirt cleans up the source pod after the guest runs on the target: the source's clean-up (QEMU's exit, its cgroup) is not the migration's time.
    const sourceLeft = await this.finishSource(migration, source, vmi, log);
    if (sourceLeft !== undefined) await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations: { [sourceCleanupAnnotation]: sourceLeft } } });
    log.info('migration succeeded', { source, targetNode, downtimeMs: progress.downtimeMs, totalTimeMs: progress.totalTimeMs });
    this.recorder.record(migration, 'Normal', 'SuccessfulMigration', `Source node reported migration succeeded (downtime ${progress.downtimeMs ?? '?'} ms)`);
    this.recorder.record(vmi, 'Normal', 'Migrated', `The VirtualMachineInstance migrated to node ${targetNode}.`);
    return {};
  }

  /**
   * Keeps `migrationState.mode` as the source reports it (PostCopy, Paused)
   * and, once a post-copy migration switched over, has the target run the
   * guest; the state as written.
   */
  private async followMode(migration: KObject, vmi: KObject, state: Record<string, unknown>, progress: NonNullable<AgentAnswer['source']>): Promise<Record<string, unknown>> {
    let current = state;
    if (progress.mode !== undefined && progress.mode !== stringAt(state, 'mode')) {
      current = { ...state, mode: progress.mode };
      await this.patchVmi(vmi, { status: { migrationState: current } });
      await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { status: { migrationState: current } }, { subresource: 'status' });
      if (progress.mode === 'PostCopy') this.recorder.record(migration, 'Normal', 'MigrationPostCopy', 'the completion timeout was reached: the migration switched to post-copy mode (it cannot be cancelled from now on)');
      if (progress.mode === 'Paused') this.recorder.record(migration, 'Normal', 'MigrationPaused', 'the completion timeout was reached: the guest is paused so that the migration completes');
    }
    if (progress.switchedOver === true) await this.step(stringAt(state, 'targetNode') ?? '', vmi, { step: 'resume-target', migrationUid: migration.metadata.uid ?? '' });
    return current;
  }

  /**
   * The source aborted the migration itself (completion or progress
   * timeout): as KubeVirt reports it, Failed with the reason, abortStatus
   * Succeeded; the guest runs on at the source and the target goes.
   */
  private async abortedBySource(migration: KObject, vmi: KObject, state: Record<string, unknown>, reason: string): Promise<ReconcileResult> {
    const target = stringAt(state, 'targetNode');
    if (target !== undefined) await this.step(target, vmi, { step: 'abort-target', migrationUid: migration.metadata.uid ?? '' });
    const failed = { ...state, failed: true, completed: false, abortStatus: 'Succeeded', endTimestamp: timestamp(Date.now()), failureReason: reason };
    await this.patchVmi(vmi, { status: { migrationState: failed } });
    await this.setPhase(migration, 'Failed', {
      migrationState: failed,
      conditions: [{ type: 'Failed', status: 'True', reason: 'MigrationFailed', message: reason, lastProbeTime: null, lastTransitionTime: timestamp(Date.now()) }],
    });
    this.recorder.record(migration, 'Warning', 'FailedMigration', reason);
    this.logger.child(logFieldsOf(migration)).info('migration aborted by the source', { reason });
    return {};
  }

  /** A deleted migration in post-copy mode: cannot be cancelled (its guest runs on the target); said once, then followed to its end. */
  private async refuseCancelInPostCopy(migration: KObject, vmi: KObject): Promise<void> {
    const state = migrationStateOf(vmi, migration.metadata.uid ?? '');
    if (state === undefined || state.abortRequested === true) return;
    await this.patchVmi(vmi, { status: { migrationState: { ...state, abortRequested: true, abortStatus: 'Failed' } } });
    this.recorder.record(vmi, 'Warning', 'MigrationAbortFailed', 'the migration is in post-copy mode: the guest already runs on the target and cannot go back; it completes, then the deleted migration goes');
  }

  /** A deleted migration: cancelled unless it already ended; then its finalizer goes. */
  private async cancel(migration: KObject, vmi: KObject | undefined): Promise<ReconcileResult> {
    if (!(migration.metadata.finalizers ?? []).includes(migrationFinalizer)) return {};
    this.sourceCredentials.delete(migration.metadata.uid ?? '');
    const phase = phaseOf(migration);
    if (!isFinished(migration) && phase !== '' && phase !== 'Pending' && vmi !== undefined) {
      const state = migrationStateOf(vmi, migration.metadata.uid ?? '');
      const uid = migration.metadata.uid ?? '';
      const source = stringAt(state, 'sourceNode');
      const target = stringAt(state, 'targetNode');
      if (source !== undefined && phase === 'Running') await this.step(source, vmi, { step: 'cancel-source', migrationUid: uid });
      // A target out of reach removes its QEMU by itself once it reads the aborted state (src/agent/migration/target-janitor.ts).
      if (target !== undefined) await within(this.step(target, vmi, { step: 'abort-target', migrationUid: uid }), cleanupWaitMs, `the agent of ${target}`).catch((err: unknown) => { this.logger.warn('the target did not remove its QEMU now', { ...logFieldsOf(migration), target, err }); });
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
    this.sourceCredentials.delete(uid);
    const state = vmi === undefined ? undefined : migrationStateOf(vmi, uid);
    // The VMI may be gone already: the migration's own copy of the state still names both nodes.
    const nodes = state ?? recordAt(migration, 'status', 'migrationState');
    const source = stringAt(nodes, 'sourceNode');
    const target = stringAt(nodes, 'targetNode');
    // Bounded: a cut-off or dead agent answers nothing; a target cleans up by itself once it can read the VMI again.
    if (source !== undefined && phaseOf(migration) === 'Running') await within(this.stepOf(migration, source, { step: 'cancel-source', migrationUid: uid }), cleanupWaitMs, `the agent of ${source}`).catch(() => undefined);
    if (target !== undefined) await within(this.stepOf(migration, target, { step: 'abort-target', migrationUid: uid }), cleanupWaitMs, `the agent of ${target}`).catch(() => undefined);
    const failed = state === undefined ? undefined : { ...state, failed: true, completed: false, endTimestamp: timestamp(Date.now()), failureReason: message };
    if (vmi !== undefined && failed !== undefined) await this.patchVmi(vmi, { status: { migrationState: failed } });
    await this.setPhase(migration, 'Failed', {
      ...(failed === undefined ? {} : { migrationState: failed }),
      conditions: [{ type: 'Failed', status: 'True', reason: 'MigrationFailed', message, lastProbeTime: null, lastTransitionTime: timestamp(Date.now()) }],
    });
    this.recorder.record(migration, 'Warning', 'FailedMigration', message);
    return {};
  }

  /**
   * Where the source is with migration `uid`; `silent` while its agent has
   * not answered for less than {@link sourceSilenceLimitMs} (the caller
   * asks again), then an error saying so, which fails the migration.
   */
  private async askSource(source: string, vmi: KObject, uid: string): Promise<MigrationAnswer | 'silent'> {
    try {
      const answer = await within(this.step(source, vmi, { step: 'source-status', migrationUid: uid }), cleanupWaitMs, `the agent of ${source}`);
      this.sourceSilentSince.delete(uid);
      return answer;
    } catch (err) {
      const since = this.sourceSilentSince.get(uid) ?? Date.now();
      this.sourceSilentSince.set(uid, since);
      const message = err instanceof Error ? err.message : String(err);
      if (Date.now() - since < sourceSilenceLimitMs) {
        this.logger.info('the source agent does not answer; asking again', { migrationUid: uid, source, message });
        return 'silent';
      }
      this.sourceSilentSince.delete(uid);
      throw new Error(`the agent of the source node ${source} did not answer for ${sourceSilenceLimitMs / 1000} s (${message})`);
    }
  }

  /**
   * The source quits its QEMU after the hand-over; undefined once it did,
   * else why not (kept on the migration for {@link retrySourceCleanup}).
   */
  private async finishSource(migration: KObject, source: string, vmi: KObject, log: Logger): Promise<string | undefined> {
    try {
      await within(this.step(source, vmi, { step: 'finish-source', migrationUid: migration.metadata.uid ?? '' }), cleanupWaitMs, `the agent of ${source}`);
      return undefined;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      log.warn('the source did not clean up after the migration; retrying', { source, message });
      return `finish-source on ${source} failed (${message}): retried until the source's QEMU is gone`;
    }
  }

  /**
   * A Succeeded migration whose source did not quit its paused QEMU: asked
   * again, with the queue's backoff, until the source agent answers (a
   * restarted source agent removes it by itself: its VMI is bound elsewhere).
   */
  private async retrySourceCleanup(migration: KObject): Promise<ReconcileResult> {
    if (migration.metadata.annotations?.[sourceCleanupAnnotation] === undefined) return {};
    const source = stringAt(recordAt(migration, 'status', 'migrationState'), 'sourceNode');
    if (source === undefined || this.nodes.get(source) === undefined) {
      // The source node is gone: nothing left to clean there.
      await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations: { [sourceCleanupAnnotation]: null } } });
      return {};
    }
    await within(this.stepOf(migration, source, { step: 'finish-source', migrationUid: migration.metadata.uid ?? '' }), cleanupWaitMs, `the agent of ${source}`);
    await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations: { [sourceCleanupAnnotation]: null } } });
    this.logger.info('the source quit its QEMU after the migration', { ...logFieldsOf(migration), source });
    return {};
  }

  /**
   * A leader that took over after the hand-over (the VMI already bound to
   * the target, the migration not yet Succeeded): the guest runs on the
   * target, so the migration ends Succeeded, without QEMU's figures.
   */
  private async resumeAfterHandOver(migration: KObject, vmi: KObject, state: Record<string, unknown>, log: Logger): Promise<ReconcileResult> {
    const source = stringAt(state, 'sourceNode') ?? '';
    const sourceLeft = await this.finishSource(migration, source, vmi, log);
    if (sourceLeft !== undefined) await this.client.patch(resources.virtualMachineInstanceMigrations, migration.metadata.namespace, migration.metadata.name ?? '', 'merge', { metadata: { annotations: { [sourceCleanupAnnotation]: sourceLeft } } });
    await this.setPhase(migration, 'Succeeded', { migrationState: state });
    log.info('migration succeeded (taken over after the hand-over)', { source, targetNode: stringAt(state, 'targetNode') });
    this.recorder.record(migration, 'Normal', 'SuccessfulMigration', 'Source node reported migration succeeded');
    return {};
  }

  /** A step for the VMI migration `migration` names, whether or not the VMI still exists. */
  private async stepOf(migration: KObject, node: string, command: MigrationCommand): Promise<MigrationAnswer> {
    const agent = this.agents.forNode(node);
    if (agent === undefined) throw new Error(`node ${node} has no agent this server can reach`);
    return agent.migration(migration.metadata.namespace ?? '', stringAt(migration, 'spec', 'vmiName') ?? '', command);
  }

  private async step(node: string, vmi: KObject, command: MigrationCommand): Promise<MigrationAnswer> {
    const agent: AgentHandle | undefined = this.agents.forNode(node);
    if (agent === undefined) throw new Error(`node ${node} has no agent this server can reach`);
    return agent.migration(vmi.metadata.namespace ?? '', vmi.metadata.name ?? '', command);
  }

  /** The claims, volumes, VMIs and snapshots the claims check reads, from the informers. */
  private claimLookup(): ClaimLookup {
    return {
      claim: (namespace, name) => this.claims.get(`${namespace}/${name}`),
      volume: (name) => this.volumes.get(name),
      vmis: () => this.vmis.list(),
      snapshots: (namespace) => this.snapshots.list().filter((s) => s.metadata.namespace === namespace),
    };
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
