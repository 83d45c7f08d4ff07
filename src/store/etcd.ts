/**
 * The etcd backend: the store's contract mapped onto etcd v3 natively.
 * Revisions are etcd's (shifted by one, see `etcd-codec.ts`); create is a
 * transaction on create_revision == 0, update and delete on mod_revision,
 * lists are ranges at a revision, compaction is etcd's. Several clusters can
 * share one etcd: every key lives under the cluster's prefix.
 *
 * Watches: one etcd watch on the whole prefix (`etcd-feed.ts`) feeds an
 * in-memory tail of recent events and the same fan-out as the other
 * backends, so a thousand API watches cost etcd one. A watch from before
 * the tail gets its own etcd watch. A write is acknowledged once etcd has
 * committed it and the feed has delivered it, so a watcher never lags
 * behind a write its own client has seen succeed.
 * Writes go to etcd one at a time, in call order, as the contract decides
 * them.
 */
import type { Etcd3, IKeyValue, IResponseHeader } from 'etcd3';
import { Broadcaster, defaultWatchError } from './broadcaster.js';
import { classifyEtcdError, etcdRevision, EtcdKeys, storeRevision, tidyGrpcMessage, toKeyValue, unavailableError } from './etcd-codec.js';
import { createEtcdClient, findCompacted, waitForEtcd } from './etcd-client.js';
import { EtcdFeed } from './etcd-feed.js';
import { EtcdWatch } from './etcd-watch.js';
import { keyRange } from './keys.js';
import { conflict, keyExists, notFound } from './log-row.js';
import { checkWatchStart, closedError, compactedError, isRevision } from './revisions.js';
import { StoreError } from './types.js';
import type { LogStoreOptions } from './log-store.js';
import type { KeyValue, ListOptions, ListResult, Store, StoreEvent, WatchOptions } from './types.js';

/** Options of {@link EtcdStore.open}. */
export interface EtcdStoreOptions extends LogStoreOptions {
  /** Client URLs of the etcd members, e.g. `http://127.0.0.1:2379`. */
  endpoints: string[];
  /** Every key of this cluster lives under this prefix; it must end with "/". Default `/vireo/`. */
  prefix?: string;
  /** How long `open` keeps trying to reach etcd before it gives up. Default 30 s. */
  connectTimeoutMs?: number;
  /** Deadline of one etcd request. Default 5 s. */
  requestTimeoutMs?: number;
  /** Told, at most once a few seconds, that `open` is still waiting for etcd. */
  onWaiting?: (message: string) => void;
}

const retryDelayMs = 250;

/** A {@link Store} on etcd v3. Open it with {@link EtcdStore.open}. */
export class EtcdStore implements Store {
  readonly endpoints: readonly string[];
  private readonly client: Etcd3;
  private readonly keys: EtcdKeys;
  private readonly requestTimeoutMs: number;
  private readonly broadcaster: Broadcaster;
  private readonly onWatchError: NonNullable<LogStoreOptions['onWatchError']>;
  private readonly feed: EtcdFeed;
  /** The highest revision any etcd response has shown. */
  private headerRevision = 0;
  private compacted = 0;
  private closed = false;
  private writes: Promise<unknown> = Promise.resolve();
  private readonly ownWatches = new Set<EtcdWatch>();

  private constructor(options: EtcdStoreOptions) {
    this.endpoints = options.endpoints;
    this.keys = new EtcdKeys(options.prefix ?? '/vireo/');
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.onWatchError = options.onWatchError ?? defaultWatchError;
    this.client = createEtcdClient(options.endpoints, this.requestTimeoutMs);
    this.feed = new EtcdFeed({
      client: this.client,
      keys: this.keys,
      publishTimeoutMs: this.requestTimeoutMs,
      publish: (events) => { this.broadcaster.publish(events); },
      ended: (error) => { this.feedEnded(error); },
    });
    this.broadcaster = new Broadcaster(
      {
        compactRevision: () => this.compacted,
        currentRevision: () => this.feed.published,
        history: (prefix, after, upTo) => this.feed.history(prefix, after, upTo),
      },
      this.onWatchError,
    );
  }

