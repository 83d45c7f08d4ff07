/**
 * Why a QEMU command line could not be built. An `InvalidDomain` error is
 * the user's (the VMI asks for something impossible); `UnpreparedInput` is
 * the agent's (it did not prepare a file the spec needs). Both are
 * `ApiError`s, so `toStatus` maps them once and the agent can copy the
 * message into the VMI's failure condition.
 */
import { ApiError } from '../../api/errors.js';

/** Stable codes of `DomainConfigError`. */
export type DomainConfigErrorCode = 'InvalidDomain' | 'UnpreparedInput';

/** A VMI spec (or the agent's preparation of it) that cannot become a QEMU command line. */
export class DomainConfigError extends ApiError {
  readonly code: DomainConfigErrorCode;
  /** The field path the error is about, e.g. `spec.domain.memory.guest`. */
  readonly field: string;

  constructor(code: DomainConfigErrorCode, field: string, message: string) {
    super(code === 'InvalidDomain' ? 'Invalid' : 'InternalError', message, {
      details: { causes: [{ reason: code === 'InvalidDomain' ? 'FieldValueInvalid' : 'InternalError', message, field }] },
    });
    this.name = 'DomainConfigError';
    this.code = code;
    this.field = field;
  }
}

/** The VMI asks for something QEMU cannot do; `field` names where. */
export function invalidDomain(field: string, message: string): DomainConfigError {
  return new DomainConfigError('InvalidDomain', field, `${field}: ${message}`);
}

/** The agent did not hand over a file or path the spec needs. */
export function unpreparedInput(field: string, message: string): DomainConfigError {
  return new DomainConfigError('UnpreparedInput', field, `${field}: ${message}`);
}
