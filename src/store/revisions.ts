/**
 * Checks on the revisions callers pass in, shared by the backends so that
 * they refuse the same requests with the same errors.
 */
import { StoreError } from './types.js';
import type { ListOptions } from './types.js';

/** A list request with defaults resolved: `limit` 0 means no limit. */
export interface ResolvedList {
  /** The revision to read at. */
  revision: number;
  /** True when `revision` is the latest, so the current table answers it. */
  latest: boolean;
  startKey: string | undefined;
  limit: number;
}

/**
 * Resolves list options against the store's revisions. A revision below the
 * compacted one is `Compacted`; one above the latest is a caller bug (the
 * revision was never handed out), so it is a `RangeError`.
 */
export function resolveList(options: ListOptions, current: number, compacted: number): ResolvedList {
  const asked = options.revision ?? 0;
  const limit = options.limit ?? 0;
  if (!isRevision(asked)) throw new RangeError(`list revision must be a non-negative integer, got ${asked}`);
  if (!isRevision(limit)) throw new RangeError(`list limit must be a non-negative integer, got ${limit}`);
  if (asked > current) {
    throw new RangeError(`cannot list at revision ${asked}: the latest revision is ${current}`);
  }
  if (asked !== 0 && asked < compacted) throw compactedError('list', asked, compacted);
  const revision = asked === 0 ? current : asked;
  return { revision, latest: revision === current, startKey: options.startKey, limit };
}

/** Refuses a watch whose history is gone. Resuming from the compacted revision itself is fine. */
export function checkWatchStart(afterRevision: number, compacted: number): void {
  if (!isRevision(afterRevision)) {
    throw new RangeError(`watch afterRevision must be a non-negative integer, got ${afterRevision}`);
  }
  if (afterRevision < compacted) throw compactedError('watch from', afterRevision, compacted);
}

/** Refuses to compact revisions that were never written. */
export function checkCompactTarget(revision: number, current: number): void {
  if (!isRevision(revision)) throw new RangeError(`compact revision must be a non-negative integer, got ${revision}`);
  if (revision > current) {
    throw new RangeError(`cannot compact to revision ${revision}: the latest revision is ${current}`);
  }
}

/** The error every operation on a closed store fails with. */
export function closedError(): StoreError {
  return new StoreError('Unavailable', 'the store is closed; open it again to use it');
}

/** The error for reading or watching below the compacted revision. */
export function compactedError(verb: string, revision: number, compacted: number): StoreError {
  return new StoreError(
    'Compacted',
    `cannot ${verb} revision ${revision}: history up to revision ${compacted} was compacted; start again from the latest revision`,
    { compactRevision: compacted },
  );
}

/** A revision, limit or count: a non-negative safe integer. */
export function isRevision(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}
