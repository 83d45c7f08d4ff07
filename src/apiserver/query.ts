/**
 * Query parameters of resource requests, parsed once into typed options.
 * Bad values are 400s that say which parameter and what is accepted.
 */
import { badRequest } from '../api/errors.js';
import type { FieldValidation } from './admission.js';
import type { PropagationPolicy } from './object-store.js';

export interface RequestQuery {
  dryRun: boolean;
  fieldValidation: FieldValidation;
  fieldManager: string | undefined;
  force: boolean;
  labelSelector: string | undefined;
  fieldSelector: string | undefined;
  limit: number | undefined;
  continueToken: string | undefined;
  resourceVersion: string | undefined;
  resourceVersionMatch: string | undefined;
  watch: boolean;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number | undefined;
  sendInitialEvents: boolean;
  propagationPolicy: PropagationPolicy | undefined;
  includeObject: 'None' | 'Metadata' | 'Object';
}

export function parseQuery(params: URLSearchParams): RequestQuery {
  const dryRun = params.getAll('dryRun');
  for (const v of dryRun) if (v !== 'All') throw badRequest(`dryRun=${v} is not supported: the only accepted value is "All"`);
  const fieldValidation = params.get('fieldValidation') ?? 'Warn';
  if (fieldValidation !== 'Strict' && fieldValidation !== 'Warn' && fieldValidation !== 'Ignore') {
    throw badRequest(`fieldValidation=${fieldValidation} is not valid: use Strict, Warn or Ignore`);
  }
  const propagation = params.get('propagationPolicy') ?? undefined;
  if (propagation !== undefined && propagation !== 'Background' && propagation !== 'Foreground' && propagation !== 'Orphan') {
    throw badRequest(`propagationPolicy=${propagation} is not valid: use Background, Foreground or Orphan`);
  }
  const includeObject = params.get('includeObject') ?? 'Metadata';
  if (includeObject !== 'None' && includeObject !== 'Metadata' && includeObject !== 'Object') {
    throw badRequest(`includeObject=${includeObject} is not valid: use None, Metadata or Object`);
  }
  const orphan = params.get('orphanDependents');
  return {
    dryRun: dryRun.length > 0,
    fieldValidation,
    fieldManager: params.get('fieldManager') ?? undefined,
    force: boolParam(params, 'force'),
    labelSelector: params.get('labelSelector') ?? undefined,
    fieldSelector: params.get('fieldSelector') ?? undefined,
    limit: intParam(params, 'limit'),
    continueToken: nonEmpty(params.get('continue')),
    resourceVersion: params.get('resourceVersion') ?? undefined,
    resourceVersionMatch: nonEmpty(params.get('resourceVersionMatch')),
    watch: boolParam(params, 'watch'),
    allowWatchBookmarks: boolParam(params, 'allowWatchBookmarks'),
    timeoutSeconds: intParam(params, 'timeoutSeconds'),
    sendInitialEvents: boolParam(params, 'sendInitialEvents'),
    propagationPolicy: propagation ?? (orphan === 'true' ? 'Orphan' : undefined),
    includeObject,
  };
}

function nonEmpty(v: string | null): string | undefined {
  return v === null || v === '' ? undefined : v;
}

function boolParam(params: URLSearchParams, name: string): boolean {
  const v = params.get(name);
  if (v === null || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw badRequest(`${name}=${v} is not valid: use true or false`);
}

function intParam(params: URLSearchParams, name: string): number | undefined {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d{1,9}$/.test(v)) throw badRequest(`${name}=${v} is not valid: it must be a non-negative whole number`);
  return Number(v);
}
