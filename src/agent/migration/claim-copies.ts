/**
 * The claims of a migrating VMI, on both nodes. On the target: a fresh
 * local volume per claim (same size, format and volume mode, in the
 * directory the local provisioner would give it here), which the target
 * QEMU opens in place of the claim's file and exports over NBD with its
 * other disks, so the source's mirror fills it. On the source, once the
 * migration succeeded and the claim's PersistentVolume says the target
 * node: the old directory goes. The PersistentVolume itself is moved by
 * the migration controller (src/controllers/migration/claims.ts).
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { KObject } from '../../api/object.js';
import { recordsAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { claimNameOf, localVolumeOf, volumeDir, volumeFile, volumeNameFor, volumeNode, volumesRoot } from '../../storage/local/index.js';
import { createVolumeFile, removeVolumeDir } from '../../storage/local/files.js';
import type { ClaimFile } from '../volumes.js';
import type { MovedVolume } from './protocol.js';

/** Where a node keeps its volumes and who it is. */
export interface ClaimNode {
  client: Client;
  dataDir: string;
  nodeName: string;
  logger: Logger;
}

/** The target's copies of a VMI's claims: the files by VMI volume name, and the volumes as the controller moves them. */
export interface ClaimCopies {
  files: Record<string, ClaimFile>;
  volumes: MovedVolume[];
}

/**
 * Makes an empty volume on this node for each claim of `vmi`. A directory
 * an interrupted attempt left is replaced; the claim's own directory (a
 * node sharing the source's data directory) is never touched. What was
 * made is removed again when a later claim fails.
 */
export async function makeClaimCopies(vmi: KObject, node: ClaimNode, signal: AbortSignal): Promise<ClaimCopies> {
  const copies: ClaimCopies = { files: {}, volumes: [] };
  const namespace = vmi.metadata.namespace ?? '';
  try {
    for (const volume of recordsAt(vmi, 'spec', 'volumes')) {
      const claimName = claimNameOf(volume);
      if (claimName === undefined) continue;
      const pvc = await node.client.get(resources.persistentVolumeClaims, namespace, claimName);
      const pv = await node.client.get(resources.persistentVolumes, undefined, stringAt(pvc, 'spec', 'volumeName') ?? '');
      const local = localVolumeOf(pvc, pv);
      const uid = pvc.metadata.uid ?? '';
      const dir = volumeDir(node.dataDir, uid);
      const file = volumeFile(dir, local.volumeMode);
      if (local.node === node.nodeName) throw new Error(`claim ${claimName}'s volume is on this node ${node.nodeName} already: it is the migration's source node`);
      if (file === local.path) throw new Error(`claim ${claimName}'s volume file ${file} on node ${local.node} is where this node would put its copy: the two nodes share a data directory, so the volume cannot be copied between them`);
      if (await exists(dir)) node.logger.info('replacing what an interrupted migration left of a claim copy', { claim: claimName, dir });
      await removeVolumeDir(volumesRoot(node.dataDir), dir, volumeNameFor(uid));
      await createVolumeFile({ path: file, format: local.format, preallocation: 'off', bytes: local.bytes, signal });
      copies.files[stringAt(volume, 'name') ?? ''] = { path: file, format: local.format };
      copies.volumes.push({ claimUid: uid, persistentVolume: pv.metadata.name ?? '', path: local.volumeMode === 'Block' ? file : dir });
    }
  } catch (err) {
    await removeClaimCopies(copies.volumes, node);
    throw err;
  }
  return copies;
}

/**
 * Removes the target's copies (a migration that failed or was cancelled):
 * the claims stay on the source as they were. A copy whose volume now lives
 * on this node is kept: a later migration of the same VMI made it again in
 * the same place and moved the claim here (an abort that ran late, on a
 * loaded node, must not delete it). When the PersistentVolume cannot be
 * read, the copy is kept too, and logged: a leftover wastes space, a wrong
 * removal loses data.
 */
export async function removeClaimCopies(volumes: readonly MovedVolume[], node: ClaimNode): Promise<void> {
  for (const volume of volumes) {
    let pv: KObject | undefined;
    try {
      pv = await node.client.tryGet(resources.persistentVolumes, undefined, volume.persistentVolume);
    } catch (err) {
      node.logger.warn('cannot read a claim copy\'s PersistentVolume: the copy is kept', { volume: volume.persistentVolume, err });
      continue;
    }
    if (pv !== undefined && volumeNode(pv) === node.nodeName) {
      node.logger.info('a claim copy\'s volume lives on this node now (a later migration moved it here): kept', { volume: volume.persistentVolume });
      continue;
    }
    await removeVolumeDir(volumesRoot(node.dataDir), volumeDir(node.dataDir, volume.claimUid), volumeNameFor(volume.claimUid));
  }
}

/**
 * Removes this (source) node's old copy of each moved volume whose
 * PersistentVolume now says another node; one that still says this node
 * (the controller could not move it) keeps its data here.
 */
export async function removeSourceCopies(volumes: readonly MovedVolume[], node: ClaimNode): Promise<void> {
  for (const volume of volumes) {
    const pv = await node.client.tryGet(resources.persistentVolumes, undefined, volume.persistentVolume);
    const now = pv === undefined ? undefined : volumeNode(pv);
    if (pv !== undefined && (now === node.nodeName || now === undefined)) {
      node.logger.warn('a migrated claim\'s volume still says this node: its data stays here', { volume: volume.persistentVolume });
      continue;
    }
    const dir = volumeDir(node.dataDir, volume.claimUid);
    // Never the path the volume now names (a node sharing this data directory).
    if (stringAt(pv, 'spec', 'local', 'path') === dir || dirname(stringAt(pv, 'spec', 'local', 'path') ?? '') === dir) continue;
    await removeVolumeDir(volumesRoot(node.dataDir), dir, volumeNameFor(volume.claimUid));
    node.logger.info('the source copy of a migrated claim is removed', { volume: volume.persistentVolume, dir, node: now });
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}
