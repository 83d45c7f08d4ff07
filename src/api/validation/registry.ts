/**
 * Kind-specific admission: the checks KubeVirt's and CDI's validating
 * webhooks make, looked up by group and kind. Runs after schema validation,
 * defaulting and pruning, on objects that passed their schema.
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { validateCalicoNetworkSet, validateCalicoPolicy } from './calico-policy.js';
import { validateDataVolume } from './datavolume.js';
import { validateMigration } from './migration.js';
import { validateNetworkPolicy } from './networkpolicy.js';
import { validatePersistentVolumeClaim } from './persistentvolumeclaim.js';
import { validatePersistentVolume } from './persistentvolume.js';
import { validatePool, validateReplicaSet } from './replicas.js';
import type { WriterOptions } from './virtualmachine.js';
import { validateVirtualMachine } from './virtualmachine.js';
import { validateVirtualMachineInstance } from './virtualmachineinstance.js';
import { validateVirtualMachineClone } from './vmclone.js';
import { validateService } from './service.js';
import { validateNetworkAttachmentDefinition } from './network-attachment-definition.js';
import { validateVirtualMachineRestore, validateVirtualMachineSnapshot } from './vmsnapshot.js';

type KindValidator = (obj: KObject, old: KObject | undefined, options: WriterOptions) => FieldError[];

const validators = new Map<string, KindValidator>([
  ['kubevirt.io/VirtualMachine', (obj, _old, options) => validateVirtualMachine(obj, options)],
  ['kubevirt.io/VirtualMachineInstance', validateVirtualMachineInstance],
  ['kubevirt.io/VirtualMachineInstanceMigration', validateMigration],
  ['kubevirt.io/VirtualMachineInstanceReplicaSet', (obj) => validateReplicaSet(obj)],
  ['pool.kubevirt.io/VirtualMachinePool', validatePool],
  ['cdi.kubevirt.io/DataVolume', (obj, old) => validateDataVolume(obj, old)],
  ['/PersistentVolumeClaim', (obj, old) => validatePersistentVolumeClaim(obj, old)],
  ['/PersistentVolume', validatePersistentVolume],
  ['/Service', (obj, old) => validateService(obj, old)],
  ['k8s.cni.cncf.io/NetworkAttachmentDefinition', (obj) => validateNetworkAttachmentDefinition(obj)],
  ['snapshot.kubevirt.io/VirtualMachineSnapshot', (obj, old) => validateVirtualMachineSnapshot(obj, old)],
  ['snapshot.kubevirt.io/VirtualMachineRestore', (obj, old) => validateVirtualMachineRestore(obj, old)],
  ['clone.kubevirt.io/VirtualMachineClone', (obj) => validateVirtualMachineClone(obj)],
  ['networking.k8s.io/NetworkPolicy', (obj) => validateNetworkPolicy(obj)],
  ['crd.projectcalico.org/GlobalNetworkPolicy', (obj) => validateCalicoPolicy(obj)],
  ['crd.projectcalico.org/NetworkPolicy', (obj) => validateCalicoPolicy(obj)],
  ['crd.projectcalico.org/GlobalNetworkSet', (obj) => validateCalicoNetworkSet(obj)],
  ['crd.projectcalico.org/NetworkSet', (obj) => validateCalicoNetworkSet(obj)],
]);

/**
 * The admission errors for `obj` of `group`/`kind` (on update, `old` is the
 * stored object); empty when it is admitted or the kind has no extra checks.
 * `options.writer` says who writes (see `WriterOptions`): Vireo's own
 * controllers may do what KubeVirt allows only its service accounts to do.
 */
export function validateKind(group: string, kind: string, obj: KObject, old?: KObject, options: WriterOptions = {}): FieldError[] {
  const validate = validators.get(`${group}/${kind}`);
  return validate === undefined ? [] : validate(obj, old, options);
}

/** True when `group`/`kind` has kind-specific admission checks. */
export function hasKindValidation(group: string, kind: string): boolean {
  return validators.has(`${group}/${kind}`);
}
