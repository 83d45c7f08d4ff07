/**
 * KubeVirt's snapshot layer as three controllers on one set of informers:
 * the snapshot controller (VirtualMachineSnapshots, their contents, and
 * every VM's `status.volumeSnapshotStatuses`), the restore controller and
 * the clone controller, each with its own queue and its own Event source
 * (`snapshot-controller`, `restore-controller`, `clone-controller`, as
 * virt-controller names them).
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import type { Client, Informer } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { keyOf } from '../vmi/index.js';
import { reconcileClone } from './clone.js';
import { reconcileContent } from './content.js';
import type { SnapshotContext } from './context.js';
import { SnapshotInformers } from './context.js';
import { annotations, cloneApiVersion } from './model.js';
import { reconcileRestore } from './restore.js';
import { reconcileSnapshot } from './snapshot.js';
import { SnapshotClassFinder } from './snapshot-classes.js';
import { reconcileVolumeSnapshotStatuses } from './volume-status.js';

/** Seams of the snapshot controllers; every field is optional. */
export interface SnapshotControllerOptions {
  /** Informers another component already runs (it starts and stops them). */
  vmInformer?: Informer;
  vmiInformer?: Informer;
  pvcInformer?: Informer;
  storageClassInformer?: Informer;
  now?: () => number;
}

type Kind = 'snapshot' | 'content' | 'vm' | 'restore' | 'clone';

/** VirtualMachineSnapshot, VirtualMachineSnapshotContent, VirtualMachineRestore and VirtualMachineClone, reconciled. */
export class SnapshotControllers {
  private readonly informers: SnapshotInformers;
  private readonly owned: Informer[];
  private readonly loops: ControllerLoop[] = [];
  private readonly queues = new Map<Kind, WorkQueue>();

  constructor(client: Client, private readonly logger: Logger, options: SnapshotControllerOptions = {}) {
    this.informers = new SnapshotInformers(client, logger, { ...spread('vms', options.vmInformer), ...spread('vmis', options.vmiInformer), ...spread('pvcs', options.pvcInformer), ...spread('storageClasses', options.storageClassInformer) });
    const shared = new Set([options.vmInformer, options.vmiInformer, options.pvcInformer, options.storageClassInformer].filter((i) => i !== undefined));
    this.owned = this.informers.all().filter((i) => !shared.has(i));
    const ctx: SnapshotContext = { client, logger, informers: this.informers, classes: new SnapshotClassFinder(client, this.informers.storageClasses), now: options.now ?? Date.now };
    const snapshots = new EventRecorder(client, 'snapshot-controller', logger);
    const restores = new EventRecorder(client, 'restore-controller', logger);
    const clones = new EventRecorder(client, 'clone-controller', logger);
    this.queue('snapshot', snapshots, (key) => reconcileSnapshot(ctx, snapshots, key));
    this.queue('content', snapshots, (key) => reconcileContent(ctx, snapshots, key));
    this.queue('vm', snapshots, (key) => reconcileVolumeSnapshotStatuses(ctx, key));
    this.queue('restore', restores, (key) => reconcileRestore(ctx, restores, key));
    this.queue('clone', clones, (key) => reconcileClone(ctx, clones, key));
    this.wire();
  }

  private queue(kind: Kind, recorder: EventRecorder, reconcile: (key: string) => Promise<ReconcileResult>): void {
    const { snapshots, contents, vms, restores, clones } = this.informers;
    const informer = { snapshot: snapshots, content: contents, vm: vms, restore: restores, clone: clones }[kind];
    const queue = new WorkQueue(reconcile, { logger: this.logger.child({ queue: kind }), name: kind, concurrency: 2, baseDelayMs: 100, maxDelayMs: 30_000, objectOf: (key) => informer.get(key) });
    this.queues.set(kind, queue);
    this.loops.push(new ControllerLoop(queue, recorder));
  }

  private add(kind: Kind, key: string | undefined): void {
    if (key !== undefined) this.queues.get(kind)?.add(key);
  }

