/**
 * Errors of the guest agent client, one class with a stable `code` so
 * callers branch on what happened (no agent, a slow one, a refusal)
 * without parsing messages.
 */

export type GuestAgentErrorCode =
  /** The channel's socket could not be opened (QEMU gone or not started). */
  | 'GuestAgentConnectFailed'
  /** No answer in time: no agent runs in the guest, or it is stuck. */
  | 'GuestAgentTimeout'
  /** The connection closed before the answer. */
  | 'GuestAgentClosed'
  /** The agent sent something that is not the reply the command has. */
  | 'GuestAgentProtocol'
  /** The agent answered with an error (`errorClass`, e.g. `CommandNotFound`, `GenericError`). */
  | 'GuestAgentCommandFailed';

export class GuestAgentError extends Error {
  readonly code: GuestAgentErrorCode;
  /** The agent's error class, for `GuestAgentCommandFailed`. */
  readonly errorClass: string | undefined;

  constructor(code: GuestAgentErrorCode, message: string, options: { cause?: unknown; errorClass?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GuestAgentError';
    this.code = code;
    this.errorClass = options.errorClass;
  }
}
