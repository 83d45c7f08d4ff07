/**
 * The store part: a revisioned key-value log behind one interface, with a
 * memory backend (tests) and a SQLite backend (default, durable).
 */
import { MemoryStore } from './memory.js';
import { SqliteStore } from './sqlite.js';
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
export type { WatchErrorHandler } from './broadcaster.js';

/** Which backend {@link openStore} opens, and where. */
export type OpenStoreOptions = { backend: 'memory' } | { backend: 'sqlite'; path: string };

/**
 * Opens a store. Async so that backends that must connect (etcd, later) fit
 * the same call; a SQLite file that cannot be opened rejects `Unavailable`.
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
    }
  });
}
export { Compactor } from './compactor.js';
export type { CompactorOptions } from './compactor.js';
