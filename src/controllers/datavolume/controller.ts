/**
 * The DataVolume controller, after CDI's `datavolume` import controller:
 * (and upload controller) for every `cdi.kubevirt.io/v1beta1` DataVolume it follows `sourceRef` to
 * its DataSource, makes the PVC of the DataVolume's name (owned by it,
 * with CDI's import annotations for the node's import runner), and mirrors
 * the PVC and the runner's annotations into the DataVolume's status. The
 * PVC goes with the DataVolume through the garbage collector.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { recordAt, stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { EventRecorder } from '../events/index.js';
import { ControllerLoop } from '../loop.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { canonicalJson, errorMessage, isControlledBy, isMarkedForDeletion, logFieldsOf, timestamp } from '../vmi/index.js';
import { cdiAnnotations } from '../../storage/import/index.js';
import { claimFor, claimSpecOf, defaultStorageClass, sourceOf } from './claim.js';
import type { DataVolumeSource } from './claim.js';
import { computeStatus } from './status.js';
import type { Blocked } from './status.js';

/** Tuning and seams of the DataVolume controller; every field is optional. */
export interface DataVolumeControllerOptions {
  /** DataVolumes reconciled at once. Default 3 (CDI's). */
  concurrency?: number;
  dataVolumeInformer?: Informer;
  pvcInformer?: Informer;
  storageClassInformer?: Informer;
  recorder?: EventRecorder;
  now?: () => number;
}

/** How deep `sourceRef` → DataSource → DataSource may go (CDI's limit is small too). */
const maxSourceRefDepth = 4;

/** Keeps each DataVolume's PVC and status. */
export class DataVolumeController {
  private readonly dvs: Informer;
  private readonly pvcs: Informer;
  private readonly classes: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  private readonly now: () => number;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: DataVolumeControllerOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.recorder = options.recorder ?? new EventRecorder(client, 'datavolume-import-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: options.concurrency ?? 3, baseDelayMs: 100, maxDelayMs: 60_000, objectOf: (key) => this.dvs.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.dvs = this.loop.informer(options.dataVolumeInformer, () => new Informer(client, resources.dataVolumes, logger));
    this.pvcs = this.loop.informer(options.pvcInformer, () => new Informer(client, resources.persistentVolumeClaims, logger));
    this.classes = this.loop.informer(options.storageClassInformer, () => new Informer(client, resources.storageClasses, logger));
    this.dvs.onChange((key) => { this.queue.add(key); });
    // A DataVolume's PVC has its name: the PVC's key is the DataVolume's.
    this.pvcs.onChange((key) => { if (this.dvs.get(key) !== undefined) this.queue.add(key); });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('datavolume controller started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const dv = this.dvs.get(key);
    if (dv === undefined) return {};
    const log = this.logger.child(logFieldsOf(dv));
    let pvc = this.pvcs.get(key);
    let blocked: Blocked | undefined;
    if (pvc !== undefined && !isControlledBy(pvc, dv)) {
      blocked = { reason: 'ErrResourceExists', message: `Resource "${pvc.metadata.name ?? ''}" already exists and is not managed by DataVolume` };
      pvc = undefined;
    } else if (pvc === undefined && !isMarkedForDeletion(dv)) {
      const made = await this.makeClaim(dv, log);
      if ('blocked' in made) blocked = made.blocked;
      else pvc = made.pvc;
    }
    // An upload's claim is bound at once, consumer or not (the volume controller sees to it), as CDI's upload pod makes it bound.
    const waitsForConsumer = bindingModeOf(pvc, this.classes.list()) === 'WaitForFirstConsumer' && pvc?.metadata.annotations?.[cdiAnnotations.uploadTarget] === undefined;
    const { status, events } = computeStatus({ dv, pvc, waitForFirstConsumer: waitsForConsumer, blocked, now: timestamp(this.now()) });
    if (canonicalJson(recordAt(dv, 'status') ?? {}) !== canonicalJson(status)) {
      try {
        await this.client.update(resources.dataVolumes, { ...dv, status }, 'status');
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'NotFound') return {};
        throw err;
      }
      for (const e of events) this.recorder.record(dv, e.type, e.reason, e.message);
      log.debug('status updated', { phase: status.phase, progress: status.progress });
    }
    // A DataSource that appears later, or a default class, unblocks: look again now and then.
    return blocked !== undefined && blocked.reason !== 'UnsupportedSource' && blocked.reason !== 'ErrResourceExists' ? { requeueAfter: 5000 } : {};
  }

