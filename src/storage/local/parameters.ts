/**
 * The StorageClass parameters of the local provisioner, checked once where
 * a volume is made: `format` (raw | qcow2, default raw) and `preallocation`
 * (off | metadata | falloc | full, default off; passed to `qemu-img`).
 * A class with a bad value is not rejected when written (Kubernetes keeps
 * parameters opaque); its claims stay Pending with the reason.
 */

export type VolumeFormat = 'raw' | 'qcow2';
export type Preallocation = 'off' | 'metadata' | 'falloc' | 'full';

/** A local class's parameters, defaulted. */
export interface LocalClassParameters {
  format: VolumeFormat;
  preallocation: Preallocation;
}

const formats: readonly VolumeFormat[] = ['raw', 'qcow2'];
const preallocations: readonly Preallocation[] = ['off', 'metadata', 'falloc', 'full'];
const known = new Set(['format', 'preallocation']);

function isOneOf<T extends string>(list: readonly T[], value: string): value is T {
  return (list as readonly string[]).includes(value);
}

/** The parameters of class `className`, or why they cannot make a volume. */
export function parseClassParameters(className: string, parameters: Record<string, string>): { parameters: LocalClassParameters } | { error: string } {
  const where = `StorageClass "${className}"`;
  for (const key of Object.keys(parameters)) {
    if (!known.has(key)) return { error: `${where} has the unknown parameter "${key}": the vireo.io/local provisioner takes only format and preallocation; remove it or use another class` };
  }
  const format = parameters.format ?? 'raw';
  if (!isOneOf(formats, format)) return { error: `${where} has parameter format "${format}", which is not a volume format: use raw or qcow2` };
  const preallocation = parameters.preallocation ?? 'off';
  if (!isOneOf(preallocations, preallocation)) return { error: `${where} has parameter preallocation "${preallocation}": use off, metadata, falloc or full` };
  if (preallocation === 'metadata' && format !== 'qcow2') return { error: `${where} asks for preallocation "metadata", which only qcow2 volumes have: use format qcow2, or off, falloc or full` };
  return { parameters: { format, preallocation } };
}
