/**
 * VirtualMachineInstanceReplicaSet, after KubeVirt's `watch/replicaset`:
 * keeps `spec.replicas` live VMIs from `spec.template` that match
 * `spec.selector` (adopting orphans that match, releasing its own that stop
 * matching), deletes finished ones so they are replaced, and keeps
 * `status.replicas`, `readyReplicas` and `labelSelector` current for the
 * scale subresource. `spec.paused` stops scaling, not status.
 *
 * Each pass lists the namespace's VMIs from the API rather than the cache:
 * VMIs made with `generateName` cannot be told apart from a stale cache, and
 * a cache that lags behind a create would make the pass create again.
 */
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { labelSelectorFromObject } from '../../api/labels.js';
import type { LabelSelector } from '../../api/labels.js';
import { booleanAt, numberAt, recordAt, stringAt, stringMapAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { WorkQueue } from '../queue.js';
import { ControllerLoop } from '../loop.js';
import type { ReconcileResult } from '../queue.js';
import { EventRecorder } from '../events/index.js';
import { controllerRefOf, controllerRefTo, errorMessage, isFinal, isMarkedForDeletion, keyOf, logFieldsOf } from '../vmi/index.js';
import { deletionOrder, replicaSetStatus, statusDiffers } from './status.js';

/** Tuning and seams of the replica set controller; every field is optional. */
export interface ReplicaSetControllerOptions {
  /** Most VMIs created or deleted in one pass (KubeVirt's `burstReplicas`). Default 250. */
  burstReplicas?: number;
  /** Replica sets reconciled at once. Default 2. */
  concurrency?: number;
  replicaSetInformer?: Informer;
  vmiInformer?: Informer;
  recorder?: EventRecorder;
  now?: () => number;
}

const ownerKind = 'VirtualMachineInstanceReplicaSet';

/** Keeps replica sets at their replica count. */
export class ReplicaSetController {
  private readonly sets: Informer;
  private readonly vmis: Informer;
  private readonly loop: ControllerLoop;
  private readonly recorder: EventRecorder;
  private readonly queue: WorkQueue;
  private readonly burst: number;
  private readonly now: () => number;
  /** Last known controlling replica set of each VMI, to wake it when the VMI is gone. */
  private readonly owners = new Map<string, string>();

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: ReplicaSetControllerOptions = {},
  ) {
    this.burst = Math.max(1, options.burstReplicas ?? 250);
    this.now = options.now ?? Date.now;
    this.recorder = options.recorder ?? new EventRecorder(client, 'virtualmachinereplicaset-controller', logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: options.concurrency ?? 2, baseDelayMs: 100, maxDelayMs: 60_000, objectOf: (key) => this.sets.get(key) });
    this.loop = new ControllerLoop(this.queue, this.recorder);
    this.sets = this.loop.informer(options.replicaSetInformer, () => new Informer(client, resources.virtualMachineInstanceReplicaSets, logger));
    this.vmis = this.loop.informer(options.vmiInformer, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.sets.onChange((key) => { this.queue.add(key); });
    this.vmis.onChange((key) => { this.onVmiChange(key); });
  }

  /** Fills the caches, then reconciles every replica set and every change. */
  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('replica set controller started');
  }

  /** Stops reconciling and waits for running passes. */
  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private onVmiChange(key: string): void {
    const vmi = this.vmis.get(key);
    const known = this.owners.get(key);
    if (vmi === undefined) {
      this.owners.delete(key);
      if (known !== undefined) this.queue.add(known);
      return;
    }
    const ref = controllerRefOf(vmi);
    if (ref?.kind === ownerKind) {
      const owner = `${vmi.metadata.namespace ?? ''}/${ref.name}`;
      this.owners.set(key, owner);
      this.queue.add(owner);
      if (known !== undefined && known !== owner) this.queue.add(known);
      return;
    }
    if (known !== undefined) this.queue.add(known);
    if (ref === undefined) {
      // An orphan: any replica set in its namespace that selects it may adopt it.
      for (const rs of this.sets.list()) {
        if (rs.metadata.namespace === vmi.metadata.namespace && selectorOf(rs)?.matches(vmi.metadata.labels) === true) this.queue.add(keyOf(rs));
      }
    }
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const rs = this.sets.get(key);
    if (rs === undefined) return {};
    const log = this.logger.child(logFieldsOf(rs));
    const selector = selectorOf(rs);
    const templateLabels = stringMapAt(rs, 'spec', 'template', 'metadata', 'labels');
    if (selector === undefined || Object.keys(templateLabels).length === 0 || !selector.matches(templateLabels)) {
      // Admission rejects these; one that slipped through waits for its spec to change.
      log.error('invalid replica set: it needs a template with labels that its selector selects');
      return {};
    }
    const claimed = await this.claim(rs, selector, log);
    const active = claimed.filter((v) => !isFinal(v) && !isMarkedForDeletion(v));
    const finished = claimed.filter((v) => isFinal(v) && !isMarkedForDeletion(v));
    let scaleError: { reason: string; message: string } | undefined;
    if (booleanAt(rs, 'spec', 'paused') !== true && !isMarkedForDeletion(rs)) {
      scaleError = await this.scale(rs, active, log);
      if (scaleError === undefined && finished.length > 0) scaleError = await this.deleteAll(rs, finished.slice(0, this.burst), 'finished', log);
    }
    await this.writeStatus(rs, active, selector, scaleError);
    return scaleError === undefined ? {} : { requeue: true };
  }

  /** The namespace's VMIs this replica set controls, after adopting matching orphans and releasing non-matching own ones. */
  private async claim(rs: KObject, selector: LabelSelector, log: Logger): Promise<KObject[]> {
    const list = await this.client.list(resources.virtualMachineInstances, { namespace: rs.metadata.namespace ?? '' });
    const claimed: KObject[] = [];
    for (const vmi of list.items) {
      const ref = controllerRefOf(vmi);
      const matches = selector.matches(vmi.metadata.labels);
      if (ref?.uid === rs.metadata.uid) {
        if (matches) claimed.push(vmi);
        else if (!isMarkedForDeletion(vmi)) await this.setOwners(vmi, (vmi.metadata.ownerReferences ?? []).filter((r) => r.uid !== rs.metadata.uid), 'released VMI that no longer matches the selector', log);
      } else if (ref === undefined && matches && !isMarkedForDeletion(vmi) && !isMarkedForDeletion(rs)) {
        const adopted = await this.setOwners(vmi, [...(vmi.metadata.ownerReferences ?? []), controllerRefTo(rs)], 'adopted orphaned VMI', log);
        if (adopted !== undefined) claimed.push(adopted);
      }
    }
    return claimed;
  }

  private async setOwners(vmi: KObject, ownerReferences: NonNullable<KObject['metadata']['ownerReferences']>, what: string, log: Logger): Promise<KObject | undefined> {
    try {
      const patched = await this.client.patch(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', 'merge', {
        metadata: { resourceVersion: vmi.metadata.resourceVersion, ownerReferences },
      });
      log.info(what, { vmi: vmi.metadata.name });
      return patched;
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined;
      throw err;
    }
  }

  /** Creates or deletes VMIs toward `spec.replicas`; the first failure, if any. */
  private async scale(rs: KObject, active: KObject[], log: Logger): Promise<{ reason: string; message: string } | undefined> {
    const wanted = numberAt(rs, 'spec', 'replicas') ?? 1;
    const diff = active.length - wanted;
    if (diff > 0) return this.deleteAll(rs, deletionOrder(active).slice(0, Math.min(diff, this.burst)), 'excess', log);
    if (diff === 0) return undefined;
    const results = await Promise.allSettled(Array.from({ length: Math.min(-diff, this.burst) }, () => this.createOne(rs)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed === undefined) return undefined;
    const message = errorMessage(failed.reason);
    log.warn('could not create VMIs', { err: message, failed: results.filter((r) => r.status === 'rejected').length });
    return { reason: 'FailedCreate', message };
  }

  private async createOne(rs: KObject): Promise<void> {
    const template = recordAt(rs, 'spec', 'template') ?? {};
    const meta = recordAt(template, 'metadata') ?? {};
    const base = stringAt(meta, 'generateName') ?? `${rs.metadata.name ?? 'vmi'}-`;
    const vmi: KObject = {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: {
        generateName: base,
        namespace: rs.metadata.namespace ?? 'default',
        labels: stringMapAt(meta, 'labels'),
        annotations: stringMapAt(meta, 'annotations'),
        ownerReferences: [controllerRefTo(rs)],
      },
      spec: structuredClone(recordAt(template, 'spec') ?? {}),
    };
    try {
      const created = await this.client.create(resources.virtualMachineInstances, vmi);
      this.recorder.record(rs, 'Normal', 'SuccessfulCreate', `Started the virtual machine by creating the new virtual machine instance ${created.metadata.name ?? ''}`);
    } catch (err) {
      this.recorder.record(rs, 'Warning', 'FailedCreate', `Error creating virtual machine instance: ${errorMessage(err)}`);
      throw err;
    }
  }

  private async deleteAll(rs: KObject, victims: KObject[], why: 'excess' | 'finished', log: Logger): Promise<{ reason: string; message: string } | undefined> {
    const results = await Promise.allSettled(victims.map(async (vmi) => {
      try {
        await this.client.delete(resources.virtualMachineInstances, vmi.metadata.namespace, vmi.metadata.name ?? '', { preconditions: { uid: vmi.metadata.uid ?? '' } });
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'NotFound') return;
        this.recorder.record(rs, 'Warning', 'FailedDelete', `Error deleting virtual machine instance ${vmi.metadata.name ?? ''}: ${errorMessage(err)}`);
        throw err;
      }
      const message = why === 'excess' ? `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata.uid ?? ''}` : `Deleted finished virtual machine: ${vmi.metadata.uid ?? ''}`;
      this.recorder.record(rs, 'Normal', 'SuccessfulDelete', message);
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed === undefined) return undefined;
    log.warn('could not delete VMIs', { err: errorMessage(failed.reason), why });
    return { reason: 'FailedDelete', message: errorMessage(failed.reason) };
  }

  private async writeStatus(rs: KObject, active: KObject[], selector: LabelSelector, scaleError: { reason: string; message: string } | undefined): Promise<void> {
    const next = replicaSetStatus(rs, active, selector, scaleError, this.now());
    if (!statusDiffers(rs, next.status)) return;
    await this.client.update(resources.virtualMachineInstanceReplicaSets, { ...rs, status: next.status }, 'status');
    if (next.pausedChanged) {
      const paused = booleanAt(rs, 'spec', 'paused') === true;
      this.recorder.record(rs, 'Normal', paused ? 'SuccessfulPaused' : 'SuccessfulResumed', paused ? 'Paused' : 'Resumed');
    }
  }
}

/** The compiled `spec.selector`, or undefined when it is absent or invalid. */
function selectorOf(rs: KObject): LabelSelector | undefined {
  const selector = recordAt(rs, 'spec', 'selector');
  if (selector === undefined) return undefined;
  try {
    return labelSelectorFromObject(selector);
  } catch {
    return undefined;
  }
}