  /** Creates the DataVolume's PVC, or says why it cannot yet. */
  private async makeClaim(dv: KObject, log: Logger): Promise<{ pvc: KObject } | { blocked: Blocked }> {
    const resolved = await this.resolveSource(dv);
    if ('blocked' in resolved) return resolved;
    const spec = claimSpecOf(dv, defaultStorageClass(this.classes.list()));
    if ('error' in spec && typeof spec.error === 'string') return { blocked: { reason: 'InvalidStorage', message: spec.error } };
    try {
      const pvc = await this.client.create(resources.persistentVolumeClaims, claimFor(dv, spec, resolved.source));
      log.info('created the PVC', { source: resolved.source.kind, storageClass: stringAt(pvc, 'spec', 'storageClassName') });
      return { pvc };
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'AlreadyExists') {
        const existing = await this.client.tryGet(resources.persistentVolumeClaims, dv.metadata.namespace, dv.metadata.name ?? '');
        if (existing !== undefined && isControlledBy(existing, dv)) return { pvc: existing };
      }
      if (err instanceof ApiError && ['Invalid', 'BadRequest', 'Forbidden'].includes(err.reason)) {
        return { blocked: { reason: 'ErrClaimNotValid', message: `the PVC for this DataVolume was refused: ${errorMessage(err)}` } };
      }
      throw err;
    }
  }

  /** `spec.source`, or the source the `sourceRef` DataSource (chain) points at. */
  private async resolveSource(dv: KObject): Promise<{ source: DataVolumeSource } | { blocked: Blocked }> {
    const dvNamespace = dv.metadata.namespace ?? 'default';
    let source = sourceOf(recordAt(dv, 'spec', 'source'), dvNamespace);
    let ref = recordAt(dv, 'spec', 'sourceRef');
    let namespace = dvNamespace;
    for (let depth = 0; source === undefined && ref !== undefined; depth++) {
      if (depth === maxSourceRefDepth) return { blocked: { reason: 'InvalidSourceRef', message: `spec.sourceRef goes through more than ${maxSourceRefDepth} DataSources: point it at the DataSource that names the source` } };
      const kind = stringAt(ref, 'kind') ?? 'DataSource';
      const name = stringAt(ref, 'name') ?? '';
      namespace = stringAt(ref, 'namespace') ?? namespace;
      if (kind !== 'DataSource') return { blocked: { reason: 'UnsupportedSource', message: `spec.sourceRef.kind ${kind} is not supported: it must be DataSource` } };
      const ds = await this.client.tryGet(resources.dataSources, namespace, name);
      if (ds === undefined) return { blocked: { reason: 'NotFound', message: `DataSource ${namespace}/${name} (spec.sourceRef) not found: create it, or fix spec.sourceRef` } };
      const dsSource = recordAt(ds, 'spec', 'source') ?? {};
      const next = recordAt(dsSource, 'dataSource');
      if (next !== undefined) {
        ref = { kind: 'DataSource', ...next };
        continue;
      }
      source = sourceOf(dsSource, dvNamespace, namespace);
      ref = undefined;
      if (source === undefined || Object.keys(dsSource).length === 0) return { blocked: { reason: 'NotFound', message: `DataSource ${namespace}/${name} names no source (spec.source.pvc or snapshot): fix the DataSource` } };
    }
    if (source === undefined) return { blocked: { reason: 'UnsupportedSource', message: 'the DataVolume has neither spec.source nor spec.sourceRef: set one of them' } };
    if (source.kind === 'unsupported') return { blocked: { reason: 'UnsupportedSource', message: source.message } };
    return { source };
  }
}

/** `volumeBindingMode` of the PVC's class, when the class is known. */
function bindingModeOf(pvc: KObject | undefined, classes: readonly KObject[]): string | undefined {
  const name = pvc === undefined ? undefined : stringAt(pvc, 'spec', 'storageClassName');
  if (name === undefined) return undefined;
  return stringAt(classes.find((c) => c.metadata.name === name), 'volumeBindingMode');
}
