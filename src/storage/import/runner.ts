/**
 * The node side of DataVolume imports (CDI's importer pod, without a pod):
 * for every PVC bound on this node whose `storage.import.source` asks for
 * an import that has not ended, it runs {@link importImage} into the
 * volume's file and reports on the PVC, in CDI's annotations:
 * `storage.pod.phase` Running → Succeeded or Failed, the `Running`
 * condition's reason and message, restarts, and the progress (throttled).
 *
 * A failure a retry can help (network, 5xx, a download cut short) counts a
 * restart, shows `Error` with the cause, and runs again after a backoff,
 * resuming the download; one it cannot (404, checksum, a damaged image)
 * ends in Failed. A claim copied from a claim on another node
 * (`clone-source.ts`) runs the same way, over HTTPS from that node's agent.
 * An agent restart finds the PVC still Running and starts
 * it again, resuming from the scratch directory.
 */
import type { KObject } from '../../api/object.js';
import { stringAt } from '../../api/kinds/read.js';
import type { ImagePuller } from '../../agent/images/index.js';
import type { Client } from '../../client/index.js';
import { Informer, resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import type { EventRecorder } from '../../controllers/events/index.js';
import { WorkQueue } from '../../controllers/queue.js';
import type { ReconcileResult } from '../../controllers/queue.js';
import { cdiAnnotations, importPhases, importSources } from './annotations.js';
import { ImportError, isAbort } from './errors.js';
import { importImage } from './importer.js';
import { ProgressWriter } from './progress-writer.js';
import { sourceOfPvc } from './pvc-source.js';
import { copySource, copySourceOf, releaseCopy } from './clone-source.js';
import type { CopyAccess } from './clone-source.js';
import type { ImportSource, ImportTarget } from './types.js';

/** The local file of a PVC bound on this node, or undefined when it is not (yet) here. */
export type ResolveTarget = (pvc: KObject) => ImportTarget | undefined | Promise<ImportTarget | undefined>;

/** Options of the runner; all but the first four are optional. */
export interface ImportRunnerOptions {
  client: Client;
  logger: Logger;
  /** The volume engineer's `localVolumeOf(pvc)`: where a PVC bound here lives. */
  resolveTarget: ResolveTarget;
  /** The node's puller, for registry sources. */
  puller: ImagePuller | undefined;
  /** Shared PVC cache; the runner starts it if needed, stops only its own. */
  pvcInformer?: Informer;
  /** Least time between two progress writes on a PVC. Default 1000 ms. */
  progressIntervalMs?: number;
  /** Retry backoff: first delay (default 2 s), doubling up to `retryMaxMs` (default 5 min). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Imports at once. Default 2. */
  concurrency?: number;
  /** Where a failed attempt is told on its PVC (CDI's `ErrImportFailed`); none without it. */
  events?: EventRecorder;
  /** How this agent reaches another node's agent to copy a volume from it (clones across nodes). */
  copyAccess?: CopyAccess;
  now?: () => number;
}

interface Running {
  uid: string;
  abort: AbortController;
  done: Promise<void>;
}

/** Runs the imports of the PVCs bound on this node. */
export class ImportRunner {
  private readonly pvcs: Informer;
  private readonly ownInformer: boolean;
  private readonly queue: WorkQueue;
  private readonly running = new Map<string, Running>();
  /** Per key: consecutive retryable failures and when the next attempt may start. */
  private readonly backoff = new Map<string, { failures: number; notBefore: number }>();
  private readonly progressMs: number;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly concurrency: number;
  private readonly now: () => number;

  constructor(private readonly options: ImportRunnerOptions) {
    this.ownInformer = options.pvcInformer === undefined;
    this.pvcs = options.pvcInformer ?? new Informer(options.client, resources.persistentVolumeClaims, options.logger);
    this.progressMs = options.progressIntervalMs ?? 1000;
    this.baseMs = options.retryBaseMs ?? 2000;
    this.maxMs = options.retryMaxMs ?? 300_000;
    this.concurrency = options.concurrency ?? 2;
    this.now = options.now ?? Date.now;
    this.queue = new WorkQueue((key) => this.reconcile(key), { logger: options.logger, concurrency: 4, baseDelayMs: 500, maxDelayMs: 30_000, objectOf: (key) => this.pvcs.get(key) });
    this.pvcs.onChange((key) => { this.queue.add(key); });
  }

  async start(): Promise<void> {
    await this.pvcs.start();
    this.queue.start();
    this.options.logger.info('import runner started');
  }

  /** Stops every import (their partial downloads stay for the next start) and the loop. */
  async stop(): Promise<void> {
    await this.queue.stop();
    for (const run of this.running.values()) run.abort.abort(new Error('the import runner is stopping'));
    await Promise.all([...this.running.values()].map((r) => r.done));
    if (this.ownInformer) await this.pvcs.stop();
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const pvc = this.pvcs.get(key);
    const run = this.running.get(key);
    if (pvc === undefined || !wantsImport(pvc)) {
      run?.abort.abort(new Error('the PVC no longer asks for an import'));
      if (pvc === undefined) this.backoff.delete(key);
      return {};
    }
    if (run !== undefined) {
      if (run.uid === pvc.metadata.uid) return {};
      run.abort.abort(new Error('the PVC was replaced'));
      await run.done;
    }
    const wait = (this.backoff.get(key)?.notBefore ?? 0) - this.now();
    if (wait > 0) return { requeueAfter: wait };
    if (this.running.size >= this.concurrency) return { requeueAfter: 1000 };
    const target = await this.options.resolveTarget(pvc);
    if (target === undefined) return {};
    const abort = new AbortController();
    const entry: Running = { uid: pvc.metadata.uid ?? '', abort, done: Promise.resolve() };
    entry.done = this.runImport(key, pvc, target, abort.signal).finally(() => {
      if (this.running.get(key) === entry) this.running.delete(key);
      this.queue.add(key);
    });
    this.running.set(key, entry);
    return {};
  }

  private async runImport(key: string, pvc: KObject, target: ImportTarget, signal: AbortSignal): Promise<void> {
    const log = this.options.logger.child({ namespace: pvc.metadata.namespace, name: pvc.metadata.name, uid: pvc.metadata.uid, kind: 'PersistentVolumeClaim' });
    const writer = new ProgressWriter((annotations) => this.annotate(pvc, annotations), this.progressMs, this.now);
    let copying: ImportSource | undefined;
    try {
      await this.annotate(pvc, {
        [cdiAnnotations.podPhase]: importPhases.running,
        [cdiAnnotations.runningCondition]: 'true',
        [cdiAnnotations.runningReason]: 'Pod is running',
        [cdiAnnotations.runningMessage]: '',
      });
      const copyFrom = copySourceOf(pvc);
      const source = copyFrom === undefined ? await sourceOfPvc(this.options.client, pvc, this.options.puller) : await copySource(this.options.client, pvc, copyFrom, this.options.copyAccess ?? { token: undefined });
      if (source === undefined) return;
      if (copyFrom !== undefined) copying = source;
      log.info('import started', { source: source.kind, target: target.path, format: target.format });
      const started = this.now();
      await importImage(source, target, { signal, onProgress: (p) => { writer.report(p.percent); } });
      await writer.flush();
      await this.annotate(pvc, {
        [cdiAnnotations.podPhase]: importPhases.succeeded,
        [cdiAnnotations.runningCondition]: 'false',
        [cdiAnnotations.runningReason]: 'Completed',
        [cdiAnnotations.runningMessage]: 'Import Complete',
        [cdiAnnotations.progress]: '100.0',
      });
      this.backoff.delete(key);
      log.info('import succeeded', { ms: this.now() - started });
      await this.releaseCopy(copying, log);
    } catch (err) {
      await writer.flush().catch(() => undefined);
      if (signal.aborted || isAbort(err)) {
        log.info('import stopped; it resumes on the next start', { why: signal.reason instanceof Error ? signal.reason.message : undefined });
        return;
      }
      await this.fail(key, pvc, err, log);
      // A copy that cannot succeed on a retry does not need the source's export any more.
      if (err instanceof ImportError && !err.retryable) await this.releaseCopy(copying, log);
    }
  }

  /** Lets the source node drop the export a copy read from. */
  private async releaseCopy(source: ImportSource | undefined, log: Logger): Promise<void> {
    if (source?.kind !== 'http') return;
    const kept = await releaseCopy(source);
    if (kept !== undefined) log.warn('the source node keeps its export of the copied volume', { err: kept.message });
  }

  private async fail(key: string, pvc: KObject, err: unknown, log: Logger): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    const retryable = !(err instanceof ImportError) || err.retryable;
    const restarts = Number(pvc.metadata.annotations?.[cdiAnnotations.podRestarts] ?? '0');
    const annotations: Record<string, string> = {
      [cdiAnnotations.runningCondition]: 'false',
      [cdiAnnotations.runningReason]: 'Error',
      [cdiAnnotations.runningMessage]: message,
    };
    if (retryable) {
      const failures = (this.backoff.get(key)?.failures ?? 0) + 1;
      const delay = Math.min(this.maxMs, this.baseMs * 2 ** (failures - 1));
      this.backoff.set(key, { failures, notBefore: this.now() + delay });
      annotations[cdiAnnotations.podPhase] = importPhases.pending;
      annotations[cdiAnnotations.podRestarts] = String((Number.isInteger(restarts) ? restarts : 0) + 1);
      log.warn('import failed; retrying', { err: message, retryInMs: delay, failures });
    } else {
      annotations[cdiAnnotations.podPhase] = importPhases.failed;
      log.warn('import failed', { err: message, failure: err instanceof ImportError ? err.failure : 'Internal' });
    }
    // Every failed attempt, as CDI's import controller tells each importer pod that ended in error: the same cause again counts up.
    this.options.events?.record(pvc, 'Warning', 'ErrImportFailed', message);
    try {
      await this.annotate(pvc, annotations);
    } catch (writeErr) {
      log.warn('could not report the import failure on the PVC', { err: writeErr instanceof Error ? writeErr.message : String(writeErr) });
    }
  }

  private async annotate(pvc: KObject, annotations: Record<string, string>): Promise<void> {
    await this.options.client.patch(resources.persistentVolumeClaims, pvc.metadata.namespace, pvc.metadata.name ?? '', 'merge', {
      metadata: { uid: pvc.metadata.uid, annotations },
    });
  }
}

/** True when `pvc` asks for an import this runner does and that has not ended. */
export function wantsImport(pvc: KObject): boolean {
  if (pvc.metadata.deletionTimestamp !== undefined) return false;
  if (stringAt(pvc, 'status', 'phase') !== 'Bound') return false;
  const annotations = pvc.metadata.annotations ?? {};
  const source = annotations[cdiAnnotations.source];
  if (copySourceOf(pvc) !== undefined) return annotations[cdiAnnotations.podPhase] !== importPhases.succeeded && annotations[cdiAnnotations.podPhase] !== importPhases.failed;
  if (source !== importSources.http && source !== importSources.registry && source !== importSources.none) return false;
  const phase = annotations[cdiAnnotations.podPhase];
  return phase !== importPhases.succeeded && phase !== importPhases.failed;
}
