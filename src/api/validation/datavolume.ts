/**
 * DataVolume admission as CDI's `datavolume-validate.go` does it: a target
 * (`pvc` or `storage`) with a usable size and access modes, and exactly one
 * way to fill it (a `source`, a `sourceRef` to a DataSource, or external
 * population through a volume populator); the spec is immutable afterwards.
 */
import { isDeepStrictEqual } from 'node:util';
import type { FieldError } from '../errors.js';
import type { KObject } from '../object.js';
import { quote } from '../names.js';
import { arrayAt, at, has, recordAt, stringAt } from '../kinds/read.js';
import { forbidden, invalid, required } from './field-error.js';
import { parseQuantity, showQuantity } from './quantity.js';

const accessModes = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod'];
const sourceTypes = ['http', 's3', 'gcs', 'registry', 'pvc', 'upload', 'blank', 'imageio', 'vddk', 'snapshot'];
const oneMiB = 2 ** 20;

/** Validates a DataVolume on create, or on update when `old` is given. */
export function validateDataVolume(dv: KObject, old?: KObject): FieldError[] {
  const spec = recordAt(dv, 'spec') ?? {};
  if (old !== undefined) {
    const before = recordAt(old, 'spec') ?? {};
    const unchanged =
      isDeepStrictEqual(spec, before) || (isMultiStage(spec) && isDeepStrictEqual(withoutCheckpoints(spec), withoutCheckpoints(before)));
    if (!unchanged) {
      return [forbidden('spec', 'Cannot update DataVolume Spec: a DataVolume is populated once from its spec; delete and recreate it to import something else (only checkpoints of a multi-stage import may change)')];
    }
    return [];
  }
  return validateDataVolumeSpec('spec', spec);
}

function isMultiStage(spec: Record<string, unknown>): boolean {
  return arrayAt(spec, 'checkpoints').length > 0 && (has(spec, 'source', 'vddk') || has(spec, 'source', 'imageio'));
}

function withoutCheckpoints(spec: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...spec };
  delete rest['checkpoints'];
  delete rest['finalCheckpoint'];
  return rest;
}

/** Checks a DataVolume spec found at `path` (`spec`, or `spec.dataVolumeTemplates[0].spec` in a VM). */
export function validateDataVolumeSpec(path: string, spec: Record<string, unknown>): FieldError[] {
  const hasPvc = has(spec, 'pvc');
  const hasStorage = has(spec, 'storage');
  if (!hasPvc && !hasStorage) {
    return [required(`${path}.storage`, 'Missing Data volume PVC: set storage (completed from the StorageProfile of the class) or pvc (a full PersistentVolumeClaim spec)')];
  }
  if (hasPvc && hasStorage) {
    return [invalid(`${path}.pvc`, 'Duplicate storage definition, both target storage and target pvc defined: keep one of them')];
  }
  const target = hasPvc ? 'pvc' : 'storage';
  const targetErrors = validateTarget(path, target, spec);
  if (targetErrors.length > 0) return targetErrors;

  if (has(spec, target, 'dataSource') || has(spec, target, 'dataSourceRef')) return validateExternalPopulation(path, target, spec);
  const hasSource = has(spec, 'source');
  const hasSourceRef = has(spec, 'sourceRef');
  if (hasSource === hasSourceRef) {
    return [invalid(`${path}.source`, 'Data volume should have either Source or SourceRef, or be externally populated: set exactly one of source and sourceRef')];
  }
  if (hasSourceRef) return validateSourceRef(path, spec);
  return validateSource(path, spec);
}

