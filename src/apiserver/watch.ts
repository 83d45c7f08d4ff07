/**
 * Watch: a stream of line-delimited JSON events for one resource, resumed
 * from a resourceVersion, filtered by selectors with Kubernetes' transition
 * rules (an object leaving a selector is DELETED for that watcher, one
 * entering it is ADDED), with bookmarks, timeouts and 410 for history that
 * has been compacted.
 */
import type { ServerResponse } from 'node:http';
import type { KObject, Status } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { ApiError, badRequest, statusOf } from '../api/errors.js';
import { StoreError } from '../store/types.js';
import type { Store, StoreEvent } from '../store/types.js';
import { decodeValue, resourcePrefix } from './codec.js';
import type { ObjectStore } from './object-store.js';
import type { ObjectMatcher } from './selection.js';

export interface WatchRequest {
  def: ResourceDef;
  namespace: string | undefined;
  matcher: ObjectMatcher | undefined;
  resourceVersion: string | undefined;
  sendInitialEvents: boolean;
  allowBookmarks: boolean;
  timeoutSeconds: number | undefined;
  /** Renders events as `meta.k8s.io` Tables (kubectl get -w); the header goes with the first event only. */
  table: ((objects: KObject[], withHeader: boolean) => object) | undefined;
}

/** A watcher whose unsent output grows past this is too slow and gets closed (clients re-watch). */
const maxBufferedBytes = 32 * 1024 * 1024;
const bookmarkIntervalMs = 60_000;

/** Decoded forms of a store event, shared by every watcher that receives it. */
const decoded = new WeakMap<StoreEvent, Map<string, { obj: KObject; prev: KObject | undefined }>>();
const lines = new WeakMap<StoreEvent, Map<string, string>>();

function decodeEvent(event: StoreEvent, def: ResourceDef): { obj: KObject; prev: KObject | undefined } {
  let perVersion = decoded.get(event);
  if (perVersion === undefined) decoded.set(event, (perVersion = new Map<string, { obj: KObject; prev: KObject | undefined }>()));
  const cached = perVersion.get(def.version);
  if (cached !== undefined) return cached;
  const obj = decodeValue(event.value, event.revision, def);
  const prev = event.prevValue === undefined ? undefined : decodeValue(event.prevValue, event.revision, def);
  const result = { obj, prev };
  perVersion.set(def.version, result);
  return result;
}

/** Validates the request up front so errors become a plain 4xx before the stream starts. */
export function parseWatchResourceVersion(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '' || raw === '0') return undefined;
  if (!/^\d{1,15}$/.test(raw)) {
    throw badRequest(`resourceVersion "${raw}" is not valid: a watch resumes from the metadata.resourceVersion of a list or of an object (a decimal number), or starts now with "0" or none`);
  }
  return Number(raw);
}

