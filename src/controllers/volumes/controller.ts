/**
 * The control plane's part of Kubernetes' volume machinery for Vireo's
 * claims (kube-controller-manager's PV controller and pvc-protection
 * controller, cut down to what dynamic local volumes need):
 *
 * - a new claim shows phase Pending, names its provisioner
 *   (`volume.kubernetes.io/storage-provisioner`) and, for a
 *   WaitForFirstConsumer class, says it waits for its first consumer;
 * - a claim of an Immediate local class (or a CDI upload's claim, whatever
 *   the class) is sent to the Ready node with the most free local storage
 *   that fits it (`selected-node`), whose agent provisions it;
 * - a claim being deleted keeps its `kubernetes.io/pvc-protection`
 *   finalizer while a VMI that has not finished uses it (directly or
 *   through a DataVolume of its name);
 * - a volume whose claim is gone becomes Released (its provisioner then
 *   deletes it when its reclaim policy says Delete).
 */
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import { isFinal } from '../../api/kinds/vm-state.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { objectFields } from '../../log/logger.js';
import { bindingModeOf, claimNamesOf, formatBytes, isLocalClass, pvcProtectionFinalizer, requestedBytes, selectedNodeAnnotation, storageProvisionerAnnotation } from '../../storage/local/index.js';
import type { StorageView } from '../../storage/local/index.js';
import { claimDataSource, dataSourceNodeAnnotation } from '../../storage/snapshots/index.js';
import { cdiAnnotations } from '../../storage/import/index.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { pickNodeFor } from './node-choice.js';

const claimPrefix = 'claim:';
const volumePrefix = 'volume:';

