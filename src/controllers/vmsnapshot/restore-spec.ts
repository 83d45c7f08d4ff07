/**
 * The pure parts of a restore, as KubeVirt's restore controller computes
 * them: the name of each restored claim (`volumeRestorePolicy`,
 * `volumeRestoreOverrides`), the claim itself (the backed-up claim's spec
 * with the VolumeSnapshot as its data source, at least the snapshot's
 * `restoreSize`), and the restored VM (the snapshot's spec with its volumes
 * pointing at the new claims).
 */
import type { KObject } from '../../api/object.js';
import { isPlainObject } from '../../api/object.js';
import { applyJsonPatch } from '../../api/patch/json-patch.js';
import { parseQuantity } from '../../api/validation/index.js';
import { recordAt, recordsAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import { annotations, labels, volumeSnapshotGroup } from './model.js';

/** The annotation prefixes a restored claim does not inherit (binding and CDI state of the old claim). */
const droppedAnnotationPrefixes = ['pv.kubernetes.io', 'volume.beta.kubernetes.io', 'cdi.kubevirt.io', 'volume.kubernetes.io', 'k8s.io/CloneRequest', 'k8s.io/CloneOf'];
const contentTypeAnnotation = 'cdi.kubevirt.io/storage.contentType';
const maxLabelLength = 63;

/** `<restore name>-<restore uid>`, the value of `restore.kubevirt.io/lastRestoreUID`. */
export function lastRestoreValue(restore: KObject): string {
  return `${restore.metadata.name ?? ''}-${restore.metadata.uid ?? ''}`;
}

export function hasLastRestore(restore: KObject, obj: KObject | undefined): boolean {
  return obj?.metadata.annotations?.[annotations.lastRestore] === lastRestoreValue(restore);
}

/** The restored claim's name for `volumeName` (KubeVirt's `restoreVolumeName`). */
export function restoreClaimName(restore: KObject, volumeName: string): string {
  const override = recordsAt(restore, 'spec', 'volumeRestoreOverrides').find((o) => o.volumeName === volumeName);
  const overridden = stringAt(override, 'restoreName');
  if (overridden !== undefined && overridden !== '') return overridden;
  if (stringAt(restore, 'spec', 'volumeRestorePolicy') === 'PrefixTargetName') {
    const name = `${stringAt(restore, 'spec', 'target', 'name') ?? ''}-${volumeName}`;
    return name.length <= maxLabelLength ? name : name.slice(0, maxLabelLength).replace(/-+$/, '');
  }
  return `restore-${restore.metadata.uid ?? ''}-${volumeName}`;
}

/** The claim restoring `backup` from the VolumeSnapshot `vs` (KubeVirt's `CreateRestorePVCDefFromVMRestore`). */
export function restoreClaim(restore: KObject, claimName: string, backup: Record<string, unknown>, vs: KObject, sourceVm: { name: string; namespace: string }): KObject {
  const source = recordAt(backup, 'persistentVolumeClaim') ?? {};
  const sourceSpec = recordAt(source, 'spec') ?? {};
  const vsName = stringAt(backup, 'volumeSnapshotName') ?? '';
  const ref = { apiGroup: volumeSnapshotGroup, kind: 'VolumeSnapshot', name: vsName };
  const requests: Record<string, unknown> = { ...(recordAt(sourceSpec, 'resources', 'requests') ?? {}) };
  const restoreSize = stringAt(vs, 'status', 'restoreSize');
  const wanted = parseQuantity(requests.storage);
  const offered = parseQuantity(restoreSize);
  if (restoreSize !== undefined && offered !== undefined && (wanted === undefined || wanted < offered)) requests.storage = restoreSize;
  const claimAnnotations: Record<string, string> = {};
  for (const [key, value] of Object.entries(stringMapAt(source, 'metadata', 'annotations'))) {
    if (key === contentTypeAnnotation || !droppedAnnotationPrefixes.some((p) => key.startsWith(p))) claimAnnotations[key] = value;
  }
  const claimLabels: Record<string, string> = { ...stringMapAt(source, 'metadata', 'labels') };
  claimLabels[labels.restoreSourceName] = sourceVm.name;
  claimLabels[labels.restoreSourceNamespace] = sourceVm.namespace;
  claimAnnotations[annotations.restoreName] = restore.metadata.name ?? '';
  claimAnnotations[annotations.lastRestore] = lastRestoreValue(restore);
  const override = recordsAt(restore, 'spec', 'volumeRestoreOverrides').find((o) => o.volumeName === stringAt(backup, 'volumeName'));
  Object.assign(claimLabels, stringMapAt(override, 'labels'));
  Object.assign(claimAnnotations, stringMapAt(override, 'annotations'));
  const spec: Record<string, unknown> = { resources: { ...(recordAt(sourceSpec, 'resources') ?? {}), requests }, dataSource: ref, dataSourceRef: ref };
  for (const key of ['accessModes', 'storageClassName', 'volumeMode']) if (sourceSpec[key] !== undefined) spec[key] = sourceSpec[key];
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: claimName, namespace: restore.metadata.namespace ?? 'default', labels: claimLabels, annotations: claimAnnotations }, spec };
}