export async function serveWatch(
  res: ServerResponse,
  deps: { store: Store; objects: ObjectStore },
  request: WatchRequest,
  signal: AbortSignal,
): Promise<void> {
  const { def, matcher } = request;
  const resumeFrom = parseWatchResourceVersion(request.resourceVersion);
  if (request.sendInitialEvents && resumeFrom !== undefined) {
    throw new ApiError('Invalid', 'sendInitialEvents=true needs resourceVersion unset or "0" with resourceVersionMatch=NotOlderThan');
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  res.flushHeaders();
  let headerSent = false;
  const send = (type: string, object: unknown): boolean => {
    res.write(`{"type":"${type}","object":${JSON.stringify(object)}}\n`);
    return res.writableLength < maxBufferedBytes;
  };
  const sendObject = (type: string, obj: KObject): boolean => {
    if (request.table === undefined) return send(type, obj);
    const table = request.table([obj], !headerSent);
    headerSent = true;
    return send(type, table);
  };
  const done = new AbortController();
  const stop = (): void => { done.abort(); };
  signal.addEventListener('abort', stop, { once: true });
  res.on('close', stop);

  let afterRevision: number;
  if (resumeFrom === undefined) {
    const list = await deps.objects.list(def, request.namespace, matcher === undefined ? {} : { matcher });
    afterRevision = Number(list.metadata.resourceVersion);
    for (const item of list.items) sendObject('ADDED', item);
    if (request.sendInitialEvents) {
      send('BOOKMARK', bookmark(def, afterRevision, true));
    }
  } else {
    afterRevision = resumeFrom;
  }

  const prefix = resourcePrefix(def, request.namespace);
  const onEvent = (event: StoreEvent): void => {
    if (done.signal.aborted) return;
    const type = eventType(event, def, matcher);
    if (type === undefined) return;
    let ok: boolean;
    if (request.table === undefined && matcher === undefined) {
      ok = send2(res, cachedLine(event, def, type));
    } else {
      const { obj, prev } = decodeEvent(event, def);
      const shown = type === 'DELETED' && event.type === 'put' && prev !== undefined ? { ...prev, metadata: { ...prev.metadata, resourceVersion: String(event.revision) } } : obj;
      ok = sendObject(type, shown);
    }
    if (!ok) stop();
  };
  try {
    // A watch the store cannot continue (etcd lost its history while out of reach) ends with 410, so clients relist.
    const onError = (err: StoreError): void => {
      if (done.signal.aborted) return;
      send('ERROR', expired(afterRevision, err.compactRevision ?? afterRevision));
      stop();
    };
    await deps.store.watch({ prefix, afterRevision, signal: done.signal, onError }, onEvent);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'Compacted') {
      send('ERROR', expired(afterRevision, err.compactRevision ?? 0));
      res.end();
      return;
    }
    throw err;
  }
  const timers: NodeJS.Timeout[] = [];
  if (request.allowBookmarks) {
    timers.push(setInterval(() => send('BOOKMARK', bookmark(def, deps.store.currentRevision(), false)), bookmarkIntervalMs));
  }
  if (request.timeoutSeconds !== undefined && request.timeoutSeconds > 0) {
    timers.push(
      setTimeout(() => {
        if (request.allowBookmarks) send('BOOKMARK', bookmark(def, deps.store.currentRevision(), false));
        stop();
      }, request.timeoutSeconds * 1000),
    );
  }
  await new Promise<void>((resolve) => {
    if (done.signal.aborted) resolve();
    else done.signal.addEventListener('abort', () => { resolve(); }, { once: true });
  });
  for (const t of timers) clearTimeout(t);
  signal.removeEventListener('abort', stop);
  if (!res.writableEnded) res.end();
}

function send2(res: ServerResponse, line: string): boolean {
  res.write(line);
  return res.writableLength < maxBufferedBytes;
}

function cachedLine(event: StoreEvent, def: ResourceDef, type: string): string {
  let perKey = lines.get(event);
  if (perKey === undefined) lines.set(event, (perKey = new Map<string, string>()));
  const key = `${def.version}|${type}`;
  let line = perKey.get(key);
  if (line === undefined) {
    line = `{"type":"${type}","object":${JSON.stringify(decodeEvent(event, def).obj)}}\n`;
    perKey.set(key, line);
  }
  return line;
}

function eventType(event: StoreEvent, def: ResourceDef, matcher: ObjectMatcher | undefined): string | undefined {
  if (matcher === undefined) {
    if (event.type === 'delete') return 'DELETED';
    return event.created ? 'ADDED' : 'MODIFIED';
  }
  const { obj, prev } = decodeEvent(event, def);
  if (event.type === 'delete') return matcher(obj) ? 'DELETED' : undefined;
  const now = matcher(obj);
  const before = prev !== undefined && matcher(prev);
  if (now && before) return 'MODIFIED';
  if (now) return 'ADDED';
  if (before) return 'DELETED';
  return undefined;
}

function bookmark(def: ResourceDef, revision: number, initialEventsEnd: boolean): object {
  const metadata: Record<string, unknown> = { resourceVersion: String(revision) };
  if (initialEventsEnd) metadata.annotations = { 'k8s.io/initial-events-end': 'true' };
  return { kind: def.kind, apiVersion: def.group === '' ? def.version : `${def.group}/${def.version}`, metadata };
}

function expired(requested: number, compacted: number): Status {
  return statusOf('Expired', 410, `too old resource version: ${requested} (${compacted + 1})`);
}
