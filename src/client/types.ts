/**
 * What controllers, the scheduler and the agent use to talk to the API:
 * the Kubernetes REST protocol, nothing Vireo-specific, so they can also run
 * against a real Kubernetes cluster.
 */
import type { KList, KObject } from '../api/object.js';

/** Which resource a request is about. */
export interface ResourceRef {
  /** '' for the core group. */
  group: string;
  version: string;
  plural: string;
  namespaced: boolean;
}

export interface ListQuery {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WatchQuery extends ListQuery {
  /** Resume after this resourceVersion. */
  resourceVersion: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface ClientWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KObject;
}

export type PatchType = 'merge' | 'json' | 'apply';

export interface PatchOptions {
  subresource?: string;
  /** Required for `apply`. */
  fieldManager?: string;
  force?: boolean;
}

export interface DeleteOptions {
  propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
  preconditions?: { uid?: string; resourceVersion?: string };
  /** Seconds the object's owner may take to let go (a VMI's guest to power off); the server records it as `deletionGracePeriodSeconds`. */
  gracePeriodSeconds?: number;
}

export interface Client {
  get(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KObject>;
  /** Like `get`, but undefined for a 404. */
  tryGet(ref: ResourceRef, namespace: string | undefined, name: string): Promise<KObject | undefined>;
  list(ref: ResourceRef, query?: ListQuery): Promise<KList>;
  create(ref: ResourceRef, obj: KObject): Promise<KObject>;
  /** PUT; `subresource` 'status' writes the status. */
  update(ref: ResourceRef, obj: KObject, subresource?: string): Promise<KObject>;
  patch(ref: ResourceRef, namespace: string | undefined, name: string, type: PatchType, body: unknown, options?: PatchOptions): Promise<KObject>;
  delete(ref: ResourceRef, namespace: string | undefined, name: string, options?: DeleteOptions): Promise<void>;
  /**
   * Streams events until the server ends the stream or `signal` aborts.
   * An `ERROR` event (e.g. 410 Expired) is delivered like any other.
   */
  watch(ref: ResourceRef, query: WatchQuery, onEvent: (event: ClientWatchEvent) => void, signal: AbortSignal): Promise<void>;
  /** A PUT to a non-resource subpath such as `subresources.kubevirt.io` actions; returns the status code. */
  raw(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }>;
}
