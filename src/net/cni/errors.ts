/**
 * Why attaching or detaching a secondary network failed, with a stable code
 * the agent can act on: a missing or broken NetworkAttachmentDefinition is
 * the user's to fix; a plugin's own refusal is passed on verbatim, so the
 * VMI shows the message the plugin wrote, not ours.
 */

/** Stable codes for CNI failures. */
export type CniFailure =
  /** The NetworkAttachmentDefinition (or the conf file Multus falls back to) does not exist. */
  | 'NetworkNotFound'
  /** The CNI configuration is not valid JSON, or lacks what the spec requires. */
  | 'InvalidConfig'
  /** A plugin binary named by `type` is not in the CNI path. */
  | 'PluginNotFound'
  /** A plugin ran and reported an error (the spec's `{code, msg, details}`), or died. */
  | 'PluginFailed'
  /** A plugin did not answer within the timeout and was killed. */
  | 'PluginTimeout'
  /** A plugin answered with something that is not a CNI result. */
  | 'InvalidResult';

/** The error a CNI plugin reports on stdout, as the spec defines it. */
export interface PluginErrorReport {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

/** A CNI operation that failed; `message` says what, why and what to do. */
export class CniError extends Error {
  /** The network (`namespace/name` of the NAD, or the CNI network name) the failure is about. */
  readonly network: string | undefined;
  /** The plugin `type` that failed, when one did. */
  readonly plugin: string | undefined;
  /** The plugin's own error report, when it wrote one. */
  readonly report: PluginErrorReport | undefined;

  constructor(
    readonly failure: CniFailure,
    message: string,
    options: { cause?: unknown; network?: string; plugin?: string; report?: PluginErrorReport } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CniError';
    this.network = options.network;
    this.plugin = options.plugin;
    this.report = options.report;
  }
}

/** True when `err` is an abort (the caller's signal fired), not a failure of the plugin. */
export function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR');
}
