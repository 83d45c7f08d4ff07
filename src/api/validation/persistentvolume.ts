/**
 * Admission of PersistentVolume updates, as Kubernetes has it: a volume's
 * source (`spec.local`, `spec.hostPath`, …) and its `spec.nodeAffinity`
 * are immutable for users. Vireo's own controllers may change them: the
 * migration controller moves a local volume to the node its migrated
 * guest now writes it on (src/controllers/migration/claims.ts).
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { recordAt } from '../kinds/read.js';
import { forbidden, invalid } from './field-error.js';
import type { WriterOptions } from './virtualmachine.js';

/** The PersistentVolume spec fields that name where its data is (Kubernetes' PersistentVolumeSource, those Vireo knows). */
const sourceFields = ['local', 'hostPath', 'nfs', 'csi', 'iscsi', 'rbd', 'cephfs', 'fc', 'flexVolume'];

/** The admission errors of a PersistentVolume (`old`: the stored volume of an update). */
export function validatePersistentVolume(pv: KObject, old: KObject | undefined, options: WriterOptions = {}): FieldError[] {
  if (old === undefined || options.writer === 'controller') return [];
  const errors: FieldError[] = [];
  const spec = recordAt(pv, 'spec') ?? {};
  const before = recordAt(old, 'spec') ?? {};
  if (!sourceFields.every((field) => isDeepStrictEqual(spec[field], before[field]))) {
    errors.push(forbidden('spec.persistentvolumesource', 'Forbidden: spec.persistentvolumesource is immutable after creation: the volume\'s data is where it was made; a live migration of its VMI moves a local volume'));
  }
  if (before.nodeAffinity !== undefined && !isDeepStrictEqual(spec.nodeAffinity, before.nodeAffinity)) {
    errors.push(invalid('spec.nodeAffinity', 'Invalid value: field is immutable: a local volume stays on its node; a live migration of its VMI moves it'));
  }
  return errors;
}
