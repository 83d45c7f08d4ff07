/**
 * The conditions a Terminating namespace reports, with Kubernetes' types,
 * reasons and messages (`pkg/controller/namespace/deletion/
 * status_condition_utils.go`), so `kubectl describe namespace` says what a
 * deletion waits for.
 */
import { isDeepStrictEqual } from 'node:util';
import { isPlainObject } from '../../api/object.js';

/** What one deletion pass left behind. */
export interface ContentTotals {
  /** `<resource>.<group>` → objects still present. */
  resources: Map<string, number>;
  /** Finalizer → objects still carrying it. */
  finalizers: Map<string, number>;
  /** Why deleting some objects failed. */
  errors: string[];
}

/** A `v1 NamespaceCondition`. */
export interface NamespaceCondition {
  type: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
  lastTransitionTime: string;
}

type Judgement = Pick<NamespaceCondition, 'status' | 'reason' | 'message'>;

/** Condition types in Kubernetes' order, each with its "all is well" reason and message. */
const conditionTypes: ReadonlyArray<{ type: string; ok: Judgement }> = [
  { type: 'NamespaceDeletionDiscoveryFailure', ok: ok('ResourcesDiscovered', 'All resources successfully discovered') },
  { type: 'NamespaceDeletionGroupVersionParsingFailure', ok: ok('ParsedGroupVersions', 'All legacy kube types successfully parsed') },
  { type: 'NamespaceDeletionContentFailure', ok: ok('ContentDeleted', 'All content successfully deleted, may be waiting on finalization') },
  { type: 'NamespaceContentRemaining', ok: ok('ContentRemoved', 'All content successfully removed') },
  { type: 'NamespaceFinalizersRemaining', ok: ok('ContentHasNoFinalizers', 'All content-preserving finalizers finished') },
];

/** An empty tally, to count into. */
export function emptyTotals(): ContentTotals {
  return { resources: new Map(), finalizers: new Map(), errors: [] };
}

/** True when nothing is left and nothing failed: the namespace may go. */
export function isDrained(totals: ContentTotals): boolean {
  return totals.resources.size === 0 && totals.errors.length === 0;
}

/**
 * The namespace's conditions after a pass. A condition whose judgement did
 * not change keeps its `lastTransitionTime`, so an unchanged pass writes
 * nothing.
 */
export function namespaceConditions(existing: unknown, totals: ContentTotals, now: string): NamespaceCondition[] {
  const previous = Array.isArray(existing) ? (existing as unknown[]).filter(isPlainObject) : [];
  return conditionTypes.map(({ type, ok: fine }) => {
    const judgement = judge(type, totals) ?? fine;
    const old = previous.find((c) => c.type === type);
    const lastTransitionTime =
      old !== undefined && isDeepStrictEqual({ status: old.status, reason: old.reason, message: old.message }, judgement) && typeof old.lastTransitionTime === 'string'
        ? old.lastTransitionTime
        : now;
    return { type, ...judgement, lastTransitionTime };
  });
}

function judge(type: string, totals: ContentTotals): Judgement | undefined {
  switch (type) {
    case 'NamespaceDeletionContentFailure':
      if (totals.errors.length === 0) return undefined;
      return bad('ContentDeletionFailed', `Failed to delete all resource types, ${totals.errors.length} remaining: ${aggregate(totals.errors)}`);
    case 'NamespaceContentRemaining':
      if (totals.resources.size === 0) return undefined;
      return bad('SomeResourcesRemain', `Some resources are remaining: ${tally(totals.resources, (k, n) => `${k} has ${n} resource instances`)}`);
    case 'NamespaceFinalizersRemaining':
      if (totals.finalizers.size === 0) return undefined;
      return bad('SomeFinalizersRemain', `Some content in the namespace has finalizers remaining: ${tally(totals.finalizers, (k, n) => `${k} in ${n} resource instances`)}`);
    default:
      return undefined;
  }
}

function tally(counts: Map<string, number>, line: (key: string, n: number) => string): string {
  // Sorted, as Kubernetes does, so an unchanged state gives an unchanged message.
  return [...counts]
    .map(([k, n]) => line(k, n))
    .sort()
    .join(', ');
}

/** Formats several errors as apimachinery's `utilerrors.NewAggregate` does. */
function aggregate(errors: string[]): string {
  return errors.length === 1 ? (errors[0] ?? '') : `[${errors.join(', ')}]`;
}

function ok(reason: string, message: string): Judgement {
  return { status: 'False', reason, message };
}

function bad(reason: string, message: string): Judgement {
  return { status: 'True', reason, message };
}