  /**
   * Connects, retrying until `connectTimeoutMs`, then starts the feed.
   * Rejects `Unavailable` naming the endpoints when etcd never answers.
   */
  static async open(options: EtcdStoreOptions): Promise<EtcdStore> {
    const prefix = options.prefix ?? '/vireo/';
    if (!prefix.startsWith('/') || !prefix.endsWith('/')) {
      throw new RangeError(`etcd key prefix ${JSON.stringify(prefix)} must start and end with "/", e.g. /vireo/`);
    }
    if (options.endpoints.length === 0) throw new RangeError('etcd needs at least one endpoint, e.g. http://127.0.0.1:2379');
    const store = new EtcdStore(options);
    try {
      await store.connect(options.connectTimeoutMs ?? 30_000, options.onWaiting);
      return store;
    } catch (error) {
      store.closed = true;
      store.client.close();
      throw error;
    }
  }

  get(key: string): Promise<KeyValue | undefined> {
    return this.request('reading', async () => {
      const response = await this.client.kv.range({ key: this.keys.encode(key) });
      this.noteHeader(response.header);
      const found = response.kvs[0];
      return found === undefined ? undefined : toKeyValue(this.keys, found);
    });
  }

  list(prefix: string, options: ListOptions = {}): Promise<ListResult> {
    const asked = options.revision ?? 0;
    const limit = options.limit ?? 0;
    return this.request('listing', async () => {
      if (!isRevision(asked)) throw new RangeError(`list revision must be a non-negative integer, got ${asked}`);
      if (!isRevision(limit)) throw new RangeError(`list limit must be a non-negative integer, got ${limit}`);
      if (asked !== 0 && asked < this.compacted) throw compactedError('list', asked, this.compacted);
      try {
        const response = await this.client.kv.range({
          key: this.keys.encode(keyRange(prefix, options.startKey).from),
          range_end: this.keys.rangeEnd(prefix),
          limit,
          revision: asked === 0 ? 0 : etcdRevision(asked),
        });
        this.noteHeader(response.header);
        const revision = asked === 0 ? storeRevision(response.header.revision) : asked;
        return { items: response.kvs.map((kv) => toKeyValue(this.keys, kv)), revision, more: response.more };
      } catch (error) {
        const failure = classifyEtcdError(error);
        if (failure.kind === 'future') throw new RangeError(`cannot list at revision ${asked}: the latest revision is ${this.currentRevision()}`);
        if (failure.kind === 'compacted') throw compactedError('list', asked, await this.refreshCompacted(asked));
        throw error;
      }
    });
  }

  count(prefix: string): Promise<number> {
    return this.request('counting', async () => {
      const response = await this.client.kv.range({ key: this.keys.encode(prefix), range_end: this.keys.rangeEnd(prefix), count_only: true });
      this.noteHeader(response.header);
      return Number(response.count);
    });
  }