function validateTarget(path: string, target: 'pvc' | 'storage', spec: Record<string, unknown>): FieldError[] {
  const p = `${path}.${target}`;
  const isClone = has(spec, 'sourceRef') || has(spec, 'source', 'pvc') || has(spec, 'source', 'snapshot');
  const size = at(spec, target, 'resources', 'requests', 'storage');
  const sizeField = `${p}.resources.requests.storage`;
  if (size === undefined) {
    // A `storage` clone may leave the size out: CDI takes the source's.
    if (target === 'pvc' || !isClone) return [required(sizeField, `${target} size is missing: set ${sizeField}, e.g. "10Gi"`)];
  } else {
    const bytes = parseQuantity(size);
    if (bytes === undefined || bytes <= 0) return [invalid(sizeField, `${target} size ${quote(showQuantity(size))} can't be equal or less than zero`)];
    if (bytes < oneMiB) return [invalid(sizeField, `${target} size should be at least 1MiB, but is ${showQuantity(size)}`)];
  }
  const modes = arrayAt(spec, target, 'accessModes');
  if (target === 'pvc' && modes.length !== 1) {
    const problem = modes.length === 0 ? 'at least 1 access mode is required' : 'PVC multiple accessModes';
    return [invalid(`${p}.accessModes`, `${problem}: a DataVolume's pvc takes exactly one access mode, e.g. [ReadWriteOnce]`)];
  }
  for (const mode of modes) {
    if (typeof mode !== 'string' || !accessModes.includes(mode)) {
      return [invalid(`${p}.accessModes`, `Unsupported value: ${quote(String(mode))}: supported values: ${accessModes.map(quote).join(', ')}`)];
    }
  }
  return [];
}

function validateExternalPopulation(path: string, target: string, spec: Record<string, unknown>): FieldError[] {
  const errors: FieldError[] = [];
  if (has(spec, 'source') || has(spec, 'sourceRef')) {
    errors.push(invalid(`${path}.source`, 'External population is incompatible with Source and SourceRef: drop source/sourceRef, or the dataSource/dataSourceRef'));
  }
  for (const ref of ['dataSource', 'dataSourceRef'] as const) {
    const value = recordAt(spec, target, ref);
    if (value === undefined) continue;
    const p = `${path}.${target}.${ref}`;
    if ((stringAt(value, 'name') ?? '') === '') errors.push(required(`${p}.name`, `Required value: ${ref} name`));
    const kind = stringAt(value, 'kind') ?? '';
    if (kind === '') errors.push(required(`${p}.kind`, `Required value: ${ref} kind`));
    if ((stringAt(value, 'apiGroup') ?? '') === '' && kind !== 'PersistentVolumeClaim') {
      errors.push(required(`${p}.apiGroup`, `Required value: ${ref} apiGroup when kind is not 'PersistentVolumeClaim'`));
    }
    if (ref === 'dataSourceRef' && (stringAt(value, 'namespace') ?? '') !== '') {
      errors.push(invalid(`${p}.namespace`, 'Invalid value: DataSourceRef namespace not supported: the populator source must be in the DataVolume\'s namespace'));
    }
  }
  return errors;
}

function validateSourceRef(path: string, spec: Record<string, unknown>): FieldError[] {
  const kind = stringAt(spec, 'sourceRef', 'kind') ?? '';
  if (kind === '') return [required(`${path}.sourceRef.kind`, 'Missing sourceRef kind: set it to DataSource')];
  if (kind !== 'DataSource') return [invalid(`${path}.sourceRef.kind`, `Unsupported sourceRef kind ${kind}, currently only DataSource is supported`)];
  if ((stringAt(spec, 'sourceRef', 'name') ?? '') === '') return [required(`${path}.sourceRef.name`, 'Missing sourceRef name: name the DataSource to import from')];
  return [];
}

