/**
 * A claim's data source (`spec.dataSourceRef`, else `spec.dataSource`, else
 * CDI's `k8s.io/CloneRequest` annotation), as the local provisioner serves
 * it: a VolumeSnapshot of the claim's namespace (restore) or another claim
 * (clone), of any namespace through the annotation or a `dataSourceRef`
 * with a namespace. Local volumes are cloned and restored instantly on the
 * node holding the source's data, and claims are copied to other nodes, so
 * where the source is matters to where the new volume goes; `sourceNodeOf`
 * finds it from API objects alone.
 */
import type { KObject } from '../../api/object.js';
import { booleanAt, recordAt, stringAt } from '../../api/kinds/read.js';
import { isLocalVolume, localProvisioner, volumeNode } from '../local/index.js';
import { parseSnapshotHandle } from './handle.js';
import { cloneRequestAnnotation, snapshotGroup } from './names.js';

/** What a claim is populated from; a claim's `namespace` is set when it is not the target's. */
export type DataSource = { kind: 'VolumeSnapshot'; name: string } | { kind: 'PersistentVolumeClaim'; name: string; namespace?: string };

/** The `namespace/name` of a `k8s.io/CloneRequest` annotation; undefined when it is not one. */
function parseCloneRequest(value: string): { namespace: string; name: string } | undefined {
  const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(value);
  return match?.[1] === undefined || match[3] === undefined ? undefined : { namespace: match[1], name: match[3] };
}

/** The data source of `pvc`; undefined when it has none; `unsupported` says why one cannot be served. */
export function claimDataSource(pvc: KObject): DataSource | { unsupported: string } | undefined {
  const ref = recordAt(pvc, 'spec', 'dataSourceRef') ?? recordAt(pvc, 'spec', 'dataSource');
  const claimNamespace = pvc.metadata.namespace ?? '';
  if (ref === undefined) {
    const request = pvc.metadata.annotations?.[cloneRequestAnnotation];
    if (request === undefined) return undefined;
    const source = parseCloneRequest(request);
    if (source === undefined) return { unsupported: `the ${cloneRequestAnnotation} annotation "${request}" is not "namespace/name" of the claim to clone` };
    return { kind: 'PersistentVolumeClaim', name: source.name, ...(source.namespace === claimNamespace ? {} : { namespace: source.namespace }) };
  }
  const kind = stringAt(ref, 'kind') ?? '';
  const name = stringAt(ref, 'name') ?? '';
  const apiGroup = stringAt(ref, 'apiGroup') ?? '';
  const namespace = stringAt(ref, 'namespace');
  const elsewhere = namespace !== undefined && namespace !== claimNamespace;
  if (elsewhere && kind !== 'PersistentVolumeClaim') {
    return { unsupported: `the data source ${kind} "${namespace}/${name}" is in another namespace; the ${localProvisioner} provisioner restores only from VolumeSnapshots of namespace "${claimNamespace}" (claims of other namespaces can be cloned)` };
  }
  if (name === '') return { unsupported: 'the data source has no name' };
  if (kind === 'VolumeSnapshot' && apiGroup === snapshotGroup) return { kind, name };
  if (kind === 'PersistentVolumeClaim' && apiGroup === '') return { kind, name, ...(elsewhere ? { namespace } : {}) };
  const what = apiGroup === '' ? kind : `${kind}.${apiGroup}`;
  return { unsupported: `the data source kind ${what} is not one the ${localProvisioner} provisioner populates from: use a VolumeSnapshot (apiGroup ${snapshotGroup}) or a PersistentVolumeClaim` };
}

/** Where the scheduler and the controllers read the source objects. */
export interface SourceLookup {
  claim: (namespace: string, name: string) => KObject | undefined;
  volume: (name: string) => KObject | undefined;
  snapshot: (namespace: string, name: string) => KObject | undefined;
  content: (name: string) => KObject | undefined;
}

/** Where a source's data is: its node, or why that is not known yet (`wait`). */
export type SourceNode = { node: string } | { wait: string };

/** The node holding the data of `source`, for a claim in `namespace`. */
export function sourceNodeOf(source: DataSource, namespace: string, lookup: SourceLookup): SourceNode {
  if (source.kind === 'PersistentVolumeClaim') {
    const claim = lookup.claim(source.namespace ?? namespace, source.name);
    if (claim === undefined) return { wait: `the source claim "${source.name}" does not exist` };
    const volumeName = stringAt(claim, 'spec', 'volumeName') ?? '';
    const pv = volumeName === '' ? undefined : lookup.volume(volumeName);
    if (pv === undefined) return { wait: `the source claim "${source.name}" is not bound to a volume yet` };
    const node = volumeNode(pv);
    if (!isLocalVolume(pv) || node === undefined) return { wait: `the volume of source claim "${source.name}" is not a ${localProvisioner} volume, so it cannot be cloned here` };
    return { node };
  }
  const snapshot = lookup.snapshot(namespace, source.name);
  if (snapshot === undefined) return { wait: `VolumeSnapshot "${source.name}" does not exist` };
  if (booleanAt(snapshot, 'status', 'readyToUse') !== true) return { wait: `VolumeSnapshot "${source.name}" is not ready to use yet` };
  const contentName = stringAt(snapshot, 'status', 'boundVolumeSnapshotContentName') ?? '';
  const content = contentName === '' ? undefined : lookup.content(contentName);
  const handle = parseSnapshotHandle(stringAt(content, 'status', 'snapshotHandle'));
  if (content === undefined || handle === undefined || stringAt(content, 'spec', 'driver') !== localProvisioner) {
    return { wait: `VolumeSnapshot "${source.name}" is not a ${localProvisioner} snapshot (its VolumeSnapshotContent "${contentName}" has no local handle)` };
  }
  return { node: handle.node };
}
