/**
 * Turning a non-2xx answer back into the ApiError the server meant: the
 * `Status` body's reason, message and details, or a reason from the HTTP
 * code when the body is not a Status. Shared by the REST client and the
 * WebSocket dialer.
 */
import { ApiError } from '../api/errors.js';
import type { ApiErrorDetails, StatusReason } from '../api/errors.js';
import { isPlainObject } from '../api/object.js';

const reasons: ReadonlySet<string> = new Set<StatusReason>([
  'BadRequest', 'Unauthorized', 'Forbidden', 'NotFound', 'AlreadyExists', 'Conflict', 'Gone', 'Expired', 'Invalid', 'MethodNotAllowed',
  'NotAcceptable', 'UnsupportedMediaType', 'RequestEntityTooLarge', 'Timeout', 'TooManyRequests', 'InternalError', 'ServiceUnavailable',
]);

function isReason(value: unknown): value is StatusReason {
  return typeof value === 'string' && reasons.has(value);
}

function reasonForCode(code: number): StatusReason {
  if (code === 400) return 'BadRequest';
  if (code === 401) return 'Unauthorized';
  if (code === 403) return 'Forbidden';
  if (code === 404) return 'NotFound';
  if (code === 409) return 'Conflict';
  if (code === 503) return 'ServiceUnavailable';
  return code >= 500 ? 'InternalError' : 'BadRequest';
}

/** The ApiError a non-2xx answer (a `Status` body, or anything else) stands for. */
export function errorFromResponse(code: number, body: string): ApiError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  if (isPlainObject(parsed) && parsed.kind === 'Status' && typeof parsed.message === 'string') {
    const details = isPlainObject(parsed.details) ? { details: parsed.details as ApiErrorDetails } : {};
    return new ApiError(isReason(parsed.reason) ? parsed.reason : reasonForCode(code), parsed.message, details);
  }
  const text = body.trim().slice(0, 200);
  return new ApiError(reasonForCode(code), `the server answered HTTP ${code}${text === '' ? '' : `: ${text}`}`);
}

