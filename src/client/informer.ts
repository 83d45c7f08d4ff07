/**
 * An informer as client-go has it: list, then watch from the list's
 * resourceVersion, keep a cache keyed by `namespace/name`, resume after a
 * dropped stream, relist after 410. Handlers get only the key: controllers
 * re-read the cache (level-based), never branch on the event type.
 */
import type { KObject } from '../api/object.js';
import type { Logger } from '../log/logger.js';
import type { Client, ListQuery, ResourceRef } from './types.js';

export type KeyHandler = (key: string) => void;

export function objectKeyOf(obj: KObject): string {
  return obj.metadata.namespace === undefined || obj.metadata.namespace === '' ? (obj.metadata.name ?? '') : `${obj.metadata.namespace}/${obj.metadata.name ?? ''}`;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export class Informer {
  private readonly cache = new Map<string, KObject>();
  private readonly handlers: KeyHandler[] = [];
  private readonly abort = new AbortController();
  private synced: Promise<void> | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly client: Client,
    readonly ref: ResourceRef,
    private readonly logger: Logger,
    private readonly query: ListQuery = {},
  ) {}

  /** Calls `handler` with the key of every object that changes (and of every object after each relist). */
  onChange(handler: KeyHandler): void {
    this.handlers.push(handler);
  }

  get(key: string): KObject | undefined {
    return this.cache.get(key);
  }

  list(): KObject[] {
    return [...this.cache.values()];
  }

  /** Starts list+watch; resolves once the first list is in the cache. */
  start(): Promise<void> {
    if (this.synced !== undefined) return this.synced;
    let markSynced: () => void = () => undefined;
    this.synced = new Promise((resolve) => (markSynced = resolve));
    this.running = this.run(markSynced);
    return this.synced;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(markSynced: () => void): Promise<void> {
    let resourceVersion = '';
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        if (resourceVersion === '') {
          resourceVersion = await this.relist();
          markSynced();
        }
        let expired = false;
        await this.client.watch(
          this.ref,
          { ...this.query, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 + Math.floor(Math.random() * 300) },
          (event) => {
            if (event.type === 'ERROR') {
              expired = true;
              return;
            }
            resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
            if (event.type === 'BOOKMARK') return;
            const key = objectKeyOf(event.object);
            if (event.type === 'DELETED') this.cache.delete(key);
            else this.cache.set(key, event.object);
            this.notify(key);
          },
          this.abort.signal,
        );
        if (expired) resourceVersion = '';
        failures = 0;
      } catch (err) {
        failures++;
        if (this.abort.signal.aborted) break;
        this.logger.warn('list/watch failed; retrying', { resource: this.ref.plural, err, failures });
        await sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)), this.abort.signal);
        if (failures > 3) resourceVersion = '';
      }
    }
  }

  private async relist(): Promise<string> {
    const list = await this.client.list(this.ref, this.query);
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKeyOf(item);
      seen.add(key);
      this.cache.set(key, item);
    }
    const gone = [...this.cache.keys()].filter((k) => !seen.has(k));
    for (const key of gone) this.cache.delete(key);
    for (const key of [...seen, ...gone]) this.notify(key);
    return list.metadata.resourceVersion ?? '';
  }

  private notify(key: string): void {
    for (const h of this.handlers) {
      try {
        h(key);
      } catch (err) {
        this.logger.error('informer handler failed', { key, err });
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
