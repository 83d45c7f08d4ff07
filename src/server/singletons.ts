/**
 * The cluster's singletons: loops of which exactly one copy may run in a
 * cluster (controllers, the scheduler, node IPAM, the garbage collector,
 * the store compactor). With several `vireo server`s on one etcd they run on
 * the leader only (`leader-election.ts`); each start makes them anew from
 * their factories, since a stopped informer cannot be started again.
 * Adding one is one line: `singletons.add('name', () => new Loop(...))`.
 * With `metrics`, each loop is made and started inside the queue metrics'
 * scope under its name, so its work queues report as `workqueue_*{name}`.
 */
import type { Logger } from '../log/logger.js';
import { queueMetricsScope } from '../controllers/queue-metrics.js';
import type { WorkQueueMetrics } from '../controllers/queue-metrics.js';

/** What a singleton loop offers: controllers, the scheduler, cleaners. */
export interface SingletonLoop {
  start(): Promise<void> | void;
  stop(): Promise<void>;
}

export class Singletons {
  private readonly factories: { name: string; make: () => SingletonLoop }[] = [];
  private running: { name: string; loop: SingletonLoop }[] = [];

  constructor(private readonly logger: Logger, private readonly metrics?: WorkQueueMetrics) {}

  /** Registers a loop; it is made and started with the others on `start`. */
  add(name: string, make: () => SingletonLoop): void {
    this.factories.push({ name, make });
  }

  /** The names of the loops, in registration order. */
  get names(): string[] {
    return this.factories.map((f) => f.name);
  }

  /** Makes and starts every loop; if one fails, those started are stopped and the error is thrown. */
  async start(): Promise<void> {
    if (this.running.length > 0) return;
    const made = this.factories.map(({ name, make }) => ({ name, loop: this.inScope(name, make) }));
    const outcomes = await Promise.allSettled(made.map(async ({ name, loop }) => { await this.inScope(name, () => loop.start()); }));
    this.running = made.filter((_, i) => outcomes[i]?.status === 'fulfilled');
    const failed = outcomes.findIndex((o) => o.status === 'rejected');
    if (failed >= 0) {
      await this.stop();
      const outcome = outcomes[failed];
      const reason: unknown = outcome?.status === 'rejected' ? outcome.reason : undefined;
      throw new Error(`the ${made[failed]?.name ?? 'unknown'} loop did not start: ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
    }
  }

  private inScope<T>(name: string, run: () => T): T {
    return this.metrics === undefined ? run() : queueMetricsScope.run({ metrics: this.metrics, name }, run);
  }

  /** Stops every running loop, the last started first; a loop that fails to stop is logged, the others still stop. */
  async stop(): Promise<void> {
    const running = this.running.reverse();
    this.running = [];
    for (const { name, loop } of running) {
      try {
        await loop.stop();
      } catch (err) {
        this.logger.error('a singleton loop failed to stop', { loop: name, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
}
