/** CLI errors and their exit codes (the CLI's side of the error taxonomy). */
import { ApiError } from '../api/errors.js';

export type CliErrorCode = 'usage' | 'not-found' | 'unavailable';

const exitCodes: Record<CliErrorCode, number> = { usage: 2, 'not-found': 3, unavailable: 4 };

export class CliError extends Error {
  constructor(
    readonly code: CliErrorCode,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'CliError';
  }
}

export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return exitCodes[err.code];
  if (err instanceof ApiError) return err.isUserError ? 5 : 6;
  // Node's parseArgs reports bad flags with this code.
  if (err instanceof Error && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true) return exitCodes.usage;
  return 1;
}
