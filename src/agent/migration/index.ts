/**
 * Live migration on a node agent: the steps the migration controller asks
 * of the source and the target agent (`protocol.ts`), carried out by the
 * node's {@link MigrationSources} and {@link MigrationTargets}; the
 * claims' volumes copied with the guest in `claim-copies.ts`.
 */
import { ApiError } from '../../api/errors.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import type { EventRecorder } from '../../controllers/events/index.js';
import type { MigrationHost } from './host.js';
import type { MigrationAnswer, MigrationCommand } from './protocol.js';
import { MigrationSources } from './source.js';
import { MigrationTargets } from './target.js';
import { TargetJanitor } from './target-janitor.js';
import { removeSourceCopies } from './claim-copies.js';
import type { ClaimNode } from './claim-copies.js';

export type { MigrationHost } from './host.js';
export type { MigrationAnswer, MigrationCommand, MigrationStep, MigrationTarget, MigrationTls, MovedVolume, SourceProgress, SourceState } from './protocol.js';
export type { ConvergenceSettings, MigrationMode } from './convergence.js';
export { parseMigrationAnswer, parseMigrationCommand, parseMigrationTarget } from './protocol.js';

/** How long a restarted agent waits for its runner to show the guest of a migration it is asked about. */
const adoptWaitMs = 10_000;
/** How long after its start an agent may not know its guests yet. */
const startupMs = 30_000;

/** KubeVirt's reason for the target agent's Events on the VMI while it prepares a migration's target. */
export const preparingTargetReason = 'PreparingTarget';

/** The migrations of one node, both directions. */
export class NodeMigrations {
  private readonly startedAt = Date.now();
  private readonly sources: MigrationSources;
  private readonly targets: MigrationTargets;
  private readonly janitor: TargetJanitor;

  private readonly claimNode: ClaimNode;

  /**
   * `dataDir` and `nodeName`: where this node keeps its local volumes (claims' copies are made and removed there);
   * `events`: where the target's Events about the VMI go (virt-handler's).
   */
  constructor(private readonly options: { client: Client; host: MigrationHost; logger: Logger; dataDir: string; nodeName: string; events?: EventRecorder }) {
    this.claimNode = { client: options.client, dataDir: options.dataDir, nodeName: options.nodeName, logger: options.logger.child({ part: 'migration-claims' }) };
    this.sources = new MigrationSources(options.host, options.logger.child({ part: 'migration-source' }));
    this.targets = new MigrationTargets(options.host, options.logger.child({ part: 'migration-target' }), this.claimNode);
    this.janitor = new TargetJanitor({ client: options.client, targets: this.targets, logger: options.logger.child({ part: 'migration-target' }) });
    this.janitor.start();
  }

  /** Carries out one step for VMI `namespace/name`; an ApiError saying why when it cannot. */
  async handle(namespace: string, name: string, command: MigrationCommand, signal: AbortSignal): Promise<MigrationAnswer> {
    try {
      return await this.step(namespace, name, command, signal);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError('Conflict', `migration step ${command.step} of VMI ${namespace}/${name} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /** Kills the QEMUs waiting for guests that will not come now (agent stop). */
  async stop(): Promise<void> {
    await this.janitor.stop();
    await this.targets.stop();
  }

  /** A migration this agent does not know while it runs the VMI's guest: it restarted mid-way, and takes the migration over (see {@link MigrationSources.adopt}). */
  private async adoptAfterRestart(namespace: string, name: string, migrationUid: string): Promise<void> {
    if (this.sources.knows(migrationUid)) return;
    // Just after the restart the runner may not have its VMIs yet: the guest's machine shows once it has.
    const deadline = Math.min(Date.now() + adoptWaitMs, this.startedAt + startupMs);
    let machine = this.options.host.liveMachine(namespace, name);
    while (machine === undefined && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      machine = this.options.host.liveMachine(namespace, name);
    }
    if (machine !== undefined && !this.sources.knows(migrationUid)) await this.sources.adopt(migrationUid, machine);
  }

  private async step(namespace: string, name: string, command: MigrationCommand, signal: AbortSignal): Promise<MigrationAnswer> {
    switch (command.step) {
      case 'prepare-target': {
        const vmi = await this.options.client.tryGet(resources.virtualMachineInstances, namespace, name);
        if (vmi?.metadata.uid !== command.vmiUid) throw new ApiError('NotFound', `VMI ${namespace}/${name} with uid ${command.vmiUid} is gone: nothing to migrate`);
        const known = this.targets.knows(command.migrationUid);
        const target = await this.targets.prepare(command.migrationUid, vmi, command.address, signal, { ...(command.allowPostCopy === undefined ? {} : { allowPostCopy: command.allowPostCopy }), ...(command.tls === undefined ? {} : { tls: command.tls }) });
        // As KubeVirt's virt-handler on the target, twice under one reason: prepared, then where the source reaches it. A repeated step is not news.
        if (!known) {
          this.options.events?.record(vmi, 'Normal', preparingTargetReason, `migration target prepared on node ${this.options.nodeName} for migration ${command.migrationUid}: a QEMU waits for the guest`);
          this.options.events?.record(vmi, 'Normal', preparingTargetReason, `migration target listening at ${target.address}, port ${target.migrationPort} for the migration stream and ${target.nbdPort} for the disks`);
        }
        return { target };
      }
      case 'start-source': {
        const machine = this.options.host.liveMachine(namespace, name);
        if (machine === undefined) throw new ApiError('Conflict', `VMI ${namespace}/${name} is not running on this node: it cannot be migrated from here`);
        this.sources.start(command.migrationUid, machine, {
          target: command.target,
          ...(command.bandwidthBytesPerSecond === undefined ? {} : { bandwidthBytesPerSecond: command.bandwidthBytesPerSecond }),
          ...(command.convergence === undefined ? {} : { convergence: command.convergence }),
          ...(command.tls === undefined ? {} : { tls: command.tls }),
        });
        return { source: this.sources.status(command.migrationUid) };
      }
      case 'source-status':
        await this.adoptAfterRestart(namespace, name, command.migrationUid);
        return { source: this.sources.status(command.migrationUid) };
      case 'cancel-source':
        await this.adoptAfterRestart(namespace, name, command.migrationUid);
        return { source: await this.sources.cancel(command.migrationUid) };
      case 'finish-source': {
        const moved = this.sources.movedVolumes(command.migrationUid);
        await this.sources.finish(command.migrationUid);
        await removeSourceCopies(moved, this.claimNode);
        return {};
      }
      case 'resume-target':
        await this.targets.resumePostCopy(command.migrationUid);
        return {};
      case 'finish-target':
        await this.targets.finish(command.migrationUid);
        return {};
      case 'abort-target':
        await this.targets.abort(command.migrationUid);
        return {};
      default:
        return assertNever(command);
    }
  }
}

function assertNever(value: never): never {
  throw new Error(`unhandled migration step ${JSON.stringify(value)}`);
}
