/**
 * Node evacuation by live migration, as KubeVirt's evacuation controller
 * sees it: which VMIs of a node are to be migrated off it (those marked
 * with `status.evacuationNodeName` by a drain, or every VMI of a node with
 * the drain taint), which of them get a migration now, which wait out a
 * backoff after failed ones, which cannot migrate, and whose mark is stale
 * (they run elsewhere now). Pure: the evacuation controller
 * (src/controllers/evacuation) reads the objects and acts on the answer;
 * `vireo drain` reads the same names.
 */
import type { KObject } from '../object.js';
import { recordsAt, stringAt } from './read.js';
import { evictionMigratabilityOf, migratesOnEviction } from './eviction.js';
import { isFinal, isMarkedForDeletion, nodeNameOf } from './vm-state.js';

/** KubeVirt's annotation on the migrations its evacuation creates; the value is the node being evacuated. */
export const evacuationMigrationAnnotation = 'kubevirt.io/evacuationMigration';

/** KubeVirt's `generateName` of those migrations. */
export const evacuationMigrationPrefix = 'kubevirt-evacuation-';

/** KubeVirt's default `spec.configuration.migrations.nodeDrainTaintKey`: a NoSchedule taint with it evacuates the node. */
export const defaultNodeDrainTaintKey = 'kubevirt.io/drain';

/** The first wait after a failed evacuation migration (KubeVirt's migration backoff), doubled for each further failure. */
export const evacuationBackoffBaseMs = 20_000;

/** The longest wait between evacuation migrations of one VMI (KubeVirt has no cap; a drain should not wait for hours). */
export const evacuationBackoffMaxMs = 320_000;

/** The drain taint key the KubeVirt CR sets, else KubeVirt's default. */
export function nodeDrainTaintKeyOf(kubevirt: KObject | undefined): string {
  return stringAt(kubevirt, 'spec', 'configuration', 'migrations', 'nodeDrainTaintKey') ?? defaultNodeDrainTaintKey;
}

/** Whether `node` has the drain taint (`key`, effect NoSchedule). */
export function hasDrainTaint(node: KObject, key: string): boolean {
  return recordsAt(node, 'spec', 'taints').some((taint) => taint.key === key && taint.effect === 'NoSchedule');
}

/** Whether a migration has ended (Succeeded or Failed). */
export function isMigrationFinished(migration: KObject): boolean {
  const phase = stringAt(migration, 'status', 'phase');
  return phase === 'Succeeded' || phase === 'Failed';
}

/** Whether `migration` was made by an evacuation. */
export function isEvacuationMigration(migration: KObject): boolean {
  return migration.metadata.annotations?.[evacuationMigrationAnnotation] !== undefined;
}

/** The migrations of `vmi` (by namespace and `spec.vmiName`), newest first. */
export function migrationsOfVmi(vmi: KObject, migrations: readonly KObject[]): KObject[] {
  return migrations
    .filter((m) => m.metadata.namespace === vmi.metadata.namespace && stringAt(m, 'spec', 'vmiName') === vmi.metadata.name)
    .sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') || (b.metadata.name ?? '').localeCompare(a.metadata.name ?? ''));
}

/** When `migration` failed (its Failed phase transition), in ms since the epoch; its creation if it does not say. */
function failedAtMs(migration: KObject): number {
  const transition = recordsAt(migration, 'status', 'phaseTransitionTimestamps').find((t) => t.phase === 'Failed');
  const when = Date.parse(stringAt(transition, 'phaseTransitionTimestamp') ?? migration.metadata.creationTimestamp ?? '');
  return Number.isFinite(when) ? when : 0;
}

/**
 * The backoff before the next evacuation migration of a VMI, from its
 * evacuation migrations (newest first): the failures since the last
 * success, and when the next one may start. Undefined when none failed.
 */
export function evacuationBackoffOf(ofVmi: readonly KObject[]): { failures: number; retryAtMs: number } | undefined {
  let failures = 0;
  let lastFailed: KObject | undefined;
  for (const migration of ofVmi.filter(isEvacuationMigration)) {
    const phase = stringAt(migration, 'status', 'phase');
    if (phase === 'Succeeded') break;
    if (phase !== 'Failed') continue;
    failures += 1;
    lastFailed ??= migration;
  }
  if (lastFailed === undefined) return undefined;
  const waitMs = Math.min(evacuationBackoffMaxMs, evacuationBackoffBaseMs * 2 ** (failures - 1));
  return { failures, retryAtMs: failedAtMs(lastFailed) + waitMs };
}

/** What the evacuation controller does for one node. */
export interface EvacuationPlan {
  /** Create a migration for each now. */
  migrate: KObject[];
  /** Migrate once the backoff after failed migrations has passed. */
  backingOff: { vmi: KObject; failures: number; retryAtMs: number }[];
  /** `LiveMigrate` VMIs that cannot migrate: they stay, and say why. */
  notMigratable: { vmi: KObject; reason: string; message: string }[];
  /** Marked with this node but running on another now (migrated): the mark goes, as KubeVirt clears it at the hand-over. */
  clearMark: KObject[];
}

/**
 * The plan for `node`, given every VMI and migration of the cluster and the
 * KubeVirt CR. A VMI is evacuated when it is marked for this node (and
 * still runs here) or the node has the drain taint, it migrates on
 * eviction (`LiveMigrate`, or `LiveMigrateIfPossible` and migratable), it
 * runs and says it is `LiveMigratable`, and no unfinished migration of it
 * exists (one at a time, whoever made it).
 */
export function planEvacuation(node: KObject, vmis: readonly KObject[], migrations: readonly KObject[], options: { kubevirt: KObject | undefined; nowMs: number }): EvacuationPlan {
  const name = node.metadata.name ?? '';
  const plan: EvacuationPlan = { migrate: [], backingOff: [], notMigratable: [], clearMark: [] };
  const tainted = hasDrainTaint(node, nodeDrainTaintKeyOf(options.kubevirt));
  for (const vmi of vmis) {
    if (isFinal(vmi) || isMarkedForDeletion(vmi)) continue;
    const at = nodeNameOf(vmi);
    const mark = stringAt(vmi, 'status', 'evacuationNodeName');
    if (mark === name && at !== undefined && at !== name) {
      plan.clearMark.push(vmi);
      continue;
    }
    if (at !== name || (mark !== name && !tainted)) continue;
    if (!migratesOnEviction(vmi, options.kubevirt)) continue;
    // A VMI that does not run yet has no LiveMigratable condition: its start brings it back here.
    if (stringAt(vmi, 'status', 'phase') !== 'Running') continue;
    const verdict = evictionMigratabilityOf(vmi);
    if (!verdict.migratable) {
      plan.notMigratable.push({ vmi, reason: verdict.reason, message: verdict.message });
      continue;
    }
    const ofVmi = migrationsOfVmi(vmi, migrations);
    if (ofVmi.some((m) => !isMigrationFinished(m))) continue;
    const backoff = evacuationBackoffOf(ofVmi);
    if (backoff !== undefined && backoff.retryAtMs > options.nowMs) {
      plan.backingOff.push({ vmi, ...backoff });
      continue;
    }
    plan.migrate.push(vmi);
  }
  return plan;
}
