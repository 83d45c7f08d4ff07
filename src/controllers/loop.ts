/**
 * What an informer-driven controller (the VM and replica set controllers,
 * the scheduler) is made of besides its reconcile: the informers it reads
 * (its own, or shared ones their owner runs), a work queue and an event
 * recorder. Started with the caches filled before the first pass; stopped
 * with running passes awaited, its own informers closed and events flushed.
 */
import type { Informer } from '../client/index.js';
import type { EventRecorder } from './events/index.js';
import type { WorkQueue } from './queue.js';

export class ControllerLoop {
  private readonly read: Informer[] = [];
  private readonly owned: Informer[] = [];

  constructor(
    readonly queue: WorkQueue,
    readonly recorder: EventRecorder,
  ) {}

  /** `shared` when the caller passes one (its owner stops it), else `make()`, owned and stopped here. */
  informer(shared: Informer | undefined, make: () => Informer): Informer {
    const informer = shared ?? make();
    if (shared === undefined) this.owned.push(informer);
    this.read.push(informer);
    return informer;
  }

  /** Fills the caches, then starts the passes. */
  async start(): Promise<void> {
    await Promise.all(this.read.map((i) => i.start()));
    this.queue.start();
  }

  async stop(): Promise<void> {
    await this.queue.stop();
    await Promise.all(this.owned.map((i) => i.stop()));
    await this.recorder.flush();
  }
}
