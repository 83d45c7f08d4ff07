/**
 * The node side of CDI uploads (CDI's upload server pod, without a pod):
 * every PVC bound on this node that asks for an upload
 * (`cdi.kubevirt.io/storage.upload.target`) is marked ready to receive
 * (`storage.pod.phase` Running, `storage.pod.ready` "true"), which is what
 * the DataVolume controller turns into `UploadReady` and what virtctl and
 * the upload proxy wait for. An upload's bytes then come through
 * {@link UploadReceiver.upload} as a stream and go through the importer
 * (format detection, gz/xz, `qemu-img` checks and convert, atomic
 * replace), with progress on the PVC, ending in Succeeded (ready no more)
 * or Failed. An interrupted upload changes nothing on the volume and leaves
 * the PVC ready for the next one; so does a failed one, as CDI's restarted
 * upload server would.
 */
import type { Readable } from 'node:stream';
import { ApiError } from '../../api/errors.js';
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { WorkQueue } from '../../controllers/queue.js';
import type { ReconcileResult } from '../../controllers/queue.js';
import { cdiAnnotations, importPhases } from './annotations.js';
import { ImportError } from './errors.js';
import { importImage } from './importer.js';
import { ProgressWriter } from './progress-writer.js';
import type { ResolveTarget } from './runner.js';

/** How an upload is answered: once processed (`sync`, CDI's `/upload`) or once received (`async`, `/upload-async`). */
export interface UploadOptions {
  async: boolean;
  /** The announced length (`Content-Length`); fewer bytes is an interrupted upload. */
  bytes?: number;
}

/** What an accepted upload did. */
export interface UploadResult {
  /** Bytes received. */
  bytes: number;
  /** True when the answer came before the image was processed (async). */
  processing: boolean;
}

/** Options of the receiver; all but the first three are optional. */
export interface UploadReceiverOptions {
  client: Client;
  logger: Logger;
  /** Where a PVC bound here lives (the agent's `importTarget`); undefined when not on this node. */
  resolveTarget: ResolveTarget;
  /** Shared PVC cache; the receiver starts it if needed, stops only its own. */
  pvcInformer?: Informer;
  /** Least time between two progress writes on a PVC. Default 1000 ms. */
  progressIntervalMs?: number;
  now?: () => number;
}

/** The `storage.pod.*` annotations of each state an upload target goes through. */
export const uploadStates = {
  ready: { [cdiAnnotations.podPhase]: importPhases.running, [cdiAnnotations.podReady]: 'true', [cdiAnnotations.runningCondition]: 'true', [cdiAnnotations.runningReason]: 'Pod is running', [cdiAnnotations.runningMessage]: '' },
  receiving: { [cdiAnnotations.podPhase]: importPhases.running, [cdiAnnotations.podReady]: 'true', [cdiAnnotations.runningCondition]: 'true', [cdiAnnotations.runningReason]: 'Pod is running', [cdiAnnotations.runningMessage]: 'Upload in progress', [cdiAnnotations.progress]: '0.00' },
  succeeded: { [cdiAnnotations.podPhase]: importPhases.succeeded, [cdiAnnotations.podReady]: 'false', [cdiAnnotations.runningCondition]: 'false', [cdiAnnotations.runningReason]: 'Completed', [cdiAnnotations.runningMessage]: 'Upload Complete', [cdiAnnotations.progress]: '100.0' },
} as const;

/** Receives the uploads into the PVCs bound on this node. */
export class UploadReceiver {
  private readonly pvcs: Informer;
  private readonly ownInformer: boolean;
  private readonly queue: WorkQueue;
  /** Uploads in flight, by `namespace/name`. */
  private readonly busy = new Map<string, { abort: AbortController; done: Promise<unknown> }>();
  private readonly stopping = new AbortController();