/** See the module comment. */
export class VolumeController {
  private readonly claims: Informer;
  private readonly volumes: Informer;
  private readonly classes: Informer;
  private readonly nodes: Informer;
  private readonly vmis: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  /** The claims each VMI used when last seen, so a VMI that is gone still wakes them. */
  private readonly usedBy = new Map<string, string[]>();

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
  ) {
    this.recorder = new EventRecorder(client, 'persistentvolume-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 2, baseDelayMs: 100, maxDelayMs: 60_000, objectOf: (key) => (key.startsWith(claimPrefix) ? this.claims.get(key.slice(claimPrefix.length)) : this.volumes.get(key.slice(volumePrefix.length))) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.claims = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumeClaims, logger));
    this.volumes = this.loop.informer(undefined, () => new Informer(client, resources.persistentVolumes, logger));
    this.classes = this.loop.informer(undefined, () => new Informer(client, resources.storageClasses, logger));
    this.nodes = this.loop.informer(undefined, () => new Informer(client, resources.nodes, logger));
    this.vmis = this.loop.informer(undefined, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.claims.onChange((key) => { this.queue.add(claimPrefix + key); this.wakeVolumes(); });
    this.volumes.onChange((key) => { this.queue.add(volumePrefix + key); });
    this.classes.onChange(() => { this.wakeClaims(); });
    // A node reporting room may take an Immediate claim that waits.
    this.nodes.onChange(() => { this.wakeClaims(); });
    this.vmis.onChange((key) => { this.onVmiChange(key); });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('volume controller started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private wakeClaims(): void {
    for (const pvc of this.claims.list()) this.queue.add(`${claimPrefix}${pvc.metadata.namespace ?? ''}/${pvc.metadata.name ?? ''}`);
  }

  private wakeVolumes(): void {
    for (const pv of this.volumes.list()) if (stringAt(pv, 'status', 'phase') === 'Bound') this.queue.add(volumePrefix + (pv.metadata.name ?? ''));
  }

  private onVmiChange(key: string): void {
    const vmi = this.vmis.get(key);
    const namespace = key.slice(0, key.indexOf('/'));
    const now = vmi === undefined ? [] : claimNamesOf(vmi);
    for (const claim of new Set([...(this.usedBy.get(key) ?? []), ...now])) this.queue.add(`${claimPrefix}${namespace}/${claim}`);
    if (vmi === undefined) this.usedBy.delete(key);
    else this.usedBy.set(key, now);
  }

  private async reconcile(key: string): Promise<ReconcileResult | undefined> {
    if (key.startsWith(claimPrefix)) return this.reconcileClaim(key.slice(claimPrefix.length));
    if (key.startsWith(volumePrefix)) return this.reconcileVolume(key.slice(volumePrefix.length));
    return {};
  }

  private async reconcileClaim(key: string): Promise<ReconcileResult | undefined> {
    const pvc = this.claims.get(key);
    if (pvc === undefined) return {};
    if (pvc.metadata.deletionTimestamp !== undefined) return this.release(pvc);
    if ((stringAt(pvc, 'spec', 'volumeName') ?? '') !== '') return {};
    const className = stringAt(pvc, 'spec', 'storageClassName') ?? '';
    const sc = className === '' ? undefined : this.classes.get(className);
    const provisioner = stringAt(sc, 'provisioner');
    const annotations = pvc.metadata.annotations ?? {};
    if (provisioner !== undefined && annotations[storageProvisionerAnnotation] !== provisioner) {
      await this.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', { metadata: { annotations: { [storageProvisionerAnnotation]: provisioner } } });
    }
    if (stringAt(pvc, 'status', 'phase') === undefined) {
      await this.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', { status: { phase: 'Pending' } }, { subresource: 'status' });
    }
    if (sc === undefined || annotations[selectedNodeAnnotation] !== undefined) return {};
    if (bindingModeOf(sc) === 'WaitForFirstConsumer' && !bindsAtOnce(pvc)) {
      this.recorder.record(pvc, 'Normal', 'WaitForFirstConsumer', 'waiting for first consumer to be created before binding');
      return {};
    }
    if (!isLocalClass(sc)) return {};
    return this.sendToNode(pvc);
  }

  /**
   * An Immediate local claim goes to the node with the most room that fits
   * it; a clone or restore to the node holding its source, once the
   * snapshot controller has named it.
   */
  private async sendToNode(pvc: KObject): Promise<ReconcileResult> {
    const bytes = requestedBytes(pvc) ?? 0;
    const view: StorageView = { pvs: this.volumes.list(), pvcs: this.claims.list(), isLocalClass: (name) => isLocalClass(this.classes.get(name)) };
    const sourceNode = pvc.metadata.annotations?.[dataSourceNodeAnnotation];
    if (sourceNode === undefined && claimDataSource(pvc) !== undefined) return {};
    const choice = sourceNode === undefined ? pickNodeFor(bytes, this.nodes.list(), view) : { node: sourceNode };
    if ('reason' in choice) {
      this.recorder.record(pvc, 'Warning', 'ProvisioningFailed', `no node can hold ${formatBytes(bytes)} of local storage: ${choice.reason}`);
      return { requeueAfter: 30_000 };
    }
    try {
      await this.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', {
        metadata: { resourceVersion: pvc.metadata.resourceVersion, annotations: { [selectedNodeAnnotation]: choice.node } },
      });
    } catch (err) {
      if (err instanceof ApiError && (err.reason === 'NotFound' || err.reason === 'Conflict')) return {};
      throw err;
    }
    this.logger.info('claim sent to a node', { ...objectFields(pvc), node: choice.node });
    return {};
  }

  /**
   * A claim being deleted loses its protection once no unfinished VMI uses
   * it. The VMIs are listed from the API, not the cache: a VMI created a
   * moment ago must still count.
   */
  private async release(pvc: KObject): Promise<ReconcileResult> {
    const finalizers = pvc.metadata.finalizers ?? [];
    if (!finalizers.includes(pvcProtectionFinalizer)) return {};
    const namespace = pvc.metadata.namespace ?? '';
    const name = pvc.metadata.name ?? '';
    const list = await this.client.list(resources.virtualMachineInstances, { namespace });
    const users = list.items.filter((vmi) => !isFinal(vmi) && claimNamesOf(vmi).includes(name));
    if (users.length > 0) {
      this.logger.debug('claim in use, kept', { ...objectFields(pvc), vmis: users.map((v) => v.metadata.name) });
      return {};
    }
    try {
      await this.client.patch(resources.persistentVolumeClaims, namespace, name, 'merge', {
        metadata: { resourceVersion: pvc.metadata.resourceVersion, finalizers: finalizers.filter((f) => f !== pvcProtectionFinalizer) },
      });
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return {};
      throw err;
    }
    this.logger.info('claim no longer in use: protection removed', objectFields(pvc));
    return {};
  }

  /** A bound volume whose claim is gone (or replaced by another of the same name) is Released. */
  private async reconcileVolume(name: string): Promise<ReconcileResult> {
    const pv = this.volumes.get(name);
    if (pv === undefined || stringAt(pv, 'status', 'phase') !== 'Bound') return {};
    const namespace = stringAt(pv, 'spec', 'claimRef', 'namespace');
    const claimName = stringAt(pv, 'spec', 'claimRef', 'name');
    if (namespace === undefined || claimName === undefined) return {};
    const cached = this.claims.get(`${namespace}/${claimName}`);
    if (cached !== undefined && cached.metadata.uid === stringAt(pv, 'spec', 'claimRef', 'uid')) return {};
    // The cache may lag behind a claim just created: ask the API before releasing.
    const claim = await this.client.tryGet(resources.persistentVolumeClaims, namespace, claimName);
    if (claim !== undefined && claim.metadata.uid === stringAt(pv, 'spec', 'claimRef', 'uid')) return {};
    await this.client.patch(resources.persistentVolumes, undefined, name, 'merge', { status: { phase: 'Released' } }, { subresource: 'status' });
    this.logger.info('volume released', { ...objectFields(pv), claim: `${namespace}/${claimName}` });
    return {};
  }
}

/**
 * A claim that binds on a WaitForFirstConsumer class without a consumer:
 * an upload's (its data comes before any VM, as CDI's upload pod makes the
 * claim bound) and one asking for it (virtctl's `--force-bind`).
 */
function bindsAtOnce(pvc: KObject): boolean {
  const annotations = pvc.metadata.annotations ?? {};
  return annotations[cdiAnnotations.uploadTarget] !== undefined || annotations[cdiAnnotations.bindImmediate] !== undefined;
}
