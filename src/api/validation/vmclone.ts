/**
 * VirtualMachineClone admission, as KubeVirt's `VirtualMachineCloneAdmitter`
 * checks it: a source of a supported kind (VirtualMachine or
 * VirtualMachineSnapshot) with apiGroup and name, a VirtualMachine target
 * other than the source VM, well-formed label/annotation filters and new
 * MAC addresses, patches that are JSON. A clone without a target gets a
 * generated target name (KubeVirt's mutator; Vireo's controller names it).
 */
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { recordAt, stringAt, stringMapAt } from '../kinds/read.js';
import { invalid } from './field-error.js';

const macRe = /^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/;

export function validateVirtualMachineClone(clone: KObject): FieldError[] {
  const spec = recordAt(clone, 'spec') ?? {};
  const errors: FieldError[] = [
    ...filterErrors(spec.annotationFilters, 'spec.annotationFilters'),
    ...filterErrors(spec.labelFilters, 'spec.labelFilters'),
    ...filterErrors(recordAt(spec, 'template')?.annotationFilters, 'spec.template.annotationFilters'),
    ...filterErrors(recordAt(spec, 'template')?.labelFilters, 'spec.template.labelFilters'),
  ];
  const source = recordAt(spec, 'source');
  const sourceKind = stringAt(source, 'kind') ?? '';
  if (source === undefined) {
    errors.push(invalid('spec.source', 'Source cannot be nil: name the VirtualMachine or VirtualMachineSnapshot to clone'));
  } else {
    if (!['VirtualMachine', 'VirtualMachineSnapshot'].includes(sourceKind)) errors.push(invalid('spec.source.kind', `Source kind ${JSON.stringify(sourceKind)} is not supported: use VirtualMachine or VirtualMachineSnapshot`));
    if ((stringAt(source, 'apiGroup') ?? '') === '') errors.push(invalid('spec.source.apiGroup', `Source's APIGroup cannot be empty: set ${sourceKind === 'VirtualMachineSnapshot' ? 'snapshot.kubevirt.io' : 'kubevirt.io'}`));
    if ((stringAt(source, 'name') ?? '') === '') errors.push(invalid('spec.source.name', "Source's name cannot be empty"));
  }
  const target = recordAt(spec, 'target');
  if (target !== undefined && stringAt(target, 'kind') !== 'VirtualMachine') errors.push(invalid('spec.target.kind', 'Target kind is not supported: the target of a clone is a VirtualMachine'));
  if (target !== undefined && sourceKind === 'VirtualMachine' && stringAt(target, 'kind') === 'VirtualMachine' && stringAt(target, 'name') === stringAt(source, 'name')) {
    errors.push(invalid('spec.target.name', 'Target name cannot be equal to source name when both are VirtualMachines'));
  }
  for (const [iface, mac] of Object.entries(stringMapAt(spec, 'newMacAddresses'))) {
    if (mac !== '' && !macRe.test(mac)) errors.push(invalid(`spec.newMacAddresses.${iface}`, `interface ${iface} has malformed MAC address (${mac}): use six hex pairs, e.g. 02:00:00:00:00:01`));
  }
  const patches = spec.patches;
  if (Array.isArray(patches)) {
    patches.forEach((patch, i) => {
      try {
        JSON.parse(String(patch));
      } catch {
        errors.push(invalid(`spec.patches[${i}]`, `patch is not valid JSON (${String(patch)})`));
      }
    });
  }
  return errors;
}

/** A `!` only first, a `*` only last; `!` alone is no filter. */
function filterErrors(filters: unknown, field: string): FieldError[] {
  if (!Array.isArray(filters)) return [];
  const errors: FieldError[] = [];
  for (const filter of filters) {
    if (typeof filter !== 'string') continue;
    if (filter.length === 1) {
      if (filter === '!') errors.push(invalid(field, 'a negation character is not a valid filter'));
      continue;
    }
    if (filter.slice(1).includes('!')) errors.push(invalid(field, `${field} filter ${filter} is invalid: cannot contain a negation character (!); FilterRules: NegationChar can be only used at the beginning of the filter`));
    if (filter.slice(0, -1).includes('*')) errors.push(invalid(field, `${field} filter ${filter} is invalid: cannot contain a wildcard character (*); FilterRules: WildcardChar can be only at the end of the filter`));
  }
  return errors;
}