/** The restored VM and the DataVolumes of the target that it no longer names. */
export interface RestoredVm {
  vm: KObject;
  deletedDataVolumes: string[];
}

/**
 * The snapshot's VM with each restored volume pointing at its new claim
 * (a DataVolume volume becomes a claim volume and its template goes: the
 * restored claim is filled from the snapshot, not by CDI), on the existing
 * target (keeping its run strategy) or as a new, halted VM with the
 * restore's `patches` applied.
 */
export function restoredVm(restore: KObject, snapshotVm: Record<string, unknown>, target: KObject | undefined): RestoredVm {
  const restores = recordsAt(restore, 'status', 'restores');
  const spec = structuredClone(recordAt(snapshotVm, 'spec') ?? {});
  const converted = new Set<string>();
  const volumes = recordsAt(spec, 'template', 'spec', 'volumes').flatMap((volume): Record<string, unknown>[] => {
    if (isPlainObject(volume.memoryDump)) return [];
    const restored = restores.find((r) => r.volumeName === volume.name);
    if (restored === undefined) return [volume];
    const claimName = stringAt(restored, 'persistentVolumeClaim');
    if (isPlainObject(volume.dataVolume)) {
      const dv = stringAt(volume, 'dataVolume', 'name');
      if (dv !== undefined) converted.add(dv);
      return [{ name: volume.name, persistentVolumeClaim: { claimName } }];
    }
    return [{ ...volume, persistentVolumeClaim: { ...(recordAt(volume, 'persistentVolumeClaim') ?? {}), claimName } }];
  });
  const templateSpec = recordAt(spec, 'template', 'spec');
  if (templateSpec !== undefined) templateSpec.volumes = volumes;
  const templates = recordsAt(spec, 'dataVolumeTemplates').filter((t) => !converted.has(stringAt(t, 'metadata', 'name') ?? ''));
  if (templates.length > 0) spec.dataVolumeTemplates = templates;
  else delete spec.dataVolumeTemplates;

  let vm: KObject;
  let deletedDataVolumes: string[] = [];
  const meta = recordAt(snapshotVm, 'metadata');
  if (target === undefined) {
    delete spec.running;
    spec.runStrategy = 'Halted';
    vm = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: stringAt(restore, 'spec', 'target', 'name') ?? '', namespace: restore.metadata.namespace ?? 'default', labels: stringMapAt(meta, 'labels'), annotations: stringMapAt(meta, 'annotations') },
      spec,
    };
  } else {
    const targetSpec = recordAt(target, 'spec') ?? {};
    if (targetSpec.running !== undefined && targetSpec.running !== null) {
      spec.running = false;
      delete spec.runStrategy;
    } else {
      spec.runStrategy = stringAt(targetSpec, 'runStrategy') ?? 'Halted';
      delete spec.running;
    }
    vm = { ...structuredClone(target), spec };
    delete vm.status;
    const kept = new Set(templates.map((t) => stringAt(t, 'metadata', 'name')));
    deletedDataVolumes = recordsAt(targetSpec, 'dataVolumeTemplates').map((t) => stringAt(t, 'metadata', 'name') ?? '').filter((n) => n !== '' && !kept.has(n));
  }
  vm.metadata.annotations = { ...(vm.metadata.annotations ?? {}), [annotations.lastRestore]: lastRestoreValue(restore) };
  return { vm, deletedDataVolumes };
}

/** Applies the restore's `patches` (JSON Patch operations as strings) to a new VM. */
export function patchVm(vm: KObject, patches: readonly string[]): KObject {
  if (patches.length === 0) return vm;
  const operations: unknown = JSON.parse(`[${patches.join(',')}]`);
  return applyJsonPatch(vm, operations) as KObject;
}
