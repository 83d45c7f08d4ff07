/**
 * API failures as a VM command's user needs them: "VM x not found in
 * namespace y", "VMI is not running" with how to start it, and KubeVirt's
 * refusals without the `Operation cannot be fulfilled on …` preamble. The
 * error class keeps the exit code (src/cli/errors.ts).
 */
import { ApiError } from '../../api/errors.js';
import type { HttpClient } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { CliError } from '../errors.js';

export interface Subject {
  kind: 'VM' | 'VMI';
  name: string;
  namespace: string;
  /** What was attempted, e.g. "start VM vm1". */
  action: string;
}

/** `Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": VM is already running` → `VM is already running` */
export function reasonText(message: string): string {
  return message.replace(/^Operation cannot be fulfilled on [^:]+: /, '');
}

/** The error to report for `err`; asks the server whether a missing VMI has a stopped VM behind it. */
export async function explain(err: unknown, subject: Subject, client: HttpClient): Promise<Error> {
  if (!(err instanceof ApiError)) return err instanceof Error ? err : new Error(String(err));
  if (err.reason === 'NotFound') {
    if (subject.kind === 'VMI' && (await client.tryGet(resources.virtualMachines, subject.namespace, subject.name).catch(() => undefined)) !== undefined) {
      return new ApiError('Conflict', `VMI is not running: VM ${subject.name} in namespace ${subject.namespace} is stopped; start it with: vireo start ${subject.name} -n ${subject.namespace}`);
    }
    return new CliError('not-found', `${subject.kind} ${subject.name} not found in namespace ${subject.namespace}`);
  }
  if (err.reason === 'ServiceUnavailable') return new CliError('unavailable', `cannot ${subject.action}: ${err.message}`, err);
  return new ApiError(err.reason, `cannot ${subject.action}: ${reasonText(err.message)}`, { cause: err });
}

/** Throws the ApiError a non-2xx answer stands for (for `Client.raw` results). */
export function expectStatus(response: { status: number; body: string }, expected: number, parse: (code: number, body: string) => ApiError): void {
  if (response.status !== expected) throw parse(response.status, response.body);
}
