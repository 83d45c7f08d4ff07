/**
 * Volume checks of a VirtualMachineInstance spec, as KubeVirt's
 * `validateVolumes` makes them: unique names, exactly one source each,
 * cloud-init data limits, and at most one of the singleton volume types.
 */
import type { FieldError } from '../errors.js';
import { quote } from '../names.js';
import { has, recordAt, recordsAt, stringAt } from '../kinds/read.js';
import { duplicate, invalid, required } from './field-error.js';

/** Every volume source a KubeVirt volume can have; exactly one must be set. */
export const volumeSourceTypes = [
  'persistentVolumeClaim',
  'sysprep',
  'cloudInitNoCloud',
  'cloudInitConfigDrive',
  'containerDisk',
  'ephemeral',
  'emptyDisk',
  'hostDisk',
  'dataVolume',
  'configMap',
  'secret',
  'downwardAPI',
  'serviceAccount',
  'downwardMetrics',
  'memoryDump',
  'containerPath',
] as const;

/** Inline cloud-init data above this size must come from a Secret (KubeVirt's limit). */
const cloudInitInlineMaxBytes = 2048;
const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Checks `<path>.volumes`. */
export function validateVolumes(path: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  const firstIndexByName = new Map<string, number>();
  const singletons = { serviceAccount: 0, downwardMetrics: 0, memoryDump: 0 };
  recordsAt(spec, 'volumes').forEach((volume, i) => {
    const p = `${path}.volumes[${i}]`;
    const name = stringAt(volume, 'name') ?? '';
    const earlier = firstIndexByName.get(name);
    if (earlier !== undefined) {
      errors.push(duplicate(`${p}.name`, `${p} and ${path}.volumes[${earlier}] must not have the same name ${quote(name)}: disks find their volume by name; rename one of them`));
    } else firstIndexByName.set(name, i);
    const sources = volumeSourceTypes.filter((t) => has(volume, t));
    if (sources.length !== 1) {
      const found = sources.length === 0 ? 'none is set' : `it sets ${sources.join(', ')}`;
      errors.push(invalid(p, `${p} must have exactly one source type set, but ${found}; choose one of containerDisk, persistentVolumeClaim, dataVolume, cloudInitNoCloud, emptyDisk, …`));
    }
    if (has(volume, 'dataVolume') && (stringAt(volume, 'dataVolume', 'name') ?? '') === '') {
      errors.push(required(`${p}.dataVolume.name`, 'DataVolume \'name\' must be set: it names the DataVolume (in the same namespace) whose PVC backs this volume'));
    }
    for (const key of ['serviceAccount', 'downwardMetrics', 'memoryDump'] as const) {
      if (has(volume, key)) singletons[key]++;
    }
    errors.push(...validateCloudInit(p, volume));
  });
  for (const [key, count] of Object.entries(singletons)) {
    if (count > 1) {
      errors.push(invalid(`${path}.volumes`, `${path}.volumes must have at most one ${key} volume, but has ${count}: the guest sees a single ${key} device; remove the extra ones`));
    }
  }
  return errors;
}

function validateCloudInit(p: string, volume: Record<string, unknown>): FieldError[] {
  const type = has(volume, 'cloudInitNoCloud') ? 'cloudInitNoCloud' : has(volume, 'cloudInitConfigDrive') ? 'cloudInitConfigDrive' : undefined;
  if (type === undefined) return [];
  const source = recordAt(volume, type) ?? {};
  const field = `${p}.${type}`;
  return [
    ...validateCloudInitData(field, source, { inline: 'userData', base64: 'userDataBase64', secret: 'secretRef', what: 'user data' }),
    ...validateCloudInitData(field, source, { inline: 'networkData', base64: 'networkDataBase64', secret: 'networkDataSecretRef', what: 'network data' }),
  ];
}

interface CloudInitFields {
  inline: string;
  base64: string;
  secret: string;
  what: string;
}

function validateCloudInitData(field: string, source: Record<string, unknown>, fields: CloudInitFields): FieldError[] {
  const errors: FieldError[] = [];
  let count = 0;
  let size = 0;
  if ((stringAt(source, fields.secret, 'name') ?? '') !== '') count++;
  const encoded = stringAt(source, fields.base64) ?? '';
  if (encoded !== '') {
    count++;
    if (!base64Re.test(encoded)) {
      errors.push(invalid(`${field}.${fields.base64}`, `${field}.${fields.base64} is not a valid base64 value: encode the ${fields.what} with standard base64, or put it in ${fields.inline} as plain text`));
    }
    size = Buffer.from(encoded, 'base64').length;
  }
  const inline = stringAt(source, fields.inline) ?? '';
  if (inline !== '') {
    count++;
    size = Buffer.byteLength(inline, 'utf8');
  }
  if (count > 1) {
    errors.push(invalid(field, `${field} must have only one ${fields.what} source set: choose one of ${fields.inline}, ${fields.base64} or ${fields.secret}`));
  }
  if (size > cloudInitInlineMaxBytes) {
    errors.push(invalid(field, `${field} ${fields.what} exceeds the ${cloudInitInlineMaxBytes} byte limit for inline data: store it in a Secret and reference it with ${fields.secret}`));
  }
  return errors;
}
