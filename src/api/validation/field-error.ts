/**
 * Field errors as KubeVirt's and CDI's admission webhooks report them: a
 * cause type, the JSON path of the offending field, and a message that says
 * what is wrong, why, and what to do about it.
 */
import type { FieldError } from '../errors.js';

/** The value is present but wrong. */
export function invalid(field: string, message: string): FieldError {
  return { field, reason: 'FieldValueInvalid', message };
}

/** A value that must be present is missing. */
export function required(field: string, message: string): FieldError {
  return { field, reason: 'FieldValueRequired', message };
}

/** The value repeats one that must be unique. */
export function duplicate(field: string, message: string): FieldError {
  return { field, reason: 'FieldValueDuplicate', message };
}

/** The value is one the server does not support. */
export function notSupported(field: string, message: string): FieldError {
  return { field, reason: 'FieldValueNotSupported', message };
}

/** The field may not be set, or not changed, by this request. */
export function forbidden(field: string, message: string): FieldError {
  return { field, reason: 'FieldValueForbidden', message };
}
