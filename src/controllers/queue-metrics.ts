/**
 * The controllers' metrics, with the names operators know: client-go's
 * workqueue families (`workqueue_depth`, `workqueue_adds_total`,
 * `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
 * `workqueue_retries_total`, label `name` = the queue's name) and
 * controller-runtime's reconcile families
 * (`controller_runtime_reconcile_total{controller,result}`,
 * `controller_runtime_reconcile_errors_total{controller}`,
 * `controller_runtime_reconcile_time_seconds{controller}`).
 *
 * A queue finds its metrics through {@link queueMetricsScope}: whoever makes
 * a controller (the server's singletons) runs the making inside the scope
 * with the controller's name, and every `WorkQueue` made there reports
 * under that name (or the `name` it was given). So no controller is
 * plumbed for it, several servers in one process keep separate registries,
 * and a queue made outside any scope (the node agent's) reports nothing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** How one reconcile ended, in controller-runtime's `result` label. */
export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after';

/** What a queue tells its metrics. */
export interface QueueObserver {
  /** A key went into the queue (not one already queued or delayed). */
  added(): void;
  /** A key left the queue for a worker after waiting `waitedSeconds`. */
  started(waitedSeconds: number): void;
  /** A worker finished a key after `workSeconds`. */
  finished(workSeconds: number, outcome: ReconcileOutcome): void;
  /** A key was put back with backoff. */
  retried(): void;
  /** Keys still queued were dropped (the queue stopped). */
  dropped(count: number): void;
}

/** client-go's buckets for the workqueue durations: 10 ns to 10 s, by tens. */
const workqueueBuckets = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10];
/** controller-runtime's buckets for the reconcile time. */
const reconcileBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60];

/** The controllers' families in one registry. */
export class WorkQueueMetrics {
  private readonly depth: Gauge<'name'>;
  private readonly adds: Counter<'name'>;
  private readonly queueDuration: Histogram<'name'>;
  private readonly workDuration: Histogram<'name'>;
  private readonly retries: Counter<'name'>;
  private readonly reconciles: Counter<'controller' | 'result'>;
  private readonly errors: Counter<'controller'>;
  private readonly reconcileTime: Histogram<'controller'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.depth = new Gauge({ name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames: ['name'], registers });
    this.adds = new Counter({ name: 'workqueue_adds_total', help: 'Total number of adds handled by workqueue', labelNames: ['name'], registers });
    this.queueDuration = new Histogram({ name: 'workqueue_queue_duration_seconds', help: 'How long in seconds an item stays in workqueue before being requested.', labelNames: ['name'], buckets: workqueueBuckets, registers });
    this.workDuration = new Histogram({ name: 'workqueue_work_duration_seconds', help: 'How long in seconds processing an item from workqueue takes.', labelNames: ['name'], buckets: workqueueBuckets, registers });
    this.retries = new Counter({ name: 'workqueue_retries_total', help: 'Total number of retries handled by workqueue', labelNames: ['name'], registers });
    this.reconciles = new Counter({ name: 'controller_runtime_reconcile_total', help: 'Total number of reconciliations per controller', labelNames: ['controller', 'result'], registers });
    this.errors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Total number of reconciliation errors per controller', labelNames: ['controller'], registers });
    this.reconcileTime = new Histogram({ name: 'controller_runtime_reconcile_time_seconds', help: 'Length of time per reconciliation per controller', labelNames: ['controller'], buckets: reconcileBuckets, registers });
  }

  /** The observer of the queue `name`. */
  observer(name: string): QueueObserver {
    const labels = { name };
    const controller = { controller: name };
    // The families appear as soon as the queue exists, as client-go's do.
    this.depth.inc(labels, 0);
    this.adds.inc(labels, 0);
    this.retries.inc(labels, 0);
    return {
      added: () => { this.adds.inc(labels); this.depth.inc(labels); },
      started: (waitedSeconds) => { this.depth.dec(labels); this.queueDuration.observe(labels, waitedSeconds); },
      finished: (workSeconds, outcome) => {
        this.workDuration.observe(labels, workSeconds);
        this.reconcileTime.observe(controller, workSeconds);
        this.reconciles.inc({ ...controller, result: outcome });
        if (outcome === 'error') this.errors.inc(controller);
      },
      retried: () => { this.retries.inc(labels); },
      dropped: (count) => { if (count > 0) this.depth.dec(labels, count); },
    };
  }
}

/** The metrics and queue name of the controller being made or started. */
export interface QueueMetricsContext {
  metrics: WorkQueueMetrics;
  name: string;
}

export const queueMetricsScope = new AsyncLocalStorage<QueueMetricsContext>();

/** The observer for a queue made now: its own name, or the scope's; none outside a scope. */
export function currentQueueObserver(name?: string): QueueObserver | undefined {
  const context = queueMetricsScope.getStore();
  return context?.metrics.observer(name === undefined ? context.name : `${context.name}-${name}`);
}
