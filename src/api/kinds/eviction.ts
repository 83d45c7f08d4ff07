/**
 * What draining a node does to one VMI, as KubeVirt's eviction admission
 * decides it: the VMI's `spec.evictionStrategy`, else the KubeVirt CR's
 * `spec.configuration.evictionStrategy`, else KubeVirt's own default
 * (`None`). `LiveMigrate`, and `LiveMigrateIfPossible` when the VMI can
 * migrate, live-migrate it off the node (the evacuation controller does,
 * once the drain marked it); a `LiveMigrate` VMI that cannot migrate
 * refuses the drain (KubeVirt refuses its eviction), a
 * `LiveMigrateIfPossible` one is stopped instead. Pure: the `vireo drain`
 * command reads the objects and acts on the answer.
 */
import type { KObject } from '../object.js';
import { recordsAt, stringAt } from './read.js';
import { liveMigratableCondition, migratabilityOf } from './vmi-migratable.js';
import type { Migratability } from './vmi-migratable.js';

export const evictionStrategies = ['None', 'LiveMigrate', 'LiveMigrateIfPossible', 'External'] as const;
export type EvictionStrategy = (typeof evictionStrategies)[number];

/** KubeVirt's cluster default when neither the VMI nor the KubeVirt CR names one. */
export const defaultEvictionStrategy: EvictionStrategy = 'None';

export function isEvictionStrategy(value: unknown): value is EvictionStrategy {
  return typeof value === 'string' && (evictionStrategies as readonly string[]).includes(value);
}

/** A VMI's eviction strategy and where it came from, for messages. */
export interface ResolvedEvictionStrategy {
  strategy: EvictionStrategy;
  from: 'vmi' | 'cluster' | 'default';
}

/** The strategy that applies to `vmi`, given the cluster's KubeVirt CR (undefined: none exists). */
export function evictionStrategyOf(vmi: KObject, kubevirt: KObject | undefined): ResolvedEvictionStrategy {
  const own = stringAt(vmi, 'spec', 'evictionStrategy');
  if (isEvictionStrategy(own)) return { strategy: own, from: 'vmi' };
  const cluster = kubevirt === undefined ? undefined : stringAt(kubevirt, 'spec', 'configuration', 'evictionStrategy');
  if (isEvictionStrategy(cluster)) return { strategy: cluster, from: 'cluster' };
  return { strategy: defaultEvictionStrategy, from: 'default' };
}

/**
 * The cluster's KubeVirt CR among `kubevirts`: the oldest one not being
 * deleted, as KubeVirt reads its configuration from.
 */
export function clusterKubeVirtOf(kubevirts: readonly KObject[]): KObject | undefined {
  return kubevirts
    .filter((kv) => kv.metadata.deletionTimestamp === undefined)
    .sort((a, b) => (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''))[0];
}

/**
 * Whether `vmi` can be live-migrated for an eviction: its `LiveMigratable`
 * condition when the migration controller wrote one (the VMI runs), else
 * the same rule read from its spec.
 */
export function evictionMigratabilityOf(vmi: KObject): Migratability {
  const condition = recordsAt(vmi, 'status', 'conditions').find((c) => c.type === liveMigratableCondition);
  if (condition === undefined) return migratabilityOf(vmi);
  if (condition.status === 'True') return { migratable: true };
  return { migratable: false, reason: stringAt(condition, 'reason') ?? 'NotMigratable', message: stringAt(condition, 'message') ?? 'the VMI says it cannot be live-migrated' };
}

/**
 * Whether an eviction live-migrates `vmi` (KubeVirt's
 * `VMIMigratableOnEviction`): its strategy is `LiveMigrate`, or
 * `LiveMigrateIfPossible` and it can migrate.
 */
export function migratesOnEviction(vmi: KObject, kubevirt: KObject | undefined): boolean {
  const { strategy } = evictionStrategyOf(vmi, kubevirt);
  if (strategy === 'LiveMigrate') return true;
  return strategy === 'LiveMigrateIfPossible' && evictionMigratabilityOf(vmi).migratable;
}

/** The controller that owns a VMI (a VirtualMachine or a replica set), which makes a new one once it is gone. */
export interface VmiController {
  kind: string;
  name: string;
}

export function controllerOf(vmi: KObject): VmiController | undefined {
  const owner = (vmi.metadata.ownerReferences ?? []).find((ref) => ref.controller === true);
  return owner === undefined ? undefined : { kind: owner.kind, name: owner.name };
}

/** What a drain does with one VMI. */
export type DrainStep =
  /** Stop it (delete the VMI); its controller, if any, starts a new one on another node. */
  | { action: 'stop'; strategy: ResolvedEvictionStrategy; controller: VmiController | undefined }
  /** `External`: mark `status.evacuationNodeName` and leave the move to an external controller. */
  | { action: 'evacuate'; strategy: ResolvedEvictionStrategy }
  /** `LiveMigrate`, or `LiveMigrateIfPossible` and migratable: mark `status.evacuationNodeName`; the evacuation controller migrates it. */
  | { action: 'migrate'; strategy: ResolvedEvictionStrategy }
  /** Leave it and fail the drain, saying why and what to do. */
  | { action: 'refuse'; strategy: ResolvedEvictionStrategy; why: string };

/** `force`: stop VMIs that no controller will start again (kubectl drain's `--force` for bare pods). */
export function drainStepOf(vmi: KObject, kubevirt: KObject | undefined, options: { force: boolean }): DrainStep {
  const strategy = evictionStrategyOf(vmi, kubevirt);
  const name = `${vmi.metadata.namespace ?? ''}/${vmi.metadata.name ?? ''}`;
  const source = strategy.from === 'vmi' ? 'its spec.evictionStrategy' : strategy.from === 'cluster' ? "the KubeVirt CR's spec.configuration.evictionStrategy" : "KubeVirt's default";
  switch (strategy.strategy) {
    case 'External':
      return { action: 'evacuate', strategy };
    case 'LiveMigrate': {
      const verdict = evictionMigratabilityOf(vmi);
      if (verdict.migratable) return { action: 'migrate', strategy };
      // KubeVirt's eviction admission: "VMI … is configured with an eviction strategy but is not live-migratable".
      return {
        action: 'refuse',
        strategy,
        why: `virtualmachineinstance ${name} has eviction strategy LiveMigrate (from ${source}) but is not live-migratable (${verdict.reason}: ${verdict.message}), so it cannot be evicted: ` +
          'make it migratable, or set its evictionStrategy to None or LiveMigrateIfPossible (stop and restart elsewhere) or External, or stop it (vireo stop VM), then drain again',
      };
    }
    case 'None':
    case 'LiveMigrateIfPossible': {
      if (strategy.strategy === 'LiveMigrateIfPossible' && evictionMigratabilityOf(vmi).migratable) return { action: 'migrate', strategy };
      const controller = controllerOf(vmi);
      if (controller === undefined && !options.force) {
        return {
          action: 'refuse',
          strategy,
          why: `virtualmachineinstance ${name} has no controller (no VirtualMachine or replica set owns it), so once stopped nothing starts it again: ` +
            'drain with --force to stop it anyway, or delete it yourself',
        };
      }
      return { action: 'stop', strategy, controller };
    }
  }
}
