/**
 * Errors of the QMP client, one class with a stable `code` so callers can
 * branch on what happened without parsing messages.
 */

export type QmpErrorCode =
  /** The socket never appeared or refused us within the time allowed. */
  | 'QmpConnectFailed'
  /** No greeting or reply arrived in time. */
  | 'QmpTimeout'
  /** The connection closed (QEMU exited, or `close()` was called) before a reply. */
  | 'QmpClosed'
  /** QEMU sent something that does not match the QMP schema. */
  | 'QmpProtocol'
  /** QEMU answered the command with an error (`errorClass`, e.g. `CommandNotFound`, `GenericError`). */
  | 'QmpCommandFailed';

export class QmpError extends Error {
  readonly code: QmpErrorCode;
  /** QEMU's error class, for `QmpCommandFailed`. */
  readonly errorClass: string | undefined;

  constructor(code: QmpErrorCode, message: string, options: { cause?: unknown; errorClass?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'QmpError';
    this.code = code;
    this.errorClass = options.errorClass;
  }
}
