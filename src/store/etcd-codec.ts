/**
 * How the etcd backend maps the store's contract onto etcd's wire types:
 * keys under a cluster prefix, revisions, key-values, watch events and
 * etcd's errors. Pure functions, no I/O, so the mapping is read in one place.
 *
 * Revisions: an empty etcd is at revision 1 and no write ever gets revision
 * 1, so the store's revision r is etcd's r + 1. The empty store is at 0 and
 * the first write is 1, as in the other backends; everything else (create
 * and mod revisions, compaction, watch start) is etcd's own, shifted by one.
 */
import { prefixEnd } from './keys.js';
import { StoreError } from './types.js';
import type { IEvent, IKeyValue } from 'etcd3';
import type { KeyValue, StoreEvent } from './types.js';

/** The store revision of an etcd revision. */
export function storeRevision(etcdRevision: string | number): number {
  return Number(etcdRevision) - 1;
}

/** The etcd revision of a store revision. */
export function etcdRevision(storeRevision: number): number {
  return storeRevision + 1;
}

/** Store keys under one cluster's prefix in etcd. */
export class EtcdKeys {
  constructor(readonly prefix: string) {}

  encode(key: string): Buffer {
    return Buffer.from(this.prefix + key, 'utf8');
  }

  decode(key: Buffer): string {
    return key.toString('utf8').slice(this.prefix.length);
  }

  /**
   * etcd's `range_end` for every key under `prefix` (both within the
   * cluster): the UTF-8 of the next code point sorts bytewise after every
   * key with the prefix, as code points order UTF-8. "\0" is etcd's "no end".
   */
  rangeEnd(prefix: string): Buffer {
    const end = prefixEnd(this.prefix + prefix);
    return end === undefined ? Buffer.from([0]) : Buffer.from(end, 'utf8');
  }
}

/** A key-value from an etcd response, in store terms. */
export function toKeyValue(keys: EtcdKeys, kv: IKeyValue): KeyValue {
  return {
    key: keys.decode(kv.key),
    value: kv.value.toString('utf8'),
    createRevision: storeRevision(kv.create_revision),
    modRevision: storeRevision(kv.mod_revision),
  };
}

/** A watch event (asked with `prev_kv`) in store terms. */
export function toStoreEvent(keys: EtcdKeys, event: IEvent): StoreEvent {
  const key = keys.decode(event.kv.key);
  const revision = storeRevision(event.kv.mod_revision);
  const previous = event.prev_kv?.value.toString('utf8');
  if (event.type === 'Delete') {
    // etcd's delete event carries no value; the deleted one is the previous one.
    const deleted = previous ?? '';
    return { type: 'delete', key, revision, value: deleted, prevValue: deleted, created: false };
  }
  const created = event.kv.create_revision === event.kv.mod_revision;
  return { type: 'put', key, revision, value: event.kv.value.toString('utf8'), prevValue: created ? undefined : previous, created };
}

/** What an etcd call's failure means for the store. */
export type EtcdFailure =
  | { kind: 'compacted' }
  | { kind: 'future' }
  | { kind: 'unavailable'; detail: string };

/** Sorts an error from the etcd3 client into the few cases the store distinguishes. */
export function classifyEtcdError(error: unknown): EtcdFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('required revision has been compacted')) return { kind: 'compacted' };
  if (message.includes('required revision is a future revision')) return { kind: 'future' };
  return { kind: 'unavailable', detail: tidyGrpcMessage(message) };
}

/** gRPC's connection errors, without the empty resolver note and the doubled "Error:". */
export function tidyGrpcMessage(message: string): string {
  return message.replace(/\.?\s*Resolution note:.*$/s, '').replace('Last error: Error: ', 'last error: ');
}

/** The error for an etcd that did not answer, naming where it was looked for and what to do. */
export function unavailableError(endpoints: readonly string[], what: string, detail: string): StoreError {
  return new StoreError(
    'Unavailable',
    `etcd at ${endpoints.join(', ')} did not answer ${what}: ${detail}. Check that etcd is running and reachable there; the store retries on the next request`,
  );
}

/**
 * Parses `etcd://host:port[,host:port…][/prefix]` into client URLs and the
 * key prefix (default `/vireo/`).
 */
export function parseEtcdUrl(url: string): { endpoints: string[]; prefix: string } {
  const match = /^etcd:\/\/([^/]+)(\/.*)?$/.exec(url);
  const hosts = match?.[1]?.split(',') ?? [];
  const bad = hosts.find((host) => !/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(host));
  if (match === null || hosts.length === 0 || bad !== undefined) {
    throw new RangeError(
      `${JSON.stringify(url)} is not an etcd URL${bad === undefined ? '' : ` (${JSON.stringify(bad)} is not host:port)`}: use etcd://host:port[,host:port…][/prefix], e.g. etcd://127.0.0.1:2379`,
    );
  }
  const path = match[2] ?? '/vireo/';
  return { endpoints: hosts.map((host) => `http://${host}`), prefix: path.endsWith('/') ? path : `${path}/` };
}