  create(key: string, value: string): Promise<KeyValue> {
    const encoded = this.keys.encode(key);
    return this.write(`creating ${key}`, async () => {
      const response = await this.client.kv.txn({
        compare: [{ key: encoded, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key: encoded, value: Buffer.from(value, 'utf8') } }],
        failure: [{ request_range: { key: encoded } }],
      });
      const revision = this.noteHeader(response.header);
      if (!response.succeeded) {
        const current = response.responses[0]?.response_range.kvs[0];
        throw current === undefined ? unexpected(`create ${key}`) : keyExists(key, toKeyValue(this.keys, current));
      }
      return { key, value, createRevision: revision, modRevision: revision };
    });
  }

  update(key: string, value: string, expectedRevision: number): Promise<KeyValue> {
    const encoded = this.keys.encode(key);
    return this.write(`updating ${key}`, async () => {
      const response = await this.client.kv.txn({
        compare: [{ key: encoded, target: 'Mod', result: 'Equal', mod_revision: etcdRevision(expectedRevision) }],
        success: [{ request_put: { key: encoded, value: Buffer.from(value, 'utf8'), prev_kv: true } }],
        failure: [{ request_range: { key: encoded } }],
      });
      const revision = this.noteHeader(response.header);
      if (!response.succeeded) throw this.refusal('update', key, expectedRevision, response.responses[0]?.response_range.kvs[0]);
      const previous = response.responses[0]?.response_put.prev_kv;
      if (previous === undefined) throw unexpected(`update ${key}`);
      return { key, value, createRevision: storeRevision(previous.create_revision), modRevision: revision };
    });
  }

  delete(key: string, expectedRevision?: number): Promise<KeyValue> {
    const encoded = this.keys.encode(key);
    return this.write(`deleting ${key}`, async () => {
      const response = await this.client.kv.txn({
        // mod_revision > 0 is "the key exists": a delete without an expected revision takes whatever is there.
        compare: [
          expectedRevision === undefined
            ? { key: encoded, target: 'Mod', result: 'Greater', mod_revision: 0 }
            : { key: encoded, target: 'Mod', result: 'Equal', mod_revision: etcdRevision(expectedRevision) },
        ],
        success: [{ request_delete_range: { key: encoded, prev_kv: true } }],
        failure: [{ request_range: { key: encoded } }],
      });
      const revision = this.noteHeader(response.header);
      if (!response.succeeded) throw this.refusal('delete', key, expectedRevision ?? 0, response.responses[0]?.response_range.kvs[0]);
      const previous = response.responses[0]?.response_delete_range.prev_kvs[0];
      if (previous === undefined) throw unexpected(`delete ${key}`);
      return { ...toKeyValue(this.keys, previous), modRevision: revision };
    });
  }

  watch(options: WatchOptions, onEvent: (event: StoreEvent) => void): Promise<void> {
    return this.request('watching', async () => {
      if (options.signal.aborted) return;
      checkWatchStart(options.afterRevision, this.compacted);
      if (options.afterRevision >= this.feed.tailFloor) {
        this.broadcaster.watch(options, onEvent);
        return;
      }
      await this.watchFromEtcd(options, onEvent);
    });
  }

  /** The latest revision this store has seen, from etcd's responses and the feed. */
  currentRevision(): number {
    return Math.max(this.feed.published, this.headerRevision);
  }

  compactRevision(): number {
    return this.compacted;
  }

  compact(revision: number): Promise<void> {
    return this.request('compacting', async () => {
      if (!isRevision(revision)) throw new RangeError(`compact revision must be a non-negative integer, got ${revision}`);
      if (revision > this.currentRevision()) {
        throw new RangeError(`cannot compact to revision ${revision}: the latest revision is ${this.currentRevision()}`);
      }
      if (revision <= this.compacted) return;
      try {
        // Physical: etcd answers once the old revisions are gone, so a read below them fails from then on.
        const response = await this.client.kv.compact({ revision: etcdRevision(revision), physical: true });
        this.noteHeader(response.header);
        this.compacted = Math.max(this.compacted, revision);
      } catch (error) {
        // Another server compacted further already; learn how far.
        if (classifyEtcdError(error).kind !== 'compacted') throw error;
        await this.refreshCompacted(revision);
      }
    });
  }

  /** Finishes the writes already queued, stops every watch and disconnects. Later calls fail `Unavailable`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writes.catch(() => undefined);
    await this.feed.stop();
    await Promise.all([...this.ownWatches].map((watch) => watch.cancel()));
    this.ownWatches.clear();
    this.broadcaster.close();
    this.client.close();
  }

  /** Number of live watchers (for tests and metrics). */
  get watcherCount(): number {
    return this.broadcaster.size + this.ownWatches.size;
  }

  private async connect(timeoutMs: number, onWaiting: EtcdStoreOptions['onWaiting']): Promise<void> {
    const opened = await waitForEtcd(this.client, this.keys, { endpoints: this.endpoints, timeoutMs, onWaiting });
    this.headerRevision = Math.max(this.headerRevision, opened);
    this.compacted = await findCompacted(this.client, this.keys, 0, opened);
    await this.feed.start(opened);
  }

  /** Runs one request against open storage; etcd failures become `Unavailable` naming the endpoints. */
  private async request<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (this.closed) throw closedError();
    try {
      return await body();
    } catch (error) {
      if (error instanceof StoreError || error instanceof RangeError) throw error;
      throw unavailableError(this.endpoints, `while ${what}`, tidyGrpcMessage((error as Error).message));
    }
  }

  /** Queues a write behind the others; resolves once etcd committed it and the feed delivered it. */
  private write(what: string, body: () => Promise<KeyValue>): Promise<KeyValue> {
    if (this.closed) return Promise.reject(closedError());
    const committed = this.writes.then(async () => {
      try {
        return await body();
      } catch (error) {
        if (error instanceof StoreError || error instanceof RangeError) throw error;
        throw unavailableError(
          this.endpoints,
          `while ${what}`,
          `${tidyGrpcMessage((error as Error).message)} (the write may or may not have been made: read the key before retrying)`,
        );
      }
    });
    // The next write goes to etcd as soon as this one is committed; waiting for the feed overlaps it.
    this.writes = committed.catch(() => undefined);
    return committed.then(async (written) => {
      await this.feed.untilPublished(written.modRevision);
      return written;
    });
  }

  private refusal(verb: string, key: string, expected: number, current: IKeyValue | undefined): StoreError {
    return current === undefined ? notFound(verb, key) : conflict(verb, key, expected, toKeyValue(this.keys, current));
  }

  private noteHeader(header: IResponseHeader): number {
    const revision = storeRevision(header.revision);
    if (revision > this.headerRevision) this.headerRevision = revision;
    return revision;
  }

  /**
   * The feed was cancelled for good (its history was compacted while etcd
   * was away): its watchers cannot be continued, so they are ended and
   * told, and the feed restarts from now for new watches.
   */
  private feedEnded(error: StoreError): void {
    if (this.closed) return;
    this.broadcaster.fail(error);
    void this.restartFeed();
  }

  private async restartFeed(): Promise<void> {
    while (!this.closed) {
      try {
        const response = await this.client.kv.range({ key: this.keys.encode(''), limit: 1, keys_only: true });
        const now = this.noteHeader(response.header);
        this.compacted = await findCompacted(this.client, this.keys, this.compacted, now);
        await this.feed.start(now);
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs));
      }
    }
  }

  /** A watch from before the tail: its own etcd watch, delivering straight to the caller. */
  private async watchFromEtcd(options: WatchOptions, onEvent: (event: StoreEvent) => void): Promise<void> {
    const { prefix, afterRevision, signal } = options;
    // etcd accepts a watch from a compacted revision and cancels it right after; a read at the revision finds out first.
    try {
      await this.client.kv.range({ key: this.keys.encode(prefix), limit: 1, keys_only: true, revision: etcdRevision(afterRevision) });
    } catch (error) {
      if (classifyEtcdError(error).kind === 'compacted') throw compactedError('watch from', afterRevision, await this.refreshCompacted(afterRevision));
      throw error;
    }
    let own: EtcdWatch | undefined;
    const stop = (): void => {
      signal.removeEventListener('abort', stop);
      if (own === undefined || !this.ownWatches.delete(own)) return;
      void own.cancel();
    };
    try {
      own = await EtcdWatch.start(this.client, this.keys, prefix, afterRevision, {
        onEvents: (events) => {
          for (const event of events) {
            if (signal.aborted) return;
            try {
              onEvent(event);
            } catch (error) {
              stop();
              this.onWatchError(error, prefix);
              return;
            }
          }
        },
        onProgress: () => undefined,
        onEnd: (error) => {
          stop();
          if (options.onError === undefined) this.onWatchError(error, prefix);
          else options.onError(error);
        },
      });
    } catch (error) {
      if (error instanceof StoreError && error.code === 'Compacted') {
        throw compactedError('watch from', afterRevision, await this.refreshCompacted(afterRevision));
      }
      throw error;
    }
    this.ownWatches.add(own);
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  }

  /** Learns the compacted revision after etcd refused `refused` as compacted. */
  private async refreshCompacted(refused: number): Promise<number> {
    this.compacted = Math.max(this.compacted, await findCompacted(this.client, this.keys, Math.max(this.compacted, refused), this.currentRevision()));
    return this.compacted;
  }


}

function unexpected(what: string): StoreError {
  return new StoreError('Unavailable', `etcd answered ${what} without the value it was asked for; this is a bug in the etcd backend or an incompatible etcd`);
}

