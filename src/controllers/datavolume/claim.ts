/**
 * The PVC a DataVolume asks for, as CDI makes it: from `spec.pvc` as
 * written, or from `spec.storage` completed with defaults (ReadWriteOnce,
 * Filesystem, the default StorageClass); labels and annotations carried
 * over, CDI's import annotations added, and owned by the DataVolume.
 * Pure: the caller resolves the source and the default class.
 */
import type { KObject } from '../../api/object.js';
import { arrayAt, booleanAt, recordAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import { cdiAnnotations, importPhases, importSources } from '../../storage/import/index.js';
import { controllerRefTo } from '../vmi/index.js';

/** A DataVolume's source, after `sourceRef` is followed. */
export type DataVolumeSource =
  | { kind: 'http'; spec: Record<string, unknown> }
  | { kind: 'registry'; spec: Record<string, unknown> }
  | { kind: 'blank' }
  /** An upload (`spec.source.upload: {}`): the node receives the image through the upload proxy. */
  | { kind: 'upload' }
  /**
   * A copy of another claim (`spec.source.pvc`) or a VolumeSnapshot
   * (`spec.source.snapshot`) of the DataVolume's namespace: the claim gets
   * it as its `dataSource`, which the node makes in place (a qcow2 clone is
   * instant), so no import runs.
   */
  | { kind: 'clone'; dataSource: { apiGroup?: string; kind: 'PersistentVolumeClaim' | 'VolumeSnapshot'; name: string } }
  /** A source Vireo cannot fill yet; `message` says which and what to do instead. */
  | { kind: 'unsupported'; message: string };

/**
 * The source of `spec.source` (or of a DataSource's) for a DataVolume in
 * `namespace`, or undefined when it names none. A `pvc`/`snapshot` without
 * a namespace is in `refNamespace` (the DataSource's, for a DataSource).
 */
export function sourceOf(source: Record<string, unknown> | undefined, namespace: string, refNamespace = namespace): DataVolumeSource | undefined {
  if (source === undefined) return undefined;
  const http = recordAt(source, 'http');
  if (http !== undefined) return { kind: 'http', spec: http };
  const registry = recordAt(source, 'registry');
  if (registry !== undefined) return { kind: 'registry', spec: registry };
  if (recordAt(source, 'blank') !== undefined) return { kind: 'blank' };
  if (recordAt(source, 'upload') !== undefined) return { kind: 'upload' };
  const pvc = recordAt(source, 'pvc');
  if (pvc !== undefined) return cloneOf(pvc, 'pvc', { namespace, refNamespace }, { kind: 'PersistentVolumeClaim' });
  const snapshot = recordAt(source, 'snapshot');
  if (snapshot !== undefined) return cloneOf(snapshot, 'snapshot', { namespace, refNamespace }, { apiGroup: 'snapshot.storage.k8s.io', kind: 'VolumeSnapshot' });
  const named = Object.keys(source)[0];
  return { kind: 'unsupported', message: `Vireo cannot import from spec.source.${named ?? '(empty)'}: use http, registry, upload or blank` };
}

function cloneOf(ref: Record<string, unknown>, field: 'pvc' | 'snapshot', where: { namespace: string; refNamespace: string }, target: { apiGroup?: string; kind: 'PersistentVolumeClaim' | 'VolumeSnapshot' }): DataVolumeSource {
  const name = stringAt(ref, 'name') ?? '';
  if (name === '') return { kind: 'unsupported', message: `spec.source.${field}.name is empty: name the ${target.kind} to copy` };
  const { namespace } = where;
  const from = stringAt(ref, 'namespace') ?? where.refNamespace;
  if (from !== namespace) {
    return { kind: 'unsupported', message: `spec.source.${field} is in namespace ${from}, and Vireo copies volumes only within a namespace so far: copy from a ${target.kind} in ${namespace}` };
  }
  return { kind: 'clone', dataSource: { ...target, name } };
}

/** The annotations that tell the node's import runner what to do. */
export function importAnnotations(source: DataVolumeSource): Record<string, string> {
  const out: Record<string, string> = {};
  switch (source.kind) {
    case 'blank':
      out[cdiAnnotations.source] = importSources.none;
      break;
    case 'upload':
      out[cdiAnnotations.source] = importSources.upload;
      out[cdiAnnotations.uploadTarget] = '';
      break;
    case 'http': {
      out[cdiAnnotations.source] = importSources.http;
      out[cdiAnnotations.endpoint] = stringAt(source.spec, 'url') ?? '';
      setIf(out, cdiAnnotations.secretName, stringAt(source.spec, 'secretRef'));
      setIf(out, cdiAnnotations.certConfigMap, stringAt(source.spec, 'certConfigMap'));
      setIf(out, cdiAnnotations.checksum, stringAt(source.spec, 'checksum'));
      if (booleanAt(source.spec, 'insecureSkipVerify') === true) out[cdiAnnotations.insecureSkipVerify] = 'true';
      arrayAt(source.spec, 'extraHeaders').forEach((h, i) => { if (typeof h === 'string') out[`${cdiAnnotations.extraHeaders}.${i}`] = h; });
      arrayAt(source.spec, 'secretExtraHeaders').forEach((h, i) => { if (typeof h === 'string') out[`${cdiAnnotations.secretExtraHeaders}.${i}`] = h; });
      break;
    }
    case 'registry':
      out[cdiAnnotations.source] = importSources.registry;
      out[cdiAnnotations.endpoint] = stringAt(source.spec, 'url') ?? '';
      setIf(out, cdiAnnotations.secretName, stringAt(source.spec, 'secretRef'));
      setIf(out, cdiAnnotations.certConfigMap, stringAt(source.spec, 'certConfigMap'));
      setIf(out, cdiAnnotations.registryImportMethod, stringAt(source.spec, 'pullMethod'));
      break;
    case 'clone':
    case 'unsupported':
      break;
  }
  return out;
}

function setIf(target: Record<string, string>, key: string, value: string | undefined): void {
  if (value !== undefined && value !== '') target[key] = value;
}

/** The PVC spec of a DataVolume; `defaultClass` is used when `spec.storage` names none. */
export function claimSpecOf(dv: KObject, defaultClass: string | undefined): Record<string, unknown> | { error: string } {
  const pvc = recordAt(dv, 'spec', 'pvc');
  if (pvc !== undefined) return structuredClone(pvc);
  const storage = recordAt(dv, 'spec', 'storage');
  if (storage === undefined) return { error: 'the DataVolume has neither spec.pvc nor spec.storage: add spec.storage.resources.requests.storage' };
  if (stringAt(storage, 'resources', 'requests', 'storage') === undefined) {
    return { error: 'spec.storage.resources.requests.storage is not set, and Vireo cannot infer the size from this source: set it' };
  }
  const spec: Record<string, unknown> = structuredClone(storage);
  if (arrayAt(spec, 'accessModes').length === 0) spec.accessModes = ['ReadWriteOnce'];
  if (stringAt(spec, 'volumeMode') === undefined) spec.volumeMode = 'Filesystem';
  if (stringAt(spec, 'storageClassName') === undefined && defaultClass !== undefined) spec.storageClassName = defaultClass;
  return spec;
}

/** The PVC to create for `dv`. */
export function claimFor(dv: KObject, claimSpec: Record<string, unknown>, source: DataVolumeSource): KObject {
  let spec = claimSpec;
  const annotations: Record<string, string> = {
    ...(dv.metadata.annotations ?? {}),
    [cdiAnnotations.podRestarts]: '0',
    [cdiAnnotations.contentType]: stringAt(dv, 'spec', 'contentType') ?? 'kubevirt',
    [cdiAnnotations.preallocationRequested]: String(booleanAt(dv, 'spec', 'preallocation') === true),
    ...importAnnotations(source),
    // A copy is made by the provisioner, not by an import run: nothing for the runner, nothing to wait on.
    ...(source.kind === 'clone' ? {} : { [cdiAnnotations.podPhase]: importPhases.pending }),
  };
  if (source.kind === 'clone') {
    spec = { ...spec, dataSource: source.dataSource, dataSourceRef: source.dataSource };
  }
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: dv.metadata.name ?? '',
      namespace: dv.metadata.namespace ?? 'default',
      labels: { app: 'containerized-data-importer', ...stringMapAt(dv, 'metadata', 'labels') },
      annotations,
      ownerReferences: [controllerRefTo(dv)],
    },
    spec,
  };
}

/** The default StorageClass's name (`storageclass.kubernetes.io/is-default-class: "true"`), newest first as Kubernetes picks. */
export function defaultStorageClass(classes: readonly KObject[]): string | undefined {
  const defaults = classes.filter((c) => c.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true');
  defaults.sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''));
  return defaults[0]?.metadata.name;
}
