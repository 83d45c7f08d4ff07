/**
 * The store part: a revisioned key-value log behind one interface, with a
 * memory backend (tests), a SQLite backend (default, durable) and an etcd
 * backend (a cluster's state in etcd v3).
 */
import { EtcdStore } from './etcd.js';
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';
import type { EtcdStoreOptions } from './etcd.js';
import type { Store } from './types.js';

export { StoreError } from './types.js';
export type {
  KeyValue,
  ListOptions,
  ListResult,
  Store,
  StoreErrorCode,
  StoreEvent,
  WatchOptions,
} from './types.js';
export { MemoryStore } from './memory.js';
export type { MemoryStoreOptions } from './memory.js';
export { SqliteStore } from './sqlite.js';
export type { SqliteStoreOptions } from './sqlite.js';
export { EtcdStore } from './etcd.js';
export type { EtcdStoreOptions } from './etcd.js';
export { parseEtcdUrl } from './etcd-codec.js';
export type { WatchErrorHandler } from './broadcaster.js';

/** Which backend {@link openStore} opens, and where. */
export type OpenStoreOptions =
  | { backend: 'memory' }
  | { backend: 'sqlite'; path: string }
  | ({ backend: 'etcd' } & EtcdStoreOptions);

/**
 * Opens a store. A SQLite file that cannot be opened rejects `Unavailable`;
 * etcd is retried until its connect timeout, then rejects `Unavailable`
 * naming the endpoints.
 */
export function openStore(options: OpenStoreOptions): Promise<Store> {
  return new Promise<Store>((resolve) => {
    switch (options.backend) {
      case 'memory':
        resolve(new MemoryStore());
        return;
      case 'sqlite':
        resolve(new SqliteStore({ path: options.path }));
        return;
      case 'etcd':
        resolve(EtcdStore.open(options));
        return;
    }
  });
}
export { Compactor } from './compactor.js';
export type { CompactorOptions } from './compactor.js';
