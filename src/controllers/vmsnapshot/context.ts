/**
 * The informers the snapshot, restore and clone controllers share, and the
 * seams each of them gets: the client, a logger, the clock.
 */
import type { KObject } from '../../api/object.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { SnapshotClassFinder } from './snapshot-classes.js';

/** One cache per kind the three controllers read. */
export class SnapshotInformers {
  readonly vms: Informer;
  readonly vmis: Informer;
  readonly pvcs: Informer;
  readonly storageClasses: Informer;
  readonly snapshots: Informer;
  readonly contents: Informer;
  readonly restores: Informer;
  readonly clones: Informer;
  /** The CSI VolumeSnapshots the contents make: their readiness wakes the content at once. */
  readonly volumeSnapshots: Informer;

  constructor(client: Client, logger: Logger, shared: { vms?: Informer; vmis?: Informer; pvcs?: Informer; storageClasses?: Informer } = {}) {
    this.vms = shared.vms ?? new Informer(client, resources.virtualMachines, logger);
    this.vmis = shared.vmis ?? new Informer(client, resources.virtualMachineInstances, logger);
    this.pvcs = shared.pvcs ?? new Informer(client, resources.persistentVolumeClaims, logger);
    this.storageClasses = shared.storageClasses ?? new Informer(client, resources.storageClasses, logger);
    this.snapshots = new Informer(client, resources.virtualMachineSnapshots, logger);
    this.contents = new Informer(client, resources.virtualMachineSnapshotContents, logger);
    this.restores = new Informer(client, resources.virtualMachineRestores, logger);
    this.clones = new Informer(client, resources.virtualMachineClones, logger);
    this.volumeSnapshots = new Informer(client, resources.volumeSnapshots, logger);
  }

  all(): Informer[] {
    return [this.vms, this.vmis, this.pvcs, this.storageClasses, this.snapshots, this.contents, this.restores, this.clones, this.volumeSnapshots];
  }

  /** The object of `namespace/name` in `informer`. */
  static at(informer: Informer, namespace: string | undefined, name: string): KObject | undefined {
    return informer.get(`${namespace ?? 'default'}/${name}`);
  }
}

/** What every snapshot-layer reconciler is given. */
export interface SnapshotContext {
  client: Client;
  logger: Logger;
  informers: SnapshotInformers;
  classes: SnapshotClassFinder;
  now: () => number;
}
