/**
 * The control plane's snapshot controller (external-snapshotter's common
 * snapshot-controller, for the `vireo.io/local` driver and pre-provisioned
 * contents of any driver):
 *
 * - a VolumeSnapshot of a claim gets its class (the driver's default class
 *   when it names none), a VolumeSnapshotContent `snapcontent-<uid>` for
 *   the claim's volume, and is bound to it; the agent of the volume's node
 *   cuts the snapshot and fills the content's status, which the
 *   snapshot's status then mirrors (`readyToUse`, `restoreSize`,
 *   `creationTime`, `error`). What stops it (no claim, an unbound claim, no
 *   class) goes to `status.error` and a Warning Event, and is retried;
 * - a VolumeSnapshot of an existing content binds to it;
 * - a claim being snapshotted keeps `pvc-as-source-protection`; a snapshot
 *   claims are being restored from keeps `volumesnapshot-as-source-protection`;
 * - deleting a VolumeSnapshot deletes its content when the policy is
 *   Delete (the agent then removes the data);
 * - an unbound claim whose data source is a snapshot or a claim is
 *   annotated with the node holding that data
 *   (`storage.vireo.io/data-source-node`), where the scheduler and the
 *   Immediate binder must send it.
 */
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { booleanAt, numberAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { objectFields } from '../../log/logger.js';
import { classParameters, isLocalVolume, localProvisioner, volumeModeOf } from '../../storage/local/index.js';
import {
  bytesQuantity,
  claimAsSourceFinalizer,
  claimDataSource,
  contentFinalizer,
  contentPrefix,
  dataSourceNodeAnnotation,
  pickSnapshotClass,
  snapshotAsSourceFinalizer,
  snapshotBoundFinalizer,
  snapshotDeletionPolicy,
  sourceNodeOf,
  volumeSnapshotClasses,
  volumeSnapshotContents,
  volumeSnapshots,
} from '../../storage/snapshots/index.js';
import type { SourceLookup } from '../../storage/snapshots/index.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';

const snapshotPrefix = 'vs:';
const claimPrefix = 'pvc:';

function keyOf(obj: KObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''}`;
}

/** metav1.Time: RFC 3339, whole seconds. */
function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** See the module comment. */
export class SnapshotController {
  private readonly snapshots: Informer;
  private readonly contents: Informer;
  private readonly classes: Informer;
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly storageClasses: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
  ) {
    this.recorder = new EventRecorder(client, 'snapshot-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 2, baseDelayMs: 200, maxDelayMs: 30_000, objectOf: (key) => (key.startsWith(snapshotPrefix) ? this.snapshots.get(key.slice(snapshotPrefix.length)) : this.claims.get(key.slice(claimPrefix.length))) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.snapshots = this.loop.informer(undefined, () => new Informer(client, volumeSnapshots, logger));
    this.contents = this.loop.informer(undefined, () => new Informer(client, volumeSnapshotContents, logger));
    this.classes = this.loop.informer(undefined, () => new Informer(client, volumeSnapshotClasses, logger));
    this.claims = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumeClaims, logger));
    this.volumes = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumes, logger));
    this.storageClasses = this.loop.informer(undefined, () => new Informer(client, resources.storageClasses, logger));
    this.snapshots.onChange((key) => {
      this.queue.add(snapshotPrefix + key);
      this.wakeClaimsOf(key);
    });
    this.contents.onChange((key) => {
      const ref = this.contents.get(key);
      const ns = stringAt(ref, 'spec', 'volumeSnapshotRef', 'namespace');
      const name = stringAt(ref, 'spec', 'volumeSnapshotRef', 'name');
      if (ns !== undefined && name !== undefined) this.queue.add(`${snapshotPrefix}${ns}/${name}`);
      else this.wakeSnapshots();
    });
    this.classes.onChange(() => { this.wakeSnapshots(); });
    this.claims.onChange((key) => {
      this.queue.add(claimPrefix + key);
      this.wakeSnapshotsOf(key);
      this.wakeClaimsOf(key);
      // A claim restored from a snapshot being deleted may have been what kept it.
      for (const vs of this.snapshots.list()) if (vs.metadata.deletionTimestamp !== undefined) this.queue.add(snapshotPrefix + keyOf(vs));
    });
    this.volumes.onChange(() => { this.wakeSnapshots(); this.wakeWaitingClaims(); });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('snapshot controller started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private wakeSnapshots(): void {
    for (const vs of this.snapshots.list()) this.queue.add(snapshotPrefix + keyOf(vs));
  }

  /** The snapshots of claim `key` (namespace/name). */
  private wakeSnapshotsOf(key: string): void {
    const [namespace, name] = key.split('/');
    for (const vs of this.snapshots.list()) {
      if (vs.metadata.namespace === namespace && stringAt(vs, 'spec', 'source', 'persistentVolumeClaimName') === name) this.queue.add(snapshotPrefix + keyOf(vs));
    }
  }

  /** The claims populated from the snapshot or claim `key` (namespace/name). */
  private wakeClaimsOf(key: string): void {
    const [namespace, name] = key.split('/');
    for (const pvc of this.claims.list()) {
      const source = claimDataSource(pvc);
      if (pvc.metadata.namespace === namespace && source !== undefined && 'name' in source && source.name === name) this.queue.add(claimPrefix + keyOf(pvc));
    }
  }

  private wakeWaitingClaims(): void {
    for (const pvc of this.claims.list()) if (claimDataSource(pvc) !== undefined) this.queue.add(claimPrefix + keyOf(pvc));
  }

  private lookup(): SourceLookup {
    return {
      claim: (ns, name) => this.claims.get(`${ns}/${name}`),
      volume: (name) => this.volumes.get(name),
      snapshot: (ns, name) => this.snapshots.get(`${ns}/${name}`),
      content: (name) => this.contents.get(name),
    };
  }

  private async reconcile(key: string): Promise<ReconcileResult | undefined> {
    if (key.startsWith(snapshotPrefix)) return this.reconcileSnapshot(key.slice(snapshotPrefix.length));
    if (key.startsWith(claimPrefix)) return this.reconcileClaim(key.slice(claimPrefix.length));
    return {};
  }

  private async reconcileSnapshot(key: string): Promise<ReconcileResult | undefined> {
    const vs = this.snapshots.get(key);
    if (vs === undefined) return {};
    if (vs.metadata.deletionTimestamp !== undefined) return this.deleteSnapshot(vs);
    const contentName = stringAt(vs, 'spec', 'source', 'volumeSnapshotContentName');
    if (contentName !== undefined) return this.bindExisting(vs, contentName);
    const claimName = stringAt(vs, 'spec', 'source', 'persistentVolumeClaimName') ?? '';
    const dynamic = this.contents.get(contentPrefix + (vs.metadata.uid ?? ''));
    if (dynamic !== undefined) {
      await this.bind(vs, dynamic);
      return this.protectClaim(vs, claimName);
    }
    return this.createContent(vs, claimName);
  }

  /** Makes the content of a snapshot of claim `claimName`, or says in the snapshot's status why it cannot yet. */
  private async createContent(vs: KObject, claimName: string): Promise<ReconcileResult> {
    const namespace = vs.metadata.namespace ?? '';
    const pvc = this.claims.get(`${namespace}/${claimName}`);
    if (pvc === undefined) return this.snapshotError(vs, `failed to get input parameters to create snapshot ${vs.metadata.name ?? ''}: persistentvolumeclaim "${claimName}" not found in namespace "${namespace}"; create the claim or fix spec.source.persistentVolumeClaimName`);
    if (pvc.metadata.deletionTimestamp !== undefined) return this.snapshotError(vs, `persistentvolumeclaim "${claimName}" is being deleted, so it cannot be snapshotted`);
    const volumeName = stringAt(pvc, 'spec', 'volumeName') ?? '';
    const pv = volumeName === '' ? undefined : this.volumes.get(volumeName);
    if (pv === undefined || stringAt(pvc, 'status', 'phase') !== 'Bound') {
      return this.snapshotError(vs, `the PVC ${claimName} is not yet bound to a PV, will not attempt to take a snapshot (a WaitForFirstConsumer claim is bound when its first VM starts)`);
    }
    if (!isLocalVolume(pv)) return this.snapshotError(vs, `the volume "${volumeName}" of claim "${claimName}" was not made by the ${localProvisioner} provisioner, and no other snapshot driver runs here`);
    const className = stringAt(vs, 'spec', 'volumeSnapshotClassName');
    if (className === undefined) {
      const picked = pickSnapshotClass(this.classes.list(), localProvisioner);
      if ('error' in picked) return this.snapshotError(vs, picked.error);
      // As the snapshot controller does: the snapshot names the default class it got.
      await this.client.patch(volumeSnapshots, namespace, vs.metadata.name ?? '', 'merge', { spec: { volumeSnapshotClassName: picked.name } });
      return {};
    }
    const cls = this.classes.get(className);
    if (cls === undefined) return this.snapshotError(vs, `VolumeSnapshotClass "${className}" not found; create it or name another class`);
    if (stringAt(cls, 'driver') !== localProvisioner) return this.snapshotError(vs, `VolumeSnapshotClass "${className}" is for driver "${stringAt(cls, 'driver') ?? ''}", but the volume of claim "${claimName}" is a ${localProvisioner} volume`);
    // Protect the claim before the content exists: from then on its volume must stay until the snapshot is cut.
    await this.addFinalizer(resources.persistentVolumeClaims, pvc, claimAsSourceFinalizer);
    const name = contentPrefix + (vs.metadata.uid ?? '');
    const content: KObject = {
      apiVersion: 'snapshot.storage.k8s.io/v1',
      kind: 'VolumeSnapshotContent',
      metadata: { name, finalizers: [contentFinalizer] },
      spec: {
        volumeSnapshotRef: { apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshot', name: vs.metadata.name, namespace, uid: vs.metadata.uid, resourceVersion: vs.metadata.resourceVersion },
        driver: localProvisioner,
        deletionPolicy: snapshotDeletionPolicy(cls),
        source: { volumeHandle: volumeName },
        volumeSnapshotClassName: className,
        sourceVolumeMode: volumeModeOf(pv),
      },
    };
    let made: KObject;
    try {
      made = await this.client.create(volumeSnapshotContents, content);
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
      made = await this.client.get(volumeSnapshotContents, undefined, name);
    }
    this.recorder.record(vs, 'Normal', 'CreatingSnapshot', `Waiting for a snapshot ${namespace}/${vs.metadata.name ?? ''} to be created by the CSI driver.`);
    this.logger.info('snapshot content created', { ...objectFields(vs), content: name, volume: volumeName, parameters: classParameters(cls) });
    await this.bind(vs, made);
    return {};
  }

  /** A snapshot of a pre-provisioned content: bound when the content points back at it. */
  private async bindExisting(vs: KObject, contentName: string): Promise<ReconcileResult> {
    const content = this.contents.get(contentName);
    if (content === undefined) return this.snapshotError(vs, `VolumeSnapshotContent "${contentName}" not found; create it or fix spec.source.volumeSnapshotContentName`);
    const ref = { name: stringAt(content, 'spec', 'volumeSnapshotRef', 'name'), namespace: stringAt(content, 'spec', 'volumeSnapshotRef', 'namespace') };
    if (ref.name !== vs.metadata.name || ref.namespace !== vs.metadata.namespace) {
      return this.snapshotError(vs, `VolumeSnapshotContent "${contentName}" is for VolumeSnapshot ${ref.namespace ?? ''}/${ref.name ?? ''}, not this one; set its spec.volumeSnapshotRef to this snapshot`);
    }
    await this.bind(vs, content);
    return {};
  }

  /** Binds `vs` to `content` and mirrors the content's status. */
  private async bind(vs: KObject, content: KObject): Promise<void> {
    const namespace = vs.metadata.namespace ?? '';
    const name = vs.metadata.name ?? '';
    const finalizers = vs.metadata.finalizers ?? [];
    const wanted = [snapshotAsSourceFinalizer, snapshotBoundFinalizer].filter((f) => !finalizers.includes(f));
    if (wanted.length > 0) {
      await this.client.patch(volumeSnapshots, namespace, name, 'merge', { metadata: { resourceVersion: vs.metadata.resourceVersion, finalizers: [...finalizers, ...wanted] } });
    }
    const ready = booleanAt(content, 'status', 'readyToUse') === true;
    const status: Record<string, unknown> = { boundVolumeSnapshotContentName: content.metadata.name, readyToUse: ready };
    const created = numberAt(content, 'status', 'creationTime');
    if (created !== undefined) status.creationTime = rfc3339(Math.floor(created / 1_000_000));
    const size = numberAt(content, 'status', 'restoreSize');
    if (size !== undefined) status.restoreSize = bytesQuantity(size);
    const message = stringAt(content, 'status', 'error', 'message');
    status.error = message === undefined || ready ? null : { message, time: stringAt(content, 'status', 'error', 'time') ?? rfc3339(Date.now()) };
    const was = {
      bound: stringAt(vs, 'status', 'boundVolumeSnapshotContentName'),
      ready: booleanAt(vs, 'status', 'readyToUse'),
      size: stringAt(vs, 'status', 'restoreSize'),
      time: stringAt(vs, 'status', 'creationTime'),
      error: stringAt(vs, 'status', 'error', 'message'),
    };
    const same = was.bound === status.boundVolumeSnapshotContentName && was.ready === ready && was.size === status.restoreSize && was.time === status.creationTime && was.error === (message === undefined || ready ? undefined : message);
    if (same) return;
    await this.client.patch(volumeSnapshots, namespace, name, 'merge', { status }, { subresource: 'status' });
    if (ready && was.ready !== true) {
      this.recorder.record(vs, 'Normal', 'SnapshotCreated', `Snapshot ${namespace}/${name} was successfully created by the CSI driver.`);
      this.recorder.record(vs, 'Normal', 'SnapshotReady', `Snapshot ${namespace}/${name} is ready to use.`);
    } else if (!ready && message !== undefined && was.error !== message) {
      this.recorder.record(vs, 'Warning', 'SnapshotCreationFailed', message);
    }
  }

  /** While a snapshot of it is being cut, the claim keeps `pvc-as-source-protection`; released once none is. */
  private async protectClaim(vs: KObject, claimName: string): Promise<ReconcileResult> {
    const pvc = this.claims.get(`${vs.metadata.namespace ?? ''}/${claimName}`);
    if (pvc !== undefined) await this.releaseClaim(pvc);
    return {};
  }

  private async releaseClaim(pvc: KObject): Promise<void> {
    const finalizers = pvc.metadata.finalizers ?? [];
    if (!finalizers.includes(claimAsSourceFinalizer)) return;
    const cutting = this.snapshots.list().some(
      (vs) => vs.metadata.namespace === pvc.metadata.namespace && stringAt(vs, 'spec', 'source', 'persistentVolumeClaimName') === pvc.metadata.name && vs.metadata.deletionTimestamp === undefined && booleanAt(vs, 'status', 'readyToUse') !== true && stringAt(vs, 'status', 'error', 'message') === undefined,
    );
    if (cutting) return;
    await this.patchFinalizers(resources.persistentVolumeClaims, pvc, finalizers.filter((f) => f !== claimAsSourceFinalizer));
  }

  /** A snapshot being deleted: its content goes too under Delete; it stays while claims are being restored from it. */
  private async deleteSnapshot(vs: KObject): Promise<ReconcileResult> {
    const finalizers = vs.metadata.finalizers ?? [];
    if (!finalizers.includes(snapshotBoundFinalizer) && !finalizers.includes(snapshotAsSourceFinalizer)) return {};
    const restoring = this.claims.list().filter((pvc) => {
      const source = claimDataSource(pvc);
      return pvc.metadata.namespace === vs.metadata.namespace && source !== undefined && 'kind' in source && source.kind === 'VolumeSnapshot' && source.name === vs.metadata.name && (stringAt(pvc, 'spec', 'volumeName') ?? '') === '' && pvc.metadata.deletionTimestamp === undefined;
    });
    if (restoring.length > 0) {
      this.logger.debug('snapshot kept while claims are restored from it', { ...objectFields(vs), claims: restoring.map((c) => c.metadata.name) });
      return {};
    }
    const contentName = stringAt(vs, 'status', 'boundVolumeSnapshotContentName') ?? (stringAt(vs, 'spec', 'source', 'persistentVolumeClaimName') === undefined ? undefined : contentPrefix + (vs.metadata.uid ?? ''));
    const content = contentName === undefined ? undefined : this.contents.get(contentName);
    if (content !== undefined && stringAt(content, 'spec', 'deletionPolicy') === 'Delete' && content.metadata.deletionTimestamp === undefined) {
      try {
        await this.client.delete(volumeSnapshotContents, undefined, contentName ?? '');
      } catch (err) {
        if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
      }
    }
    await this.patchFinalizers(volumeSnapshots, vs, finalizers.filter((f) => f !== snapshotBoundFinalizer && f !== snapshotAsSourceFinalizer));
    const pvc = this.claims.get(`${vs.metadata.namespace ?? ''}/${stringAt(vs, 'spec', 'source', 'persistentVolumeClaimName') ?? ''}`);
    if (pvc !== undefined) await this.releaseClaim(pvc);
    return {};
  }

  /**
   * A claim: released from snapshot protection once no snapshot of it is
   * being cut; while unbound with a data source, told which node holds it.
   */
  private async reconcileClaim(key: string): Promise<ReconcileResult | undefined> {
    const pvc = this.claims.get(key);
    if (pvc === undefined) return {};
    await this.releaseClaim(pvc);
    const source = claimDataSource(pvc);
    if (source === undefined || pvc.metadata.deletionTimestamp !== undefined || (stringAt(pvc, 'spec', 'volumeName') ?? '') !== '') return {};
    if ('unsupported' in source) {
      this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', source.unsupported);
      return {};
    }
    const where = sourceNodeOf(source, pvc.metadata.namespace ?? '', this.lookup());
    if ('wait' in where) {
      this.recorder.record(pvc, 'Normal', 'WaitingForDataSource', `waiting for the data source: ${where.wait}`);
      return {};
    }
    if (pvc.metadata.annotations?.[dataSourceNodeAnnotation] === where.node) return {};
    try {
      await this.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', { metadata: { resourceVersion: pvc.metadata.resourceVersion, annotations: { [dataSourceNodeAnnotation]: where.node } } });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return {};
      throw err;
    }
    return {};
  }

  /** Writes `status.error` and a Warning Event (once per message); retried later. */
  private async snapshotError(vs: KObject, message: string): Promise<ReconcileResult> {
    if (stringAt(vs, 'status', 'error', 'message') !== message) {
      await this.client.patch(volumeSnapshots, vs.metadata.namespace, vs.metadata.name ?? '', 'merge', { status: { readyToUse: false, error: { message, time: rfc3339(Date.now()) } } }, { subresource: 'status' });
      this.recorder.record(vs, 'Warning', 'SnapshotContentCreationFailed', message);
      this.logger.info('snapshot cannot be taken yet', { ...objectFields(vs), reason: message });
    }
    return { requeueAfter: 10_000 };
  }

  private async addFinalizer(ref: typeof volumeSnapshots, obj: KObject, finalizer: string): Promise<void> {
    const finalizers = obj.metadata.finalizers ?? [];
    if (!finalizers.includes(finalizer)) await this.patchFinalizers(ref, obj, [...finalizers, finalizer]);
  }

  private async patchFinalizers(ref: typeof volumeSnapshots, obj: KObject, finalizers: string[]): Promise<void> {
    try {
      await this.client.patch(ref, obj.metadata.namespace, obj.metadata.name ?? '', 'merge', { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers } });
    } catch (err) {
      // A newer version is on its way through the informer; the next pass works on it.
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return;
      throw err;
    }
  }
}
