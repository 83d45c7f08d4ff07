/**
 * VirtualMachine admission as KubeVirt's `vms-admitter.go` and its
 * instancetype mutator do it: a template, one way to say whether it runs,
 * instancetype/preference matchers, DataVolume templates that the template
 * uses, and everything a VMI spec must satisfy.
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { isDNS1123Subdomain, quote } from '../names.js';
import { numberAt, recordAt, recordsAt, stringAt, stringMapAt } from '../kinds/read.js';
import { invalid, notSupported, required } from './field-error.js';
import { validateDataVolumeSpec } from './datavolume.js';
import { parseQuantity } from './quantity.js';
import { validateReservedLabels, validateVmiSpec } from './vmi-spec.js';

const runStrategies = ['Always', 'RerunOnFailure', 'Manual', 'Halted', 'Once'];
const instancetypeKinds = ['virtualmachineinstancetype', 'virtualmachineinstancetypes', 'virtualmachineclusterinstancetype', 'virtualmachineclusterinstancetypes'];
const preferenceKinds = ['virtualmachinepreference', 'virtualmachinepreferences', 'virtualmachineclusterpreference', 'virtualmachineclusterpreferences'];

/**
 * Who is writing, for the checks KubeVirt applies to end users but not to
 * its own service accounts. `controller`: Vireo's own components, allowed
 * what KubeVirt's are (reserved labels, hotplug, migration priority).
 * `user`: an end user, held to every rule. Unknown (absent): the user-only
 * rules about reserved labels and priorities are skipped, so in-process
 * controllers keep working, while a VMI's spec stays frozen.
 */
export interface WriterOptions {
  writer?: 'user' | 'controller';
}

/** Validates a VirtualMachine (the spec is re-validated as a whole on every update, as KubeVirt does). */
export function validateVirtualMachine(vm: KObject, options: WriterOptions = {}): FieldError[] {
  if (vm.metadata.deletionTimestamp !== undefined) return [];
  return validateVirtualMachineSpec('spec', recordAt(vm, 'spec') ?? {}, options);
}

/** Checks a VirtualMachine spec found at `path` (`spec`, or a pool's `spec.virtualMachineTemplate.spec`). */
export function validateVirtualMachineSpec(path: string, spec: Record<string, unknown>, options: WriterOptions = {}): FieldError[] {
  const template = recordAt(spec, 'template');
  if (template === undefined) {
    return [required(`${path}.template`, 'missing virtual machine template: spec.template describes the VirtualMachineInstance to run; add one with at least domain, and volumes for its disks')];
  }
  const templateSpec = recordAt(template, 'spec') ?? {};
  return [
    ...(options.writer !== 'user' ? [] : validateReservedLabels(`${path}.template.metadata`, stringMapAt(template, 'metadata', 'labels'))),
    ...validateVmiSpec(`${path}.template.spec`, templateSpec),
    ...validateDataVolumeTemplates(path, spec, templateSpec),
    ...validateRunStrategy(path, spec),
    ...validateLiveUpdate(path, templateSpec),
    ...validateMatcher(path, spec, 'instancetype', instancetypeKinds, templateSpec),
    ...validateMatcher(path, spec, 'preference', preferenceKinds, templateSpec),
  ];
}

function validateRunStrategy(path: string, spec: Record<string, unknown>): FieldError[] {
  const running = spec['running'];
  const strategy = spec['runStrategy'];
  if (running !== undefined && running !== null && strategy !== undefined && strategy !== null) {
    return [invalid(`${path}.running`, 'Running and RunStrategy are mutually exclusive. Note that Running is deprecated, please use RunStrategy instead (running: true is runStrategy: Always, running: false is Halted)')];
  }
  if ((running === undefined || running === null) && (strategy === undefined || strategy === null)) {
    return [required(`${path}.runStrategy`, `RunStrategy must be specified: set it to one of ${runStrategies.join(', ')} (Halted creates the VM stopped)`)];
  }
  if (typeof strategy === 'string' && !runStrategies.includes(strategy)) {
    const why = strategy === 'WaitAsReceiver' ? ': it serves cross-cluster (decentralized) live migration, which is not enabled' : '';
    return [invalid(`${path}.runStrategy`, `Invalid RunStrategy (${strategy})${why}; use one of ${runStrategies.join(', ')}`)];
  }
  return [];
}

