/**
 * Crash-loop tracking (KubeVirt's `status.startFailure`): a VMI that ends
 * before it ever ran counts as a failed start; consecutive failed starts
 * delay the next start by a growing backoff, and reaching Running clears
 * the count.
 */
import type { KObject } from '../../api/object.js';
import { numberAt, recordAt, stringAt } from '../../api/kinds/read.js';
import { isFinal, timestamp, wasRunning } from '../vmi/index.js';
import type { RunStrategy } from './run-strategy.js';

/** `status.startFailure`. */
export interface StartFailure {
  consecutiveFailCount: number;
  lastFailedVMIUID: string;
  retryAfterTimestamp: string;
}

/** How the delay grows (KubeVirt: 10 s × failures², plus up to half again as jitter, at most 5 min). */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** [0, 1), for the jitter. */
  random: () => number;
}

/** Strategies that start VMIs by themselves, and so can loop. */
const restarting: readonly RunStrategy[] = ['Always', 'RerunOnFailure', 'Once'];

/** True when `strategy` restarts by itself, so a start failure can become a crash loop. */
export function isRestartingStrategy(strategy: RunStrategy | undefined): boolean {
  return strategy !== undefined && restarting.includes(strategy);
}

/** The recorded start failure, if well-formed. */
export function startFailureOf(vm: KObject): StartFailure | undefined {
  const sf = recordAt(vm, 'status', 'startFailure');
  if (sf === undefined) return undefined;
  return {
    consecutiveFailCount: numberAt(sf, 'consecutiveFailCount') ?? 0,
    lastFailedVMIUID: stringAt(sf, 'lastFailedVMIUID') ?? '',
    retryAfterTimestamp: stringAt(sf, 'retryAfterTimestamp') ?? '',
  };
}

/** The delay before start number `failures + 1`, in ms. */
export function backoffDelayMs(failures: number, options: BackoffOptions): number {
  const delay = options.baseMs * Math.max(1, failures) ** 2;
  const jitter = Math.floor(options.random() * (delay / 2 + 1));
  return Math.min(options.maxMs, delay + jitter);
}

/**
 * The start failure after seeing `vmi` (KubeVirt's `syncStartFailureStatus`):
 * cleared once a VMI ran or when the strategy does not restart by itself;
 * counted once per VMI that ended without running.
 */
export function nextStartFailure(
  current: StartFailure | undefined,
  vmi: KObject | undefined,
  strategy: RunStrategy | undefined,
  now: number,
  options: BackoffOptions,
): StartFailure | undefined {
  if (wasRunning(vmi) || !isRestartingStrategy(strategy)) return undefined;
  if (vmi === undefined || !isFinal(vmi)) return current;
  const uid = vmi.metadata.uid ?? '';
  if (current !== undefined && current.lastFailedVMIUID === uid) return current;
  const count = (current?.consecutiveFailCount ?? 0) + 1;
  // Timestamps have whole seconds: round up, so the retry never comes before its delay.
  const retryAfter = Math.ceil((now + backoffDelayMs(count, options)) / 1000) * 1000;
  return { consecutiveFailCount: count, lastFailedVMIUID: uid, retryAfterTimestamp: timestamp(retryAfter) };
}

/** Milliseconds left before the next start may happen (0 when it may now). */
export function backoffLeftMs(failure: StartFailure | undefined, now: number): number {
  if (failure === undefined) return 0;
  const retryAfter = Date.parse(failure.retryAfterTimestamp);
  return Number.isNaN(retryAfter) ? 0 : Math.max(0, retryAfter - now);
}
