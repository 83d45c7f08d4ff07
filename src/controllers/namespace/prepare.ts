/**
 * What the API server sets on every Namespace it admits, as Kubernetes'
 * namespace strategy does: the `kubernetes` spec finalizer, which keeps a
 * deleted namespace until the namespace controller has emptied it, and the
 * phase.
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';

/** The spec finalizer the namespace controller owns. */
export const namespaceFinalizer = 'kubernetes';

/** `status.phase` of a namespace that accepts content. */
export const phaseActive = 'Active';

/** `status.phase` of a namespace being emptied before it goes. */
export const phaseTerminating = 'Terminating';

/**
 * Sets a Namespace's server-owned fields in place, for admission. While the
 * namespace is not being deleted it carries the `kubernetes` finalizer and is
 * `Active`; once `deleting`, it is `Terminating` and its finalizers are left
 * alone so the namespace controller can remove its own.
 */
export function prepareNamespace(obj: KObject, deleting: boolean): void {
  const status = isPlainObject(obj.status) ? obj.status : {};
  obj.status = { ...status, phase: deleting ? phaseTerminating : phaseActive };
  if (deleting) return;
  if (obj.spec === undefined || obj.spec === null) obj.spec = {};
  const spec = obj.spec;
  // A malformed spec is left for validation to reject rather than silently replaced.
  if (!isPlainObject(spec)) return;
  if (spec.finalizers === undefined || spec.finalizers === null) spec.finalizers = [];
  const finalizers = spec.finalizers;
  if (Array.isArray(finalizers) && !finalizers.includes(namespaceFinalizer)) finalizers.push(namespaceFinalizer);
}
