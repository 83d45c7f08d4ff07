/**
 * The optional JSON bodies of the action subresources (KubeVirt's
 * `StartOptions`, `StopOptions`, `RestartOptions`, `MigrateOptions`,
 * `PauseOptions`, `UnpauseOptions`), parsed into typed values. An empty body
 * means the defaults; a field of the wrong type, or one the kind does not
 * have, is a 400 that names it.
 */
import { badRequest } from '../../api/errors.js';
import { isPlainObject } from '../../api/object.js';
import { describeJson } from '../metadata-shape.js';
import { parseGoDuration } from '../../api/duration.js';

export interface StartOptions {
  paused: boolean;
  dryRun: boolean;
}

export interface StopOptions {
  /** Replaces the VMI's `terminationGracePeriodSeconds` for this stop. */
  gracePeriod: number | undefined;
  dryRun: boolean;
}

export interface RestartOptions {
  /** Only 0 (force restart) is accepted, as in KubeVirt. */
  gracePeriodSeconds: number | undefined;
  dryRun: boolean;
}

export interface MigrateOptions {
  addedNodeSelector: Record<string, string> | undefined;
  dryRun: boolean;
}

/** `PauseOptions`, `UnpauseOptions`, `FreezeUnfreezeTimeout`, and the (empty) bodies of softreboot, reset and unfreeze. */
export interface GuestActionOptions {
  dryRun: boolean;
  /** `FreezeUnfreezeTimeout.unfreezeTimeout` in whole seconds (0: never thaw by itself); freeze only. */
  unfreezeTimeoutSeconds?: number;
}

/** Checks the body is a `kind` object with only `allowed` fields (plus kind and apiVersion). */
function fieldsOf(kind: string, input: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (input === undefined) return {};
  if (!isPlainObject(input)) throw badRequest(`the request body must be a ${kind} object, got ${describeJson(input)}: send {} or leave the body empty for the defaults`);
  if (input.kind !== undefined && input.kind !== kind) {
    throw badRequest(`the request body is a ${JSON.stringify(input.kind)}, but this subresource takes ${kind}: send a ${kind} or an empty body`);
  }
  for (const key of Object.keys(input)) {
    if (key === 'kind' || key === 'apiVersion' || allowed.includes(key)) continue;
    throw badRequest(`${kind} has no field "${key}": it accepts ${allowed.join(', ')}`);
  }
  return input;
}

function booleanField(kind: string, body: Record<string, unknown>, key: string): boolean {
  const value = body[key];
  if (value === undefined || value === null) return false;
  if (typeof value !== 'boolean') throw badRequest(`${kind}.${key} must be true or false, got ${describeJson(value)}`);
  return value;
}

function integerField(kind: string, body: Record<string, unknown>, key: string): number | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw badRequest(`${kind}.${key} must be a whole number of seconds, got ${describeJson(value)}`);
  return value;
}

function dryRunField(kind: string, body: Record<string, unknown>): boolean {
  const value = body.dryRun;
  if (value === undefined || value === null) return false;
  if (!Array.isArray(value) || !value.every((v) => v === 'All')) {
    throw badRequest(`${kind}.dryRun: Unsupported value: ${JSON.stringify(value)}: supported values: "All" (send ["All"] for a dry run)`);
  }
  return value.length > 0;
}

function stringMapField(kind: string, body: Record<string, unknown>, key: string): Record<string, string> | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  const invalid = badRequest(`${kind}.${key} must be a map of label names to string values, got ${describeJson(value)}`);
  if (!isPlainObject(value)) throw invalid;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalid;
    out[k] = v;
  }
  return out;
}

export function parseStartOptions(input: unknown): StartOptions {
  const body = fieldsOf('StartOptions', input, ['paused', 'dryRun']);
  return { paused: booleanField('StartOptions', body, 'paused'), dryRun: dryRunField('StartOptions', body) };
}

export function parseStopOptions(input: unknown): StopOptions {
  const body = fieldsOf('StopOptions', input, ['gracePeriod', 'dryRun']);
  const gracePeriod = integerField('StopOptions', body, 'gracePeriod');
  if (gracePeriod !== undefined && gracePeriod < 0) throw badRequest(`StopOptions.gracePeriod must be 0 or more seconds, got ${gracePeriod}`);
  return { gracePeriod, dryRun: dryRunField('StopOptions', body) };
}

export function parseRestartOptions(input: unknown): RestartOptions {
  const body = fieldsOf('RestartOptions', input, ['gracePeriodSeconds', 'dryRun']);
  const gracePeriodSeconds = integerField('RestartOptions', body, 'gracePeriodSeconds');
  if (gracePeriodSeconds !== undefined && gracePeriodSeconds < 0) throw badRequest('gracePeriod has to be greater or equal to 0');
  if (gracePeriodSeconds !== undefined && gracePeriodSeconds > 0) {
    throw badRequest('For force restart, only gracePeriod=0 is supported for now: omit gracePeriodSeconds for a graceful restart');
  }
  return { gracePeriodSeconds, dryRun: dryRunField('RestartOptions', body) };
}

export function parseMigrateOptions(input: unknown): MigrateOptions {
  const body = fieldsOf('MigrateOptions', input, ['addedNodeSelector', 'dryRun']);
  return { addedNodeSelector: stringMapField('MigrateOptions', body, 'addedNodeSelector'), dryRun: dryRunField('MigrateOptions', body) };
}

/** `kind` is `PauseOptions`, `UnpauseOptions`, … as KubeVirt names the action's body. */
export function parseGuestActionOptions(kind: string, input: unknown): GuestActionOptions {
  if (kind === 'FreezeUnfreezeTimeout') return parseFreezeOptions(input);
  const body = fieldsOf(kind, input, ['dryRun']);
  return { dryRun: dryRunField(kind, body) };
}

/** KubeVirt's `FreezeUnfreezeTimeout`: `unfreezeTimeout`, a duration (`"5m"`, `"30s"`); 5 minutes when left out. */
function parseFreezeOptions(input: unknown): GuestActionOptions {
  const body = fieldsOf('FreezeUnfreezeTimeout', input, ['unfreezeTimeout']);
  const value = body.unfreezeTimeout;
  if (value === undefined || value === null) return { dryRun: false };
  const ms = typeof value === 'string' ? parseGoDuration(value) : undefined;
  if (ms === undefined || ms < 0) {
    throw badRequest(`FreezeUnfreezeTimeout.unfreezeTimeout must be a duration such as "5m" or "30s" (0 for no automatic unfreeze), got ${describeJson(value)}`);
  }
  return { dryRun: false, unfreezeTimeoutSeconds: Math.ceil(ms / 1000) };
}
