/**
 * Which CSI VolumeSnapshotClass snapshots a claim of a StorageClass, as
 * KubeVirt's `getVolumeSnapshotClassName` decides it: the class whose
 * `driver` is the StorageClass's provisioner; of several, the one marked
 * default. The classes are read through the API on demand (briefly
 * remembered), not watched: the CSI snapshot CRDs may be installed after
 * the controllers start, and an informer on a missing resource never syncs.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { stringAt } from '../../api/kinds/read.js';
import type { Client, Informer } from '../../client/index.js';
import { resources } from '../../client/index.js';
import { annotations } from './model.js';

const memoMs = 1000;

export class SnapshotClassFinder {
  private cached: { at: number; items: KObject[] } | undefined;

  constructor(
    private readonly client: Client,
    private readonly storageClasses: Informer,
    private readonly now: () => number = Date.now,
  ) {}

  /** The VolumeSnapshotClass for claims of `storageClassName`; '' when there is none. Throws when several match and none is the default. */
  async forStorageClass(storageClassName: string): Promise<string> {
    const sc = this.storageClasses.get(storageClassName);
    if (sc === undefined) return '';
    const provisioner = stringAt(sc, 'provisioner');
    const matches = (await this.list()).filter((c) => stringAt(c, 'driver') === provisioner);
    if (matches.length === 0) return '';
    if (matches.length === 1) return matches[0]?.metadata.name ?? '';
    const preferred = matches.find((c) => c.metadata.annotations?.[annotations.defaultSnapshotClass] !== undefined);
    if (preferred !== undefined) return preferred.metadata.name ?? '';
    throw new Error(`${matches.length} matching VolumeSnapshotClasses for ${storageClassName}: mark one with the annotation ${annotations.defaultSnapshotClass}: "true"`);
  }

  private async list(): Promise<KObject[]> {
    const now = this.now();
    if (this.cached !== undefined && now - this.cached.at < memoMs) return this.cached.items;
    let items: KObject[] = [];
    try {
      items = (await this.client.list(resources.volumeSnapshotClasses)).items;
    } catch (err) {
      // No CSI snapshot API installed: no class matches.
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
    this.cached = { at: now, items };
    return items;
  }
}
