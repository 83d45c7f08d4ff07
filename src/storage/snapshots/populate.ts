/**
 * Volumes of claims with a data source, made by the node's provisioner in
 * place of an empty file: restored from a VolumeSnapshot of this node, or
 * cloned from a claim whose volume is on this node. A claim whose volume
 * (or a snapshot whose data) is on another node is copied from there instead (`remote`): the
 * provisioner makes an empty volume and the node's import runner fills it
 * from the source node's agent (`src/storage/import/clone-source.ts`). The new volume must
 * be at least as large as its source and of the same volumeMode; it keeps
 * the source's format (a qcow2 source gives an instant qcow2 volume
 * whatever the claim's class says, a raw one a sparse copy).
 */
import type { KObject } from '../../api/object.js';
import { booleanAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { formatBytes, localProvisioner, localVolumeOf, volumeEncryptionOf } from '../local/index.js';
import type { VolumeFormat } from '../local/index.js';
import { readSnapshotMeta } from './chain.js';
import type { DataSource } from './data-source.js';
import { parseSnapshotHandle, snapshotDir } from './handle.js';
import type { LiveGuests } from './live.js';
import { cloneVolume, restoreSnapshot } from './operations.js';
import type { TargetVolume, Wait } from './operations.js';
import { volumeSnapshotContents, volumeSnapshots } from './resources.js';

/** What populating needs. */
export interface PopulateOptions {
  client: Client;
  nodeName: string;
  dataDir: string;
  live: LiveGuests | undefined;
}

/** A source claim or VolumeSnapshot on another node, to be copied from there. */
export interface RemoteSource {
  remote: { kind: 'PersistentVolumeClaim' | 'VolumeSnapshot'; namespace: string; name: string; node: string };
}

/** Fills `target` (the volume of `pvc`) from `source`; resolves with its format, why it must wait, or the claim on another node to copy. */
export async function populateVolume(pvc: KObject, source: DataSource, target: TargetVolume, options: PopulateOptions): Promise<{ format: VolumeFormat } | Wait | RemoteSource> {
  const namespace = pvc.metadata.namespace ?? '';
  const { client, nodeName } = options;
  if (source.kind === 'VolumeSnapshot') {
    const what = `VolumeSnapshot "${source.name}"`;
    const snapshot = await client.tryGet(volumeSnapshots, namespace, source.name);
    if (snapshot === undefined) return { wait: `${what} not found in namespace "${namespace}"; create it, or fix spec.dataSource` };
    if (booleanAt(snapshot, 'status', 'readyToUse') !== true) return { wait: `${what} is not ready to use yet` };
    const contentName = stringAt(snapshot, 'status', 'boundVolumeSnapshotContentName') ?? '';
    const content = contentName === '' ? undefined : await client.tryGet(volumeSnapshotContents, undefined, contentName);
    const handle = parseSnapshotHandle(stringAt(content, 'status', 'snapshotHandle'));
    if (handle === undefined || stringAt(content, 'spec', 'driver') !== localProvisioner) return { wait: `${what} is not a ${localProvisioner} snapshot, so this provisioner cannot restore it` };
    // The importer checks the size when the data arrives; the volume mode is the claim's.
    if (handle.node !== nodeName) return { remote: { kind: 'VolumeSnapshot', namespace, name: source.name, node: handle.node } };
    const dir = snapshotDir(options.dataDir, handle.id);
    const meta = await readSnapshotMeta(dir);
    if (meta === undefined) return { wait: `the data of ${what} is missing on node "${nodeName}" (${dir}); take the snapshot again` };
    if (target.bytes < meta.bytes) return { wait: `requested volume size ${formatBytes(target.bytes)} is less than the size ${formatBytes(meta.bytes)} of the source ${what}: ask for at least ${formatBytes(meta.bytes)}` };
    if (meta.volumeMode !== target.mode) return { wait: `${what} is of a ${meta.volumeMode} volume; a claim restored from it must have volumeMode ${meta.volumeMode}, not ${target.mode}` };
    return { format: await restoreSnapshot(dir, meta, target) };
  }
  const sourceNamespace = source.namespace ?? namespace;
  const what = `source claim "${sourceNamespace === namespace ? '' : `${sourceNamespace}/`}${source.name}"`;
  const claim = await client.tryGet(resources.persistentVolumeClaims, sourceNamespace, source.name);
  if (claim === undefined) return { wait: `${what} not found in namespace "${sourceNamespace}"` };
  const volumeName = stringAt(claim, 'spec', 'volumeName') ?? '';
  const pv = volumeName === '' ? undefined : await client.tryGet(resources.persistentVolumes, undefined, volumeName);
  if (pv === undefined) return { wait: `${what} is not bound to a volume yet` };
  let volume;
  try {
    volume = localVolumeOf(claim, pv);
  } catch (err) {
    return { wait: `${what} cannot be cloned: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (volumeEncryptionOf(pv) !== undefined) return { wait: `${what} is encrypted, and clones of encrypted volumes are not supported yet` };
  if (target.bytes < volume.bytes) return { wait: `requested volume size ${formatBytes(target.bytes)} is less than the size ${formatBytes(volume.bytes)} of the ${what}: ask for at least ${formatBytes(volume.bytes)}` };
  if (volume.volumeMode !== target.mode) return { wait: `${what} has volumeMode ${volume.volumeMode}; its clone must too, not ${target.mode}` };
  if (volume.node !== nodeName) return { remote: { kind: 'PersistentVolumeClaim', namespace: sourceNamespace, name: source.name, node: volume.node } };
  const result = await cloneVolume(volume, { namespace: sourceNamespace, name: source.name }, { ...target, id: pvc.metadata.uid ?? '', live: options.live });
  return typeof result === 'string' ? { format: result } : result;
}