  /** Which keys each change concerns (KubeVirt's event handlers, level-based). */
  private wire(): void {
    const { snapshots, contents, vms, vmis, pvcs, restores, clones } = this.informers;
    snapshots.onChange((key) => {
      this.add('snapshot', key);
      const snapshot = snapshots.get(key);
      if (snapshot !== undefined) this.add('content', `${snapshot.metadata.namespace ?? ''}/${stringAt(snapshot, 'status', 'virtualMachineSnapshotContentName') ?? `vmsnapshot-content-${snapshot.metadata.uid ?? ''}`}`);
      for (const c of clones.list()) if (c.metadata.namespace === namespaceOf(key)) this.add('clone', keyOf(c));
      for (const r of restores.list()) if (r.metadata.namespace === namespaceOf(key) && stringAt(r, 'spec', 'virtualMachineSnapshotName') === nameOf(key)) this.add('restore', keyOf(r));
    });
    contents.onChange((key) => {
      this.add('content', key);
      const content = contents.get(key);
      const snapshotName = content === undefined ? undefined : stringAt(content, 'spec', 'virtualMachineSnapshotName');
      if (snapshotName !== undefined) this.add('snapshot', `${namespaceOf(key)}/${snapshotName}`);
      else for (const s of snapshots.list()) if (s.metadata.namespace === namespaceOf(key)) this.add('snapshot', keyOf(s));
    });
    const vmChanged = (key: string): void => {
      this.add('vm', key);
      for (const s of snapshots.list()) if (s.metadata.namespace === namespaceOf(key) && stringAt(s, 'spec', 'source', 'name') === nameOf(key)) this.add('snapshot', keyOf(s));
      for (const r of restores.list()) if (r.metadata.namespace === namespaceOf(key) && stringAt(r, 'spec', 'target', 'name') === nameOf(key)) this.add('restore', keyOf(r));
      for (const c of clones.list()) if (c.metadata.namespace === namespaceOf(key) && [stringAt(c, 'spec', 'source', 'name'), stringAt(c, 'spec', 'target', 'name'), stringAt(c, 'status', 'targetName')].includes(nameOf(key))) this.add('clone', keyOf(c));
    };
    vms.onChange(vmChanged);
    vmis.onChange((key) => {
      for (const s of snapshots.list()) if (s.metadata.namespace === namespaceOf(key) && stringAt(s, 'spec', 'source', 'name') === nameOf(key)) this.add('snapshot', keyOf(s));
      for (const r of restores.list()) if (r.metadata.namespace === namespaceOf(key) && stringAt(r, 'spec', 'target', 'name') === nameOf(key)) this.add('restore', keyOf(r));
    });
    pvcs.onChange((key) => {
      const pvc = pvcs.get(key);
      const restoreName = pvc?.metadata.annotations?.[annotations.restoreName];
      if (restoreName !== undefined) this.add('restore', `${namespaceOf(key)}/${restoreName}`);
      for (const vm of vms.list()) if (vm.metadata.namespace === namespaceOf(key)) this.add('vm', keyOf(vm));
      for (const s of snapshots.list()) if (s.metadata.namespace === namespaceOf(key) && stringAt(s, 'status', 'phase') !== 'Succeeded') this.add('snapshot', keyOf(s));
      for (const c of clones.list()) if (c.metadata.namespace === namespaceOf(key) && stringAt(c, 'status', 'restoreName') !== undefined) this.add('clone', keyOf(c));
    });
    restores.onChange((key) => {
      this.add('restore', key);
      const owner = cloneOwner(restores.get(key));
      if (owner !== undefined) this.add('clone', `${namespaceOf(key)}/${owner}`);
    });
    clones.onChange((key) => { this.add('clone', key); });
    this.informers.volumeSnapshots.onChange((key) => {
      const owner = this.informers.volumeSnapshots.get(key)?.metadata.ownerReferences?.find((r) => r.kind === 'VirtualMachineSnapshotContent');
      if (owner !== undefined) this.add('content', `${namespaceOf(key)}/${owner.name}`);
    });
  }

  async start(): Promise<void> {
    await Promise.all(this.owned.map((i) => i.start()));
    await Promise.all(this.loops.map((l) => l.start()));
    this.logger.info('snapshot, restore and clone controllers started');
  }

  async stop(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.stop()));
    await Promise.all(this.owned.map((i) => i.stop()));
  }
}

function spread<K extends string>(key: K, informer: Informer | undefined): Partial<Record<K, Informer>> {
  return informer === undefined ? {} : ({ [key]: informer } as Partial<Record<K, Informer>>);
}

function namespaceOf(key: string): string {
  const slash = key.indexOf('/');
  return slash < 0 ? '' : key.slice(0, slash);
}

function nameOf(key: string): string {
  return key.slice(key.indexOf('/') + 1);
}

function cloneOwner(obj: KObject | undefined): string | undefined {
  return obj?.metadata.ownerReferences?.find((r) => r.kind === 'VirtualMachineClone' && r.apiVersion === cloneApiVersion)?.name;
}
