/**
 * The checks KubeVirt applies to every VirtualMachineInstance spec, wherever
 * it appears: in a VMI, a VM's template, a replica set's or a pool's
 * (`ValidateVirtualMachineInstanceSpec`).
 */
import type { FieldError } from '../errors.js';
import { booleanAt, has, stringAt } from '../kinds/read.js';
import { evictionStrategies, isEvictionStrategy } from '../kinds/eviction.js';
import { invalid, notSupported } from './field-error.js';
import { validateBootOrder, validateDisks, validateImplicitDisks } from './vmi-disks.js';
import { validateNetworks } from './vmi-network.js';
import { validateHostnames, validateResources } from './vmi-resources.js';
import { validateVolumes } from './vmi-volumes.js';

/** Labels only KubeVirt's own components may set on a VMI. */
export const reservedVmiLabels = [
  'kubevirt.io/created-by',
  'kubevirt.io/migrationJobUID',
  'kubevirt.io/nodeName',
  'kubevirt.io/migrationTargetNodeName',
  'kubevirt.io/schedulable',
  'kubevirt.io/install-strategy',
];

/** Checks a VMI spec found at `path` (e.g. `spec`, `spec.template.spec`). */
export function validateVmiSpec(path: string, spec: Record<string, unknown>): FieldError[] {
  return [
    ...validateHostnames(path, spec),
    ...validateResources(path, spec),
    ...validateNetworks(path, spec),
    ...validateBootOrder(path, spec),
    ...validateDisks(path, spec),
    ...validateImplicitDisks(path, spec),
    ...validateVolumes(path, spec),
    ...validateFirmware(path, spec),
    ...validateStrategies(path, spec),
  ];
}

function validateFirmware(path: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const bootloader = `${path}.domain.firmware.bootloader`;
  if (has(spec, 'domain', 'firmware', 'bootloader', 'bios') && has(spec, 'domain', 'firmware', 'bootloader', 'efi')) {
    errors.push(invalid(bootloader, `${bootloader} must have only one of bios or efi set: a machine boots one firmware`));
  }
  // EFI defaults to Secure Boot, which relies on SMM; KubeVirt enables SMM unless the spec turns it off.
  const efi = has(spec, 'domain', 'firmware', 'bootloader', 'efi');
  const secureBoot = efi && booleanAt(spec, 'domain', 'firmware', 'bootloader', 'efi', 'secureBoot') !== false;
  const smmOff = booleanAt(spec, 'domain', 'features', 'smm', 'enabled') === false;
  const tdx = has(spec, 'domain', 'launchSecurity', 'tdx');
  if (secureBoot && smmOff && !tdx) {
    errors.push(
      invalid(`${path}.domain`, `${path}.domain has EFI SecureBoot enabled. SecureBoot requires SMM, which is currently disabled: enable ${path}.domain.features.smm or set secureBoot: false`),
    );
  }
  return errors;
}

function validateStrategies(path: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const eviction = stringAt(spec, 'evictionStrategy');
  if (eviction !== undefined && !isEvictionStrategy(eviction)) {
    errors.push(invalid(`${path}.evictionStrategy`, `${path}.evictionStrategy is set with an unrecognized option: ${eviction}; use one of ${evictionStrategies.join(', ')}`));
  }
  const start = stringAt(spec, 'startStrategy');
  if (start !== undefined && start !== 'Paused') {
    errors.push(invalid(`${path}.startStrategy`, `${path}.startStrategy is set with an unrecognized option: ${start}; the only start strategy is Paused (omit it to start running)`));
  } else if (start === 'Paused' && has(spec, 'livenessProbe')) {
    errors.push(invalid(`${path}.startStrategy`, `either ${path}.startStrategy or ${path}.livenessProbe should be provided: a paused guest cannot answer its liveness probe and would be restarted`));
  }
  return errors;
}

/** Reserved `kubevirt.io/` labels a user may not set on a VMI or a VMI template. */
export function validateReservedLabels(path: string, labels: Record<string, string> | undefined): FieldError[] {
  const used = reservedVmiLabels.filter((label) => labels?.[label] !== undefined);
  if (used.length === 0) return [];
  return [
    notSupported(
      `${path}.labels`,
      `creation of the following reserved kubevirt.io/ labels on a VMI object is prohibited: ${used.join(', ')}; these labels are set by KubeVirt's own components, remove them`,
    ),
  ];
}
