/**
 * Why an import failed, in a form the runner can act on: `retryable`
 * failures (the network, a 5xx, a download cut short) are tried again with
 * backoff; the rest (a 404, a checksum mismatch, a corrupt image, an image
 * larger than its volume) fail the import until the DataVolume changes.
 */

/** Stable codes for import failures; `reason` on the PVC and the DataVolume's Running condition is CDI's `Error`. */
export type ImportFailure =
  | 'Unreachable'
  | 'HttpError'
  | 'NotFound'
  | 'Unauthorized'
  | 'ChecksumMismatch'
  | 'BadImage'
  | 'TooLarge'
  | 'Unsupported'
  | 'NoSpace'
  /** An upload whose client went away (or sent less than it announced) before the image was complete. */
  | 'Interrupted'
  | 'Registry'
  | 'Internal';

/** An import that did not complete; the message says what, why and what to do. */
export class ImportError extends Error {
  constructor(
    readonly failure: ImportFailure,
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImportError';
  }
}

/** True when `err` is an abort (the signal fired), not a failure of the import. */
export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR');
}