function validateDataVolumeTemplates(path: string, spec: Record<string, unknown>, templateSpec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const referenced = new Set<string>();
  for (const volume of recordsAt(templateSpec, 'volumes')) {
    const claim = stringAt(volume, 'persistentVolumeClaim', 'claimName');
    const dataVolume = stringAt(volume, 'dataVolume', 'name');
    if (claim !== undefined) referenced.add(claim);
    if (dataVolume !== undefined) referenced.add(dataVolume);
  }
  recordsAt(spec, 'dataVolumeTemplates').forEach((dvt, i) => {
    const p = `${path}.dataVolumeTemplates[${i}]`;
    const name = stringAt(dvt, 'metadata', 'name') ?? '';
    if (name === '') {
      errors.push(required(`${p}.metadata.name`, `'name' field must not be empty for DataVolumeTemplate entry ${p}: it names the DataVolume created for the VM`));
      return;
    }
    for (const message of isDNS1123Subdomain(name)) errors.push(invalid(`${p}.metadata.name`, `DataVolume name ${quote(name)} is not valid: ${message}`));
    const dvErrors = validateDataVolumeSpec(`${p}.spec`, recordAt(dvt, 'spec') ?? {});
    errors.push(...dvErrors);
    if (dvErrors.length === 0 && !referenced.has(name)) {
      errors.push(
        required(p, `DataVolumeTemplate entry ${p} must be referenced in the VMI template's 'volumes' list: add a volume with dataVolume: {name: ${quote(name)}} to ${path}.template.spec.volumes, or remove the template`),
      );
    }
  });
  return errors;
}

function validateLiveUpdate(path: string, templateSpec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const cpu = `${path}.template.spec.domain.cpu`;
  const sockets = numberAt(templateSpec, 'domain', 'cpu', 'sockets') ?? 0;
  const maxSockets = numberAt(templateSpec, 'domain', 'cpu', 'maxSockets') ?? 0;
  if (sockets !== 0 && maxSockets !== 0 && sockets > maxSockets) {
    errors.push(invalid(`${cpu}.sockets`, `Number of sockets in CPU topology (${sockets}) is greater than the maximum sockets allowed (${maxSockets}): raise maxSockets or lower sockets`));
  }
  const guest = parseQuantity(recordAt(templateSpec, 'domain', 'memory')?.['guest']);
  const maxGuest = parseQuantity(recordAt(templateSpec, 'domain', 'memory')?.['maxGuest']);
  if (guest !== undefined && maxGuest !== undefined && guest > maxGuest) {
    errors.push(invalid(`${path}.template.spec.domain.memory.guest`, 'Guest memory is greater than the configured maxGuest: memory can be hot-plugged up to maxGuest only; raise maxGuest or lower guest'));
  }
  return errors;
}

function validateMatcher(
  path: string,
  spec: Record<string, unknown>,
  field: 'instancetype' | 'preference',
  kinds: string[],
  templateSpec: Record<string, unknown>,
): FieldError[] {
  const matcher = recordAt(spec, field);
  if (matcher === undefined) return [];
  const p = `${path}.${field}`;
  const label = field === 'instancetype' ? 'InstancetypeMatcher' : 'PreferenceMatcher';
  const name = stringAt(matcher, 'name') ?? '';
  const kind = stringAt(matcher, 'kind') ?? '';
  const infer = stringAt(matcher, 'inferFromVolume') ?? '';
  const errors: FieldError[] = [];
  if (name === '' && infer === '') errors.push(required(p, `Either Name or InferFromVolume should be provided within the ${label}`));
  if (infer !== '') {
    if (name !== '') errors.push(notSupported(`${p}.name`, 'Name already set, should be cleared before setting inferFromVolume'));
    if (kind !== '') errors.push(notSupported(`${p}.kind`, 'Kind already set, should be cleared before setting inferFromVolume'));
    if (!recordsAt(templateSpec, 'volumes').some((v) => stringAt(v, 'name') === infer)) {
      errors.push(invalid(`${p}.inferFromVolume`, `inferFromVolume names volume ${quote(infer)}, which is not in ${path}.template.spec.volumes`));
    }
  }
  if (kind !== '' && !kinds.includes(kind.toLowerCase())) {
    const [namespaced, cluster] = field === 'instancetype' ? ['VirtualMachineInstancetype', 'VirtualMachineClusterInstancetype'] : ['VirtualMachinePreference', 'VirtualMachineClusterPreference'];
    errors.push(invalid(`${p}.kind`, `got unexpected kind in ${label}: ${kind}; use ${namespaced} or ${cluster} (the default when kind is empty)`));
  }
  const policy = stringAt(matcher, 'inferFromVolumeFailurePolicy');
  if (policy !== undefined && policy !== 'Ignore' && policy !== 'Reject') {
    errors.push(invalid(`${p}.inferFromVolumeFailurePolicy`, `Invalid value '${policy}' for InferFromVolumeFailurePolicy: use Ignore or Reject`));
  }
  return errors;
}
