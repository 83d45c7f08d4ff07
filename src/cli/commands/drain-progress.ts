/**
 * What `vireo drain` says about the VMIs it live-migrates off a node while
 * it waits: a line each time the newest migration of a VMI changes phase
 * (failures with their reason, since the evacuation controller retries
 * them), and, when the drain times out, where each one stands.
 */
import type { KObject } from '../../api/object.js';
import { migrationsOfVmi } from '../../api/kinds/evacuation.js';
import { recordAt, recordsAt, stringAt } from '../../api/kinds/read.js';

/** Follows the migrations of the VMIs being migrated off one node. */
export class MigrationProgress {
  /** The last `name phase` printed, by VMI uid. */
  private readonly said = new Map<string, string>();

  /** Lines for what changed since the last call: `vmi`'s newest migration and its phase. */
  lines(vmi: KObject, migrations: readonly KObject[]): string[] {
    const newest = migrationsOfVmi(vmi, migrations)[0];
    if (newest === undefined) return [];
    const phase = stringAt(newest, 'status', 'phase') ?? 'Pending';
    const now = `${newest.metadata.name ?? ''} ${phase}`;
    const uid = vmi.metadata.uid ?? '';
    if (this.said.get(uid) === now) return [];
    this.said.set(uid, now);
    const subject = `virtualmachineinstance ${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}: migration ${newest.metadata.name ?? ''}`;
    if (phase !== 'Failed') return [`${subject} ${phase}`];
    return [`${subject} Failed: ${failureOf(newest, vmi)}; the evacuation controller tries again after a backoff`];
  }

  /** Where `vmi`'s move stands, for the timeout message. */
  static describe(vmi: KObject, migrations: readonly KObject[]): string {
    const newest = migrationsOfVmi(vmi, migrations)[0];
    if (newest === undefined) return 'live migration: no migration yet (is the VMI Running and LiveMigratable?)';
    const phase = stringAt(newest, 'status', 'phase') ?? 'Pending';
    if (phase === 'Failed') return `live migration: migration ${newest.metadata.name ?? ''} failed (${failureOf(newest, vmi)}), the next one waits out a backoff`;
    return `live migration: migration ${newest.metadata.name ?? ''} ${phase}`;
  }
}

/** Why a migration failed: its Failed condition, else the VMI's migrationState. */
function failureOf(migration: KObject, vmi: KObject): string {
  const condition = recordsAt(migration, 'status', 'conditions').find((c) => c.type === 'Failed');
  const state = recordAt(vmi, 'status', 'migrationState');
  const fromState = stringAt(state, 'migrationUid') === migration.metadata.uid ? stringAt(state, 'failureReason') : undefined;
  return stringAt(condition, 'message') ?? fromState ?? (stringAt(state, 'abortStatus') === 'Succeeded' ? 'cancelled' : 'no reason given');
}