  constructor(private readonly options: UploadReceiverOptions) {
    this.ownInformer = options.pvcInformer === undefined;
    this.pvcs = options.pvcInformer ?? new Informer(options.client, resources.persistentVolumeClaims, options.logger);
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger: options.logger, concurrency: 2, baseDelayMs: 500, maxDelayMs: 30_000, objectOf: (key) => this.pvcs.get(key) });
    this.pvcs.onChange((key) => { this.queue.add(key); });
  }

  async start(): Promise<void> {
    await this.pvcs.start();
    this.queue.start();
    this.options.logger.info('upload receiver started');
  }

  /** Stops the loop and cuts the uploads in flight (their PVCs stay ready for a new upload). */
  async stop(): Promise<void> {
    this.stopping.abort(new Error('the node agent is stopping'));
    await this.queue.stop();
    for (const run of this.busy.values()) run.abort.abort(new Error('the node agent is stopping'));
    await Promise.all([...this.busy.values()].map((r) => r.done.catch(() => undefined)));
    if (this.ownInformer) await this.pvcs.stop();
  }

  /**
   * Receives an image for PVC `namespace/name` from `body`. Rejects with
   * an ApiError: 404 for an unknown PVC, 400 for one that is no upload
   * target or for a bad image, 409 for one that finished uploading or is
   * receiving another upload, 503 for one not bound on this node yet.
   */
  async upload(namespace: string, name: string, body: Readable, options: UploadOptions): Promise<UploadResult> {
    if (this.stopping.signal.aborted) throw new ApiError('ServiceUnavailable', 'the node agent is stopping: upload again in a moment');
    const key = `${namespace}/${name}`;
    const pvc = await this.options.client.tryGet(resources.persistentVolumeClaims, namespace, name);
    if (pvc === undefined) throw new ApiError('NotFound', `rejecting Upload Request for PVC ${name} that doesn't exist in namespace ${namespace}`);
    const annotations = pvc.metadata.annotations ?? {};
    if (annotations[cdiAnnotations.uploadTarget] === undefined) {
      throw new ApiError('BadRequest', `PVC ${key} is not an upload target (no ${cdiAnnotations.uploadTarget} annotation): upload into a DataVolume with spec.source.upload, or a PVC made by vireo image-upload pvc`);
    }
    if (annotations[cdiAnnotations.podPhase] === importPhases.succeeded) throw new ApiError('Conflict', `rejecting Upload Request for PVC ${name} that already finished uploading`);
    const target = await this.options.resolveTarget(pvc);
    if (target === undefined) throw new ApiError('ServiceUnavailable', `PVC ${key} is not bound to a volume on this node yet: wait until its DataVolume is UploadReady, then upload again`);
    if (this.busy.has(key)) throw new ApiError('Conflict', `PVC ${key} is receiving another upload: wait for it to end, or stop it, then upload again`);

    const abort = new AbortController();
    const log = this.options.logger.child({ namespace, name, uid: pvc.metadata.uid, kind: 'PersistentVolumeClaim' });
    const annotate = (values: Record<string, string>): Promise<void> => this.annotate(pvc, values);
    const writer = new ProgressWriter(annotate, this.options.progressIntervalMs ?? 1000, this.options.now ?? Date.now);
    let received: () => void = () => undefined;
    const arrived = new Promise<void>((resolve) => { received = resolve; });
    let bytes = 0;
    const run = async (): Promise<UploadResult> => {
      await annotate(uploadStates.receiving);
      log.info('upload started', { target: target.path, format: target.format, bytes: options.bytes });
      try {
        await importImage({ kind: 'stream', body, ...(options.bytes === undefined ? {} : { bytes: options.bytes }), onReceived: received }, target, {
          signal: abort.signal,
          onProgress: (p) => {
            if (p.stage === 'download') bytes = p.bytesDone;
            writer.report(p.percent);
          },
        });
      } catch (err) {
        await writer.flush().catch(() => undefined);
        throw await this.failed(pvc, err, log);
      }
      await writer.flush();
      await annotate(uploadStates.succeeded);
      log.info('upload succeeded', { bytes });
      return { bytes, processing: false };
    };
    const done = run().finally(() => { this.busy.delete(key); });
    this.busy.set(key, { abort, done });
    if (!options.async) return done;
    // Async: answer once every byte is on disk; the outcome of the processing is reported on the PVC.
    done.catch(() => undefined);
    await Promise.race([arrived, done]);
    return { bytes, processing: true };
  }

  /** Reports a failed upload on the PVC and returns the error to answer with. */
  private async failed(pvc: KObject, err: unknown, log: Logger): Promise<ApiError> {
    const message = err instanceof Error ? err.message : String(err);
    const interrupted = err instanceof ImportError && err.failure === 'Interrupted';
    const stopped = this.stopping.signal.aborted;
    // Both leave the PVC ready for a new upload; only a processing failure fails the DataVolume (until the next upload).
    const phase = interrupted || stopped ? importPhases.running : importPhases.failed;
    if (phase === importPhases.failed) log.warn('upload failed', { err: message });
    else log.info('upload interrupted', { err: message });
    try {
      await this.annotate(pvc, {
        [cdiAnnotations.podPhase]: phase,
        [cdiAnnotations.podReady]: 'true',
        [cdiAnnotations.runningCondition]: 'false',
        [cdiAnnotations.runningReason]: 'Error',
        [cdiAnnotations.runningMessage]: message,
      });
    } catch (writeErr) {
      log.warn('could not report the upload failure on the PVC', { err: writeErr instanceof Error ? writeErr.message : String(writeErr) });
    }
    if (stopped) return new ApiError('ServiceUnavailable', `the node agent stopped during the upload: ${message}`, { cause: err });
    const clients: readonly string[] = ['BadImage', 'TooLarge', 'Unsupported', 'Interrupted'];
    if (err instanceof ImportError && clients.includes(err.failure)) return new ApiError('BadRequest', `Saving stream failed: ${message}`, { cause: err });
    return new ApiError('InternalError', `Saving stream failed: ${message}`, { cause: err });
  }

  /** Marks an upload target bound here ready to receive. */
  private async reconcile(key: string): Promise<ReconcileResult> {
    const pvc = this.pvcs.get(key);
    if (pvc === undefined || !awaitsUpload(pvc) || this.busy.has(key)) return {};
    const annotations = pvc.metadata.annotations ?? {};
    if (annotations[cdiAnnotations.podReady] === 'true') return {};
    if ((await this.options.resolveTarget(pvc)) === undefined) return {};
    await this.annotate(pvc, uploadStates.ready);
    this.options.logger.info('ready for an upload', { namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid: pvc.metadata.uid, kind: 'PersistentVolumeClaim' });
    return {};
  }

  private async annotate(pvc: KObject, annotations: Record<string, string>): Promise<void> {
    await this.options.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', {
      metadata: { uid: pvc.metadata.uid, annotations },
    });
  }
}

/** True when `pvc` is a bound upload target whose upload has not succeeded. */
export function awaitsUpload(pvc: KObject): boolean {
  if (pvc.metadata.deletionTimestamp !== undefined) return false;
  if (stringAt(pvc, 'status', 'phase') !== 'Bound') return false;
  const annotations = pvc.metadata.annotations ?? {};
  return annotations[cdiAnnotations.uploadTarget] !== undefined && annotations[cdiAnnotations.podPhase] !== importPhases.succeeded;
}