function validateSource(path: string, spec: Record<string, unknown>): FieldError[] {
  const p = `${path}.source`;
  const set = sourceTypes.filter((t) => has(spec, 'source', t));
  if (set.length === 0) return [invalid(p, `Missing Data volume source: set one of ${sourceTypes.join(', ')}`)];
  if (set.length > 1) return [invalid(p, `Multiple Data volume sources (${set.join(', ')}): a DataVolume is filled from exactly one source`)];
  const contentType = stringAt(spec, 'contentType') ?? '';
  if (contentType !== '' && contentType !== 'kubevirt' && contentType !== 'archive') {
    return [invalid(`${path}.contentType`, `ContentType not one of: kubevirt, archive`)];
  }
  const source = recordAt(spec, 'source') ?? {};
  switch (set[0]) {
    case 'http':
    case 's3':
    case 'gcs':
      return checkUrl(`${p}.${set[0]}.url`, stringAt(source, set[0], 'url'), ['http:', 'https:', 'gs:']);
    case 'blank':
      return contentType === 'archive' ? [invalid(`${path}.contentType`, 'SourceType cannot be blank and the contentType be archive: a blank disk has no archive to unpack')] : [];
    case 'registry':
      return validateRegistry(p, source, contentType, path);
    case 'imageio':
      return validateImageIO(p, source);
    case 'vddk': {
      const missing = ['secretRef', 'uuid', 'backingFile', 'thumbprint'].filter((f) => (stringAt(source, 'vddk', f) ?? '') === '');
      if (missing.length > 0) return [invalid(`${p}.vddk`, `${p}.vddk source VDDK is not valid: ${missing.join(', ')} must be set`)];
      return checkUrl(`${p}.vddk.url`, stringAt(source, 'vddk', 'url'), ['http:', 'https:']);
    }
    case 'pvc':
    case 'snapshot':
      if ((stringAt(source, set[0], 'name') ?? '') === '') {
        return [invalid(`${p}.${set[0]}`, `${p}.${set[0]} source ${set[0] === 'pvc' ? 'PVC' : 'snapshot'} is not valid: name must be set (namespace defaults to the DataVolume's)`)];
      }
      return [];
    default:
      return [];
  }
}

function validateRegistry(p: string, source: Record<string, unknown>, contentType: string, path: string): FieldError[] {
  if (contentType !== '' && contentType !== 'kubevirt') return [invalid(`${path}.contentType`, 'ContentType must be kubevirt when Source is Registry')];
  const url = stringAt(source, 'registry', 'url');
  const imageStream = stringAt(source, 'registry', 'imageStream');
  if ((url === undefined) === (imageStream === undefined)) {
    return [invalid(`${p}.registry`, 'Source registry should have either URL or ImageStream: set exactly one of url and imageStream')];
  }
  const pullMethod = stringAt(source, 'registry', 'pullMethod');
  if (url !== undefined) {
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
    if (scheme !== 'docker' && scheme !== 'oci-archive') {
      return [invalid(`${p}.registry.url`, `Illegal registry source URL scheme ${url}: use docker://<registry>/<image>:<tag> or oci-archive://<path>`)];
    }
  }
  if (pullMethod !== undefined && pullMethod !== 'pod' && pullMethod !== 'node') {
    return [invalid(`${p}.registry.pullMethod`, `ImportMethod ${pullMethod} is neither pod, node or ""`)];
  }
  if (imageStream !== undefined && pullMethod !== 'node') {
    return [invalid(`${p}.registry.pullMethod`, 'Source registry ImageStream is supported only with node pull import method: set pullMethod: node')];
  }
  return [];
}

function validateImageIO(p: string, source: Record<string, unknown>): FieldError[] {
  if ((stringAt(source, 'imageio', 'secretRef') ?? '') === '' || (stringAt(source, 'imageio', 'diskId') ?? '') === '') {
    return [invalid(`${p}.imageio`, `${p}.imageio source Imageio is not valid: secretRef and diskId must be set`)];
  }
  if ((stringAt(source, 'imageio', 'certConfigMap') ?? '') === '' && recordAt(source, 'imageio')?.['insecureSkipVerify'] !== true) {
    return [invalid(`${p}.imageio`, `${p}.imageio source Imageio requires CertConfigMap or InsecureSkipVerify`)];
  }
  return checkUrl(`${p}.imageio.url`, stringAt(source, 'imageio', 'url'), ['http:', 'https:']);
}

function checkUrl(field: string, url: string | undefined, schemes: string[]): FieldError[] {
  if (url === undefined || url === '') return [required(field, 'source URL is empty: set the URL to import from')];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [invalid(field, `Invalid source URL: ${url}`)];
  }
  if (!schemes.includes(parsed.protocol)) {
    return [invalid(field, `Invalid source URL scheme: ${url}: use ${schemes.map((s) => s.slice(0, -1)).join(', ')}`)];
  }
  return [];
}
