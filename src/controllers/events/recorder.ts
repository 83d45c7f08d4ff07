/**
 * core/v1 Events, as client-go's recorder writes them: one Event per
 * (object, type, reason, message), its `count` and `lastTimestamp` bumped
 * by a PATCH when the same thing happens again within ten minutes. Writes
 * run in the background with bounded concurrency and a bounded backlog;
 * `record` never throws and never waits, so a controller's reconcile is
 * never slowed or failed by its events.
 */
import { hostname } from 'node:os';
import type { KObject } from '../../api/object.js';
import { ApiError } from '../../api/errors.js';
import type { Client } from '../../client/index.js';
import { resources } from '../../client/index.js';
import type { Logger } from '../../log/logger.js';
import { errorMessage, timestamp } from '../vmi/index.js';

/** core/v1 Event types. */
export type EventType = 'Normal' | 'Warning';

/** Tuning and seams of the recorder; every field is optional. */
export interface EventRecorderOptions {
  /** Writes in flight at once. Default 4. */
  concurrency?: number;
  /** Distinct pending writes kept; beyond this, new ones are dropped (and logged). Default 1000. */
  maxPending?: number;
  /** Same object+type+reason+message within this window bumps the count. Default 10 min, as client-go. */
  dedupWindowMs?: number;
  /** Remembered series; the oldest are forgotten first. Default 4096. */
  maxSeries?: number;
  /** `reportingInstance` and `source.host`. Default: this machine's hostname. */
  instance?: string;
  now?: () => number;
}

/** One series of identical events and what the API already holds of it. */
interface Series {
  name: string;
  namespace: string;
  involved: Record<string, string>;
  type: EventType;
  reason: string;
  message: string;
  count: number;
  first: number;
  last: number;
  /** The count the API holds; 0 until the Event was created. */
  written: number;
}

/** Writes deduplicated core/v1 Events about objects, in the background. */
export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  /** Series being written now, and those recorded again meanwhile. */
  private readonly active = new Set<string>();
  private readonly dirty = new Set<string>();
  private sequence = 0;
  private readonly idle: (() => void)[] = [];
  private readonly options: Required<EventRecorderOptions>;

  constructor(
    private readonly client: Client,
    private readonly component: string,
    private readonly logger: Logger,
    options: EventRecorderOptions = {},
  ) {
    this.options = {
      concurrency: options.concurrency ?? 4,
      maxPending: options.maxPending ?? 1000,
      dedupWindowMs: options.dedupWindowMs ?? 10 * 60_000,
      maxSeries: options.maxSeries ?? 4096,
      instance: options.instance ?? hostname(),
      now: options.now ?? Date.now,
    };
  }

  /** Records that `reason` happened to `obj`; returns at once. */
  record(obj: KObject, type: EventType, reason: string, message: string): void {
    try {
      const key = this.seriesKey(obj, type, reason, message);
      const now = this.options.now();
      const known = this.series.get(key);
      if (known !== undefined && now - known.last <= this.options.dedupWindowMs) {
        known.count++;
        known.last = now;
        // Refresh recency so the series outlives quieter ones.
        this.series.delete(key);
        this.series.set(key, known);
      } else {
        this.series.set(key, this.newSeries(obj, type, reason, message, now));
        this.forgetOldest();
      }
      this.enqueue(key);
    } catch (err) {
      this.logger.warn('could not record event', { reason, err, ...this.objectFields(obj) });
    }
  }

  /** Resolves once every recorded event was written (or given up on). */
  flush(): Promise<void> {
    if (this.active.size === 0 && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private newSeries(obj: KObject, type: EventType, reason: string, message: string, now: number): Series {
    const involved: Record<string, string> = { kind: obj.kind, name: obj.metadata.name ?? '', apiVersion: obj.apiVersion };
    if (obj.metadata.namespace !== undefined) involved.namespace = obj.metadata.namespace;
    if (obj.metadata.uid !== undefined) involved.uid = obj.metadata.uid;
    if (obj.metadata.resourceVersion !== undefined) involved.resourceVersion = obj.metadata.resourceVersion;
    return {
      name: this.eventName(obj.metadata.name ?? 'event'),
      // Cluster-scoped objects' events live in `default`, as Kubernetes puts them.
      namespace: obj.metadata.namespace ?? 'default',
      involved,
      type,
      reason,
      message,
      count: 1,
      first: now,
      last: now,
      written: 0,
    };
  }

  private seriesKey(obj: KObject, type: EventType, reason: string, message: string): string {
    return JSON.stringify([obj.kind, obj.metadata.namespace ?? '', obj.metadata.name ?? '', obj.metadata.uid ?? '', type, reason, message]);
  }

  private forgetOldest(): void {
    while (this.series.size > this.options.maxSeries) {
      const oldest = this.series.keys().next();
      if (oldest.done === true) return;
      this.series.delete(oldest.value);
    }
  }

  private enqueue(key: string): void {
    if (this.active.has(key)) {
      // One writer per series: the running write picks the new count up when it ends.
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    if (this.pending.length >= this.options.maxPending) {
      this.logger.warn('event backlog full, dropping event', { component: this.component, backlog: this.pending.length });
      return;
    }
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  private pump(): void {
    while (this.active.size < this.options.concurrency) {
      const key = this.pending.shift();
      if (key === undefined) break;
      this.queued.delete(key);
      this.active.add(key);
      void this.write(key).finally(() => {
        this.active.delete(key);
        if (this.dirty.delete(key)) this.enqueue(key);
        this.pump();
      });
    }
    if (this.active.size === 0 && this.pending.length === 0) for (const resolve of this.idle.splice(0)) resolve();
  }

  private async write(key: string): Promise<void> {
    const s = this.series.get(key);
    if (s === undefined || s.written === s.count) return;
    const count = s.count;
    try {
      if (s.written === 0) {
        await this.client.create(resources.events, this.eventObject(s, count));
      } else {
        await this.client.patch(resources.events, s.namespace, s.name, 'merge', { count, lastTimestamp: timestamp(s.last) });
      }
      s.written = count;
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound' && s.written > 0) {
        // Expired or deleted meanwhile: start the series again under a new name, as client-go does.
        s.name = this.eventName(s.involved.name ?? 'event');
        s.first = s.last;
        s.count = 1;
        s.written = 0;
        this.dirty.add(key);
        return;
      }
      this.logger.warn('could not write event', { component: this.component, reason: s.reason, err: errorMessage(err), namespace: s.involved.namespace, name: s.involved.name, uid: s.involved.uid });
    }
  }

  /** client-go's naming, `<object>.<unix nanoseconds in hex>`, made unique within this process. */
  private eventName(objectName: string): string {
    this.sequence = (this.sequence + 1) % 1_000_000;
    return `${objectName}.${(BigInt(this.options.now()) * 1_000_000n + BigInt(this.sequence)).toString(16)}`;
  }

  private eventObject(s: Series, count: number): KObject {
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: s.name, namespace: s.namespace },
      involvedObject: s.involved,
      reason: s.reason,
      message: s.message,
      type: s.type,
      source: { component: this.component, host: this.options.instance },
      reportingComponent: this.component,
      reportingInstance: this.options.instance,
      firstTimestamp: timestamp(s.first),
      lastTimestamp: timestamp(s.last),
      count,
    };
  }

  private objectFields(obj: KObject): Record<string, unknown> {
    return { namespace: obj.metadata.namespace, name: obj.metadata.name, uid: obj.metadata.uid };
  }
}
