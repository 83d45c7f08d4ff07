/**
 * One etcd watch on a key prefix, with previous values, that survives etcd
 * restarts without losing or repeating an event. The etcd3 client reconnects
 * by itself, but resumes from the response header's revision + 1, which
 * skips events when the stream breaks while etcd is still sending history
 * (history batches carry the current revision, not their own). So this
 * wrapper keeps the resume point itself: one past the last event delivered.
 */
import { etcdRevision, storeRevision, toStoreEvent } from './etcd-codec.js';
import { StoreError } from './types.js';
import type { EtcdKeys } from './etcd-codec.js';
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import type { StoreEvent } from './types.js';

/** What a watch hands its owner. */
export interface EtcdWatchHandlers {
  /** Events in revision order, each delivered once. */
  onEvents(events: StoreEvent[]): void;
  /** etcd says every event through `revision` has been delivered (a progress notification). */
  onProgress(revision: number): void;
  /** The watch ended on etcd's side (history compacted while it was away, or cancelled); it delivers nothing more. */
  onEnd(error: StoreError): void;
}

/** A live etcd watch; `cancel()` ends it. */
export class EtcdWatch {
  /** Every event under the prefix through this store revision has been delivered. */
  private delivered: number;
  private ended = false;

  private constructor(
    private readonly watcher: Watcher,
    afterRevision: number,
    private readonly keys: EtcdKeys,
    private readonly handlers: EtcdWatchHandlers,
  ) {
    this.delivered = afterRevision;
    // The client has just moved the resume point to the accepting header's revision; put it back.
    this.keepResumePoint();
    // Registered after the client's own listeners, so these run last and the resume point is ours.
    watcher.on('connected', () => {
      this.keepResumePoint();
    });
    watcher.on('data', (response) => {
      this.receive(response);
    });
    watcher.on('error', (error) => {
      this.end(error);
    });
  }

  /**
   * Starts watching `prefix` (within the cluster) for events after
   * `afterRevision`; resolves once etcd has accepted the watch, and rejects
   * when it refuses it (history compacted: `Compacted`).
   */
  static start(client: Etcd3, keys: EtcdKeys, prefix: string, afterRevision: number, handlers: EtcdWatchHandlers): Promise<EtcdWatch> {
    const watcher = client
      .watch()
      .prefix(keys.prefix + prefix)
      .withPreviousKV()
      .startRevision(String(etcdRevision(afterRevision + 1)))
      .watcher();
    return new Promise<EtcdWatch>((resolve, reject) => {
      const refused = (error: Error): void => {
        watcher.removeListener('connected', accepted);
        void watcher.cancel().catch(() => undefined);
        reject(watchError(error));
      };
      const accepted = (): void => {
        watcher.removeListener('error', refused);
        resolve(new EtcdWatch(watcher, afterRevision, keys, handlers));
      };
      watcher.once('connected', accepted);
      watcher.once('error', refused);
    });
  }

  /** Stops the watch; nothing is delivered afterwards. */
  async cancel(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.watcher.cancel().catch(() => undefined);
  }

  private receive(response: IWatchResponse): void {
    if (this.ended) return;
    if (response.events.length === 0) {
      // Only a synced watcher gets an empty response (a progress notification): its header is true progress.
      const revision = storeRevision(response.header.revision);
      if (revision > this.delivered) {
        this.delivered = revision;
        this.handlers.onProgress(revision);
      }
    } else {
      const events = response.events.map((event) => toStoreEvent(this.keys, event)).filter((event) => event.revision > this.delivered);
      const last = events.at(-1);
      if (last !== undefined) {
        this.delivered = last.revision;
        this.handlers.onEvents(events);
      }
    }
    this.keepResumePoint();
  }

  private keepResumePoint(): void {
    this.watcher.request.start_revision = String(etcdRevision(this.delivered + 1));
  }

  private end(error: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.handlers.onEnd(watchError(error));
  }
}

function watchError(error: Error): StoreError {
  // etcd 3.4 cancels a watch whose history was compacted with no reason given, only the compact revision.
  if (error.message.includes('compacted') || /Watcher canceled: *$/.test(error.message)) {
    return new StoreError('Compacted', `the etcd watch was cancelled: its history was compacted (${error.message}); list again and watch from the new revision`);
  }
  return new StoreError('Unavailable', `the etcd watch was cancelled: ${error.message}; watch again`);
}
