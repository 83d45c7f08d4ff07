/**
 * The endpoints controller: Kubernetes' Endpoints and EndpointSlice
 * controllers in one, over VMIs instead of pods. For every Service with a
 * selector it keeps `v1 Endpoints` (named as the Service) and its
 * `discovery.k8s.io/v1` EndpointSlices (owned by the Service, labelled
 * `kubernetes.io/service-name` and managed-by) equal to `desiredEndpoints`,
 * as VMIs come, go, change addresses or readiness. A Service that loses its
 * selector loses the managed slices; its Endpoints become the user's. A
 * deleted Service's Endpoints go with it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import { stringAt } from '../../api/kinds/read.js';
import { serviceSelector } from '../../api/kinds/service.js';
import type { Client, ResourceRef } from '../../client/index.js';
import { Informer, resources, splitKey } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { WorkQueue } from '../queue.js';
import type { ReconcileResult } from '../queue.js';
import { ControllerLoop } from '../loop.js';
import { EventRecorder } from '../events/index.js';
import { desiredEndpoints, managedByLabel, managedByValue, serviceNameLabel } from './desired.js';

export interface EndpointsControllerOptions {
  serviceInformer?: Informer;
  vmiInformer?: Informer;
}

export class EndpointsController {
  private readonly services: Informer;
  private readonly vmis: Informer;
  private readonly endpoints: Informer;
  private readonly slices: Informer;
  private readonly queue: WorkQueue;
  private readonly loop: ControllerLoop;

  constructor(
    private readonly client: Client,
    private readonly logger: Logger,
    options: EndpointsControllerOptions = {},
  ) {
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger, concurrency: 2, baseDelayMs: 100, maxDelayMs: 30_000, objectOf: (key) => this.services.get(key) });
    this.loop = new ControllerLoop(this.queue, new EventRecorder(client, 'endpoint-controller', logger));
    this.services = this.loop.informer(options.serviceInformer, () => new Informer(client, resources.services, logger));
    this.vmis = this.loop.informer(options.vmiInformer, () => new Informer(client, resources.virtualMachineInstances, logger));
    this.endpoints = this.loop.informer(undefined, () => new Informer(client, resources.endpoints, logger));
    this.slices = this.loop.informer(undefined, () => new Informer(client, resources.endpointSlices, logger, { labelSelector: `${managedByLabel}=${managedByValue}` }));
    this.services.onChange((key) => { this.queue.add(key); });
    this.endpoints.onChange((key) => { this.queue.add(key); });
    this.slices.onChange((key) => {
      const slice = this.slices.get(key);
      const service = slice === undefined ? undefined : slice.metadata.labels?.[serviceNameLabel];
      if (slice !== undefined && service !== undefined) this.queue.add(`${slice.metadata.namespace ?? ''}/${service}`);
    });
    // A VMI may enter or leave any Service of its namespace: each of them is looked at again.
    this.vmis.onChange((key) => {
      const { namespace } = splitKey(key);
      for (const svc of this.services.list()) if (svc.metadata.namespace === namespace) this.queue.add(`${namespace}/${svc.metadata.name ?? ''}`);
    });
  }

  async start(): Promise<void> {
    await this.loop.start();
    this.logger.info('endpoints controller started');
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace = '', name } = splitKey(key);
    const svc = this.services.get(key);
    const managed = this.slices.list().filter((s) => s.metadata.namespace === namespace && s.metadata.labels?.[serviceNameLabel] === name);
    if (svc === undefined || Object.keys(serviceSelector(svc)).length === 0) {
      for (const slice of managed) await this.remove(resources.endpointSlices, slice);
      const endpoints = this.endpoints.get(key);
      if (svc === undefined && endpoints !== undefined) await this.remove(resources.endpoints, endpoints);
      return {};
    }
    const vmis = this.vmis.list().filter((v) => v.metadata.namespace === namespace);
    const desired = desiredEndpoints(svc, vmis);
    await this.write(resources.endpoints, this.endpoints.get(key), desired.endpoints);
    for (const slice of desired.slices) await this.write(resources.endpointSlices, this.slices.get(`${namespace}/${slice.metadata.name ?? ''}`), slice);
    const keep = new Set(desired.slices.map((s) => s.metadata.name));
    for (const slice of managed) if (!keep.has(slice.metadata.name)) await this.remove(resources.endpointSlices, slice);
    return {};
  }

  /** Creates `desired`, or updates `current` when what the controller owns differs. */
  private async write(ref: ResourceRef, current: KObject | undefined, desired: KObject): Promise<void> {
    if (current === undefined) {
      try {
        await this.client.create(ref, desired);
      } catch (err) {
        // The cache lags behind a create of ours: the next pass sees it and compares.
        if (!(err instanceof ApiError && err.reason === 'AlreadyExists')) throw err;
        this.queue.addAfter(`${desired.metadata.namespace ?? ''}/${stringAt(desired, 'metadata', 'labels', serviceNameLabel) ?? desired.metadata.name ?? ''}`, 200);
      }
      return;
    }
    const next: KObject = { ...structuredClone(desired), metadata: { ...current.metadata, labels: desired.metadata.labels ?? {}, ...(desired.metadata.ownerReferences === undefined ? {} : { ownerReferences: desired.metadata.ownerReferences }) } };
    if (isDeepStrictEqual(ownedPart(next), ownedPart(current))) return;
    await this.client.update(ref, next);
  }

  private async remove(ref: ResourceRef, obj: KObject): Promise<void> {
    try {
      await this.client.delete(ref, obj.metadata.namespace, obj.metadata.name ?? '');
    } catch (err) {
      if (!(err instanceof ApiError && err.reason === 'NotFound')) throw err;
    }
  }
}

/** The fields the controller writes: all but server-owned metadata. */
function ownedPart(obj: KObject): unknown {
  const { metadata, ...rest } = obj;
  return { labels: metadata.labels ?? {}, ownerReferences: metadata.ownerReferences ?? [], ...rest, subsets: obj.subsets ?? [], ports: obj.ports ?? [] };
}
