/**
 * One error taxonomy for the whole project. Every error a user can cause is
 * an `ApiError` with a stable `code`; it maps once to a Kubernetes `Status`
 * (see `toStatus`) and once to a CLI exit code. Anything else that escapes is
 * a system error and becomes a 500 with a generic message.
 */
import type { Status, StatusCause } from './object.js';

/** Kubernetes `Status.reason` values we produce. */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'Timeout'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable';

const httpCodeFor: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Expired: 410,
  Invalid: 422,
  MethodNotAllowed: 405,
  NotAcceptable: 406,
  UnsupportedMediaType: 415,
  RequestEntityTooLarge: 413,
  Timeout: 504,
  TooManyRequests: 429,
  InternalError: 500,
  ServiceUnavailable: 503,
};

export interface ApiErrorDetails {
  name?: string;
  group?: string;
  /** The resource (NotFound, Conflict, Forbidden) or the Kind (Invalid), as Kubernetes does. */
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

export interface ApiErrorOptions {
  details?: ApiErrorDetails;
  cause?: unknown;
}

/** An error a client caused or must know about, carrying its Kubernetes reason. */
export class ApiError extends Error {
  readonly reason: StatusReason;
  readonly httpCode: number;
  readonly details: ApiErrorDetails | undefined;

  constructor(reason: StatusReason, message: string, options: ApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ApiError';
    this.reason = reason;
    this.httpCode = httpCodeFor[reason];
    this.details = options.details;
  }

  /** True for errors the client caused (4xx). */
  get isUserError(): boolean {
    return this.httpCode < 500;
  }
}

/** The resource as Kubernetes names it in messages: `virtualmachines.kubevirt.io`, or `configmaps` for core. */
export function qualifiedResource(resource: string, group: string): string {
  return group === '' ? resource : `${resource}.${group}`;
}

export function notFound(resource: string, group: string, name: string): ApiError {
  return new ApiError('NotFound', `${qualifiedResource(resource, group)} "${name}" not found`, {
    details: { name, group, kind: resource },
  });
}

export function alreadyExists(resource: string, group: string, name: string): ApiError {
  return new ApiError('AlreadyExists', `${qualifiedResource(resource, group)} "${name}" already exists`, {
    details: { name, group, kind: resource },
  });
}

export function conflict(resource: string, group: string, name: string, why: string): ApiError {
  return new ApiError(
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(resource, group)} "${name}": ${why}`,
    { details: { name, group, kind: resource } },
  );
}

export function badRequest(message: string, cause?: unknown): ApiError {
  return new ApiError('BadRequest', message, cause === undefined ? {} : { cause });
}

/** A field-level validation failure; `kind` is the Kind, e.g. `VirtualMachine`. */
export interface FieldError {
  field: string;
  /** `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`, `FieldValueForbidden`, `FieldValueDuplicate`, `FieldValueTypeInvalid`. */
  reason: string;
  message: string;
}

export function invalid(kind: string, group: string, name: string, errors: FieldError[]): ApiError {
  const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
  const list = errors.map((e) => `${e.field}: ${e.message}`);
  const summary = list.length === 1 ? (list[0] ?? '') : `[${list.join(', ')}]`;
  return new ApiError('Invalid', `${qualifiedKind} "${name}" is invalid: ${summary}`, {
    details: {
      name,
      group,
      kind,
      causes: errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field })),
    },
  });
}

export function statusOf(reason: StatusReason, code: number, message: string, details?: ApiErrorDetails): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details !== undefined) status.details = details;
  return status;
}

/** Maps any thrown value to a `Status`. Unknown errors become a 500 that hides internals. */
export function toStatus(err: unknown): Status {
  if (err instanceof ApiError) return statusOf(err.reason, err.httpCode, err.message, err.details);
  return statusOf('InternalError', 500, 'Internal error occurred: the server failed to handle the request; see the server log');
}
