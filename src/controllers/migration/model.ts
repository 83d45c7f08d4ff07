/**
 * The migration's objects as the controller reads and writes them:
 * KubeVirt's VirtualMachineInstanceMigration phases and finalizer, the
 * VMI's `status.migrationState`, where the target the agent prepared is
 * kept between passes, and the MigrationPolicy that applies to a VMI.
 */
import type { KObject } from '../../api/object.js';
import { recordAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import { labelSelectorFromObject } from '../../api/labels.js';
import { parseMigrationTarget } from '../../agent/index.js';
import type { MigrationTarget } from '../../agent/index.js';

/** KubeVirt's migration phases, in order. */
export const migrationPhases = ['Pending', 'Scheduling', 'Scheduled', 'PreparingTarget', 'TargetReady', 'Running', 'Succeeded', 'Failed'] as const;
export type MigrationPhase = (typeof migrationPhases)[number];

/** KubeVirt's finalizer on migrations: the controller sees a delete (a cancel) before the object goes. */
export const migrationFinalizer = 'kubevirt.io/migrationJobFinalize';

/** Where the target the agent prepared is kept (JSON of `MigrationTarget`). */
export const targetAnnotation = 'vireo.io/migration-target';

/** The downtime QEMU measured, in ms (KubeVirt's migration status has no field for it). */
export const downtimeAnnotation = 'vireo.io/migration-downtime-ms';

/** The whole migration's time as QEMU measured it, in ms. */
export const totalTimeAnnotation = 'vireo.io/migration-total-time-ms';

/** The phase of a migration; `''` before the controller saw it. */
export function phaseOf(migration: KObject): MigrationPhase | '' {
  const phase = stringAt(migration, 'status', 'phase') ?? '';
  return (migrationPhases as readonly string[]).includes(phase) ? (phase as MigrationPhase) : '';
}

export function isFinished(migration: KObject): boolean {
  const phase = phaseOf(migration);
  return phase === 'Succeeded' || phase === 'Failed';
}

/** The target kept on the migration, if one was prepared. */
export function keptTarget(migration: KObject): MigrationTarget | undefined {
  const text = migration.metadata.annotations?.[targetAnnotation];
  if (text === undefined) return undefined;
  try {
    return parseMigrationTarget(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** The VMI's `status.migrationState` when it belongs to migration `uid`. */
export function migrationStateOf(vmi: KObject, uid: string): Record<string, unknown> | undefined {
  const state = recordAt(vmi, 'status', 'migrationState');
  return stringAt(state, 'migrationUid') === uid ? state : undefined;
}

/**
 * The MigrationPolicy that applies to `vmi` in namespace `namespace`
 * (labels), by KubeVirt's precedence: among those with selectors that all
 * match, the one with the most matching labels, then the most VMI labels,
 * then the first by name.
 */
export function policyFor(vmi: KObject, namespace: KObject | undefined, policies: readonly KObject[]): KObject | undefined {
  const vmiLabels = vmi.metadata.labels ?? {};
  const namespaceLabels = namespace?.metadata.labels ?? {};
  const matching = policies
    .map((policy) => {
      const vmiSelector = stringMapAt(policy, 'spec', 'selectors', 'virtualMachineInstanceSelector');
      const namespaceSelector = stringMapAt(policy, 'spec', 'selectors', 'namespaceSelector');
      const matches = recordAt(policy, 'spec', 'selectors') !== undefined && labelSelectorFromObject({ matchLabels: vmiSelector }).matches(vmiLabels) && labelSelectorFromObject({ matchLabels: namespaceSelector }).matches(namespaceLabels);
      const vmiWeight = Object.keys(vmiSelector).length;
      return { policy, matches, weight: vmiWeight + Object.keys(namespaceSelector).length, vmiWeight };
    })
    .filter((p) => p.matches)
    .sort((a, b) => b.weight - a.weight || b.vmiWeight - a.vmiWeight || compareNames(a.policy.metadata.name ?? '', b.policy.metadata.name ?? ''));
  return matching[0]?.policy;
}

/** Byte order, as Go compares strings (KubeVirt's tie-break), not the locale's. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
