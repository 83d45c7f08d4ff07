/**
 * virt-controller's VMI phase transition histograms, observed as the VMI
 * informer sees a phase change (KubeVirt observes them in its informer's
 * update handler): `kubevirt_vmi_phase_transition_time_seconds{phase,last_phase}`
 * (from the previous phase's transition, or creation when it had none),
 * `_from_creation_seconds{phase}` and `_from_deletion_seconds{phase}` (a
 * deleted VMI reaching a final phase); and a migration's
 * `kubevirt_vmi_migration_phase_transition_time_from_creation_seconds{phase}`,
 * observed on the migration informer's phase changes. The times come from
 * the objects' `status.phaseTransitionTimestamps`, so a controller that
 * starts late still measures what was recorded.
 */
import { Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { KObject } from '../../api/object.js';
import { recordsAt, stringAt } from '../../api/kinds/read.js';
import { isFinal, isMarkedForDeletion } from '../../api/kinds/vm-state.js';

/** KubeVirt's buckets: half a second to an hour. */
const phaseTransitionBuckets = [0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 90, 120, 180, 300, 600, 1200, 1800, 3600];

export class PhaseTransitionMetrics {
  private readonly between: Histogram<'phase' | 'last_phase'>;
  private readonly fromCreation: Histogram<'phase'>;
  private readonly fromDeletion: Histogram<'phase'>;
  private readonly migrationFromCreation: Histogram<'phase'>;

  constructor(private readonly registry: Registry) {
    const registers = [registry];
    this.between = new Histogram({ name: 'kubevirt_vmi_phase_transition_time_seconds', help: 'Histogram of VM phase transitions duration between different phases in seconds.', labelNames: ['phase', 'last_phase'], buckets: phaseTransitionBuckets, registers });
    this.fromCreation = new Histogram({ name: 'kubevirt_vmi_phase_transition_time_from_creation_seconds', help: 'Histogram of VM phase transitions duration from creation time in seconds.', labelNames: ['phase'], buckets: phaseTransitionBuckets, registers });
    this.fromDeletion = new Histogram({ name: 'kubevirt_vmi_phase_transition_time_from_deletion_seconds', help: 'Histogram of VM phase transitions duration from deletion time in seconds.', labelNames: ['phase'], buckets: phaseTransitionBuckets, registers });
    this.migrationFromCreation = new Histogram({ name: 'kubevirt_vmi_migration_phase_transition_time_from_creation_seconds', help: 'Histogram of VM migration phase transitions duration from creation time in seconds.', labelNames: ['phase'], buckets: phaseTransitionBuckets, registers });
  }

  /** A VMI seen in phase `vmi.status.phase` after `lastPhase` (undefined: first seen, nothing observed). */
  observe(lastPhase: string | undefined, vmi: KObject): void {
    const phase = stringAt(vmi, 'status', 'phase') ?? '';
    if (lastPhase === undefined || lastPhase === phase) return;
    const reached = transitionTime(vmi, phase);
    if (reached === undefined) return;
    const created = parseTime(vmi.metadata.creationTimestamp);
    const left = lastPhase === '' ? created : transitionTime(vmi, lastPhase) ?? created;
    if (left !== undefined) this.between.observe({ phase, last_phase: lastPhase }, seconds(reached - left));
    if (created !== undefined) this.fromCreation.observe({ phase }, seconds(reached - created));
    const deleted = parseTime(vmi.metadata.deletionTimestamp);
    if (deleted !== undefined && isMarkedForDeletion(vmi) && isFinal(vmi)) this.fromDeletion.observe({ phase }, seconds(reached - deleted));
  }

  /** A migration seen in phase `migration.status.phase` after `lastPhase` (undefined: first seen, nothing observed). */
  observeMigration(lastPhase: string | undefined, migration: KObject): void {
    const phase = stringAt(migration, 'status', 'phase') ?? '';
    if (lastPhase === undefined || lastPhase === phase) return;
    const reached = transitionTime(migration, phase);
    const created = parseTime(migration.metadata.creationTimestamp);
    if (reached !== undefined && created !== undefined) this.migrationFromCreation.observe({ phase }, seconds(reached - created));
  }

  /** Takes the families out of the registry (the controller stopped leading). */
  remove(): void {
    for (const name of ['kubevirt_vmi_phase_transition_time_seconds', 'kubevirt_vmi_phase_transition_time_from_creation_seconds', 'kubevirt_vmi_phase_transition_time_from_deletion_seconds', 'kubevirt_vmi_migration_phase_transition_time_from_creation_seconds']) this.registry.removeSingleMetric(name);
  }
}

/** When `object` (a VMI or a migration) entered `phase`, from its `status.phaseTransitionTimestamps`. */
function transitionTime(object: KObject, phase: string): number | undefined {
  const entry = recordsAt(object, 'status', 'phaseTransitionTimestamps').find((t) => t.phase === phase);
  return parseTime(stringAt(entry, 'phaseTransitionTimestamp'));
}

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Clock skew between writers must not make a negative duration. */
function seconds(ms: number): number {
  return Math.max(0, ms / 1000);
}
