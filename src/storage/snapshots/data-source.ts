/**
 * A claim's data source (`spec.dataSourceRef`, else `spec.dataSource`), as
 * the local provisioner serves it: a VolumeSnapshot (restore) or another
 * claim (clone), both in the claim's namespace. Local volumes are cloned
 * and restored on the node holding the source's data, so where the source
 * is decides where the new volume goes; `sourceNodeOf` finds it from API
 * objects alone.
 */
import type { KObject } from '../../api/object.js';
import { booleanAt, recordAt, stringAt } from '../../api/kinds/read.js';
import { isLocalVolume, localProvisioner, volumeNode } from '../local/index.js';
import { parseSnapshotHandle } from './handle.js';
import { snapshotGroup } from './names.js';

/** What a claim is populated from. */
export type DataSource = { kind: 'VolumeSnapshot'; name: string } | { kind: 'PersistentVolumeClaim'; name: string };

/** The data source of `pvc`; undefined when it has none; `unsupported` says why one cannot be served. */
export function claimDataSource(pvc: KObject): DataSource | { unsupported: string } | undefined {
  const ref = recordAt(pvc, 'spec', 'dataSourceRef') ?? recordAt(pvc, 'spec', 'dataSource');
  if (ref === undefined) return undefined;
  const kind = stringAt(ref, 'kind') ?? '';
  const name = stringAt(ref, 'name') ?? '';
  const apiGroup = stringAt(ref, 'apiGroup') ?? '';
  const namespace = stringAt(ref, 'namespace');
  const claimNamespace = pvc.metadata.namespace ?? '';
  if (namespace !== undefined && namespace !== claimNamespace) {
    return { unsupported: `the data source ${kind} "${namespace}/${name}" is in another namespace; the ${localProvisioner} provisioner clones and restores only within namespace "${claimNamespace}"` };
  }
  if (name === '') return { unsupported: 'the data source has no name' };
  if (kind === 'VolumeSnapshot' && apiGroup === snapshotGroup) return { kind, name };
  if (kind === 'PersistentVolumeClaim' && apiGroup === '') return { kind, name };
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
    const claim = lookup.claim(namespace, source.name);
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
