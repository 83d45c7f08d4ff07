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
import { cloneRequestAnnotation } from '../../storage/snapshots/index.js';
import { controllerRefTo } from '../vmi/index.js';

/** A DataVolume's source, after `sourceRef` is followed. */
export type DataVolumeSource =
  | { kind: 'http'; spec: Record<string, unknown> }
  | { kind: 'registry'; spec: Record<string, unknown> }
  | { kind: 'blank' }
  /** An upload (`spec.source.upload: {}`): the node receives the image through the upload proxy. */
  | { kind: 'upload' }
  /**
   * A copy of another claim (`spec.source.pvc`, of any namespace) or a
   * VolumeSnapshot (`spec.source.snapshot`, of the DataVolume's namespace)
   * in `namespace`: the claim names it in CDI's `k8s.io/CloneRequest`
   * annotation (a claim) and, within one namespace, as its `dataSource`.
   * The node makes it in place (a qcow2 clone is instant), or copies it from
   * the node holding the source.
   */
  | { kind: 'clone'; dataSource: { apiGroup?: string; kind: 'PersistentVolumeClaim' | 'VolumeSnapshot'; name: string }; namespace: string }
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
  if (from !== namespace && target.kind !== 'PersistentVolumeClaim') {
    return { kind: 'unsupported', message: `spec.source.${field} is in namespace ${from}, and Vireo restores VolumeSnapshots only within a namespace: restore from a ${target.kind} in ${namespace}, or clone a claim of ${from} with spec.source.pvc` };
  }
  return { kind: 'clone', dataSource: { ...target, name }, namespace: from };
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
  const namespace = dv.metadata.namespace ?? 'default';
  if (source.kind === 'clone' && source.dataSource.kind === 'PersistentVolumeClaim') annotations[cloneRequestAnnotation] = `${source.namespace}/${source.dataSource.name}`;
  // Kubernetes' dataSource names only claims of the claim's own namespace: a clone from another one has the annotation alone, as CDI's.
  if (source.kind === 'clone' && source.namespace === namespace) {
    spec = { ...spec, dataSource: source.dataSource, dataSourceRef: source.dataSource };
  }
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: dv.metadata.name ?? '',
      namespace,
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
