/**
 * The target agent's own clean-up of incoming migrations it no longer
 * owns. The controller aborts a failed migration's target, but it cannot
 * when the target was cut off or its agent down at that moment; and a
 * target QEMU may die on its own. Every few seconds the janitor looks at
 * each waiting QEMU: one that ended, or whose VMI is gone or no longer
 * names this migration as its live one (failed, aborted, replaced), is
 * aborted here, so nothing of it stays on the node. A target whose VMI
 * cannot be read (the API is out of reach) is left until it can.
 */
import type { KObject } from '../../api/object.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { resources, splitKey } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import type { MigrationTargets } from './target.js';

/** How often waiting targets are checked. */
const checkEveryMs = 2_000;

/**
 * Why the waiting target of migration `migrationUid` for VMI uid `vmiUid`
 * is no longer wanted, given the VMI as stored now (undefined: deleted);
 * undefined while it is.
 */
export function staleTargetReason(vmi: KObject | undefined, migrationUid: string, vmiUid: string): string | undefined {
  if (vmi === undefined || vmi.metadata.uid !== vmiUid) return 'its VMI was deleted';
  const state = recordAt(vmi, 'status', 'migrationState');
  const current = stringAt(state, 'migrationUid');
  if (current !== migrationUid) return `the VMI's migration is ${current === undefined ? 'gone' : `now ${current}`}`;
  if (state?.failed === true) return `the migration failed${typeof state.failureReason === 'string' ? ` (${state.failureReason})` : ''}`;
  if (state?.abortStatus !== undefined) return 'the migration was aborted';
  return undefined;
}

/** Aborts the node's stale incoming migrations; see the module comment. */
export class TargetJanitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(private readonly options: { client: Client; targets: MigrationTargets; logger: Logger; intervalMs?: number }) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep().finally(() => { this.running = undefined; });
    }, this.options.intervalMs ?? checkEveryMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One look at every waiting target. */
  async sweep(): Promise<void> {
    for (const [migrationUid, machine] of this.options.targets.waiting()) {
      let reason: string | undefined;
      if (machine.exit !== undefined) {
        reason = `its QEMU ended (${machine.exit.message})`;
      } else {
        const { namespace, name } = splitKey(machine.key);
        let vmi: KObject | undefined;
        try {
          vmi = await this.options.client.tryGet(resources.virtualMachineInstances, namespace, name);
        } catch (err) {
          this.options.logger.debug('cannot read the VMI of a waiting migration target; looking again later', { migrationUid, err });
          continue;
        }
        reason = staleTargetReason(vmi, migrationUid, machine.record.uid);
      }
      if (reason === undefined) continue;
      this.options.logger.info('removing a migration target this node no longer owns', { migrationUid, uid: machine.record.uid, reason });
      await this.options.targets.abort(migrationUid).catch((err: unknown) => { this.options.logger.error('cannot remove a stale migration target', { migrationUid, err }); });
    }
  }
}
