/**
 * kube-apiserver's request metrics, with its names and label sets:
 * `apiserver_request_total` (counter; verb, dry_run, group, version,
 * resource, subresource, scope, component, code),
 * `apiserver_request_duration_seconds` (histogram, kube's buckets; the
 * same labels but code), `apiserver_longrunning_requests` (gauge of open
 * watches and connects) and `apiserver_current_inflight_requests`
 * (request_kind readOnly|mutating). Verbs are kube's: GET of one object,
 * LIST, WATCH (`?watch=true` or the `/watch/` prefix), POST, PUT, PATCH,
 * APPLY (server-side apply), DELETE, DELETECOLLECTION, and CONNECT for
 * upgrades (console, VNC). Long-running requests (WATCH, CONNECT) are
 * counted when they end and are not observed in the duration histogram:
 * they last as long as the client wants, and would drown the latency of
 * everything else (kube's SLO histograms leave them out too).
 * Non-resource paths (discovery, /version, /metrics) are reported as kube
 * does its discovery handlers: empty group, resource and scope, the path's
 * first segment as the subresource (`/apis`, `/openapi`). So that a client
 * sending made-up paths cannot grow the families without bound (each label
 * value is a series), a resource the server does not serve and an unknown
 * non-resource path are reported with empty group, version, resource and
 * subresource.
 */
import type { IncomingMessage } from 'node:http';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { RequestInfo } from './request-info.js';

/** kube-apiserver's buckets for `apiserver_request_duration_seconds`. */
export const requestDurationBuckets = [0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60];

const requestLabels = ['verb', 'dry_run', 'group', 'version', 'resource', 'subresource', 'scope', 'component'] as const;
type RequestLabel = typeof requestLabels[number];
type RequestLabels = Record<RequestLabel, string>;

/** What one request is, in the metrics' labels. */
export interface MeteredRequest {
  labels: RequestLabels;
  longRunning: boolean;
  mutating: boolean;
  started: number;
}

export class ApiRequestMetrics {
  private readonly total: Counter<RequestLabel | 'code'>;
  private readonly duration: Histogram<RequestLabel>;
  private readonly longRunning: Gauge<Exclude<RequestLabel, 'dry_run'>>;
  private readonly inflight: Gauge<'request_kind'>;

  /** `known(group, version, resource)`: whether the server serves that resource (else its labels are emptied). */
  constructor(registry: Registry, private readonly known: (group: string, version: string, resource: string) => boolean) {
    this.total = new Counter({
      name: 'apiserver_request_total',
      help: 'Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.',
      labelNames: [...requestLabels, 'code'],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: 'apiserver_request_duration_seconds',
      help: 'Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component (long-running WATCH and CONNECT requests excluded).',
      labelNames: [...requestLabels],
      buckets: requestDurationBuckets,
      registers: [registry],
    });
    this.longRunning = new Gauge({
      name: 'apiserver_longrunning_requests',
      help: 'Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.',
      labelNames: ['verb', 'group', 'version', 'resource', 'subresource', 'scope', 'component'],
      registers: [registry],
    });
    this.inflight = new Gauge({
      name: 'apiserver_current_inflight_requests',
      help: 'Maximal number of currently used inflight request limit of this apiserver per request kind in last second.',
      labelNames: ['request_kind'],
      registers: [registry],
    });
    this.inflight.set({ request_kind: 'readOnly' }, 0);
    this.inflight.set({ request_kind: 'mutating' }, 0);
  }

  /** Marks a request as started; pass what it returns to {@link end} once its response is finished. */
  begin(req: IncomingMessage, info: RequestInfo, upgrade = false): MeteredRequest {
    const url = new URL(req.url ?? '/', 'https://vireo.invalid');
    const labels = labelsOf(req.method ?? 'GET', url, info, upgrade);
    if (info.isResource && !this.known(info.group, info.version, info.resource)) Object.assign(labels, { group: '', version: '', resource: '', subresource: '' });
    if (labels.verb === 'PATCH' && (req.headers['content-type'] ?? '').startsWith('application/apply-patch')) labels.verb = 'APPLY';
    const longRunning = labels.verb === 'WATCH' || labels.verb === 'CONNECT';
    const mutating = !['GET', 'LIST', 'WATCH', 'CONNECT', 'HEAD', 'OPTIONS'].includes(labels.verb);
    const metered: MeteredRequest = { labels, longRunning, mutating, started: performance.now() };
    this.inflight.inc({ request_kind: mutating ? 'mutating' : 'readOnly' });
    if (longRunning) this.longRunning.inc(withoutDryRun(labels));
    return metered;
  }

  /** Counts a finished request with its status code. */
  end(metered: MeteredRequest, code: number): void {
    this.inflight.dec({ request_kind: metered.mutating ? 'mutating' : 'readOnly' });
    if (metered.longRunning) this.longRunning.dec(withoutDryRun(metered.labels));
    this.total.inc({ ...metered.labels, code: String(code) });
    if (!metered.longRunning) this.duration.observe(metered.labels, (performance.now() - metered.started) / 1000);
  }
}

function withoutDryRun(labels: RequestLabels): Omit<RequestLabels, 'dry_run'> {
  const { dry_run: _dryRun, ...rest } = labels;
  return rest;
}

/** The non-resource paths the server serves, by first segment. */
const nonResourcePrefixes = new Set(['api', 'apis', 'version', 'healthz', 'livez', 'readyz', 'openapi', 'metrics', 'vireo']);

/** The labels kube-apiserver would give this request. */
export function labelsOf(method: string, url: URL, info: RequestInfo, upgrade: boolean): RequestLabels {
  const dryRun = url.searchParams.getAll('dryRun').filter((v) => v !== '').sort().join(',');
  if (!info.isResource) {
    const first = info.parts[0];
    const subresource = first === undefined ? '/' : nonResourcePrefixes.has(first) ? `/${first}` : '';
    return { verb: upgrade ? 'CONNECT' : method.toUpperCase(), dry_run: dryRun, group: '', version: '', resource: '', subresource, scope: '', component: 'apiserver' };
  }
  return {
    verb: verbOf(method, url, info, upgrade),
    dry_run: dryRun,
    group: info.group,
    version: info.version,
    resource: info.resource,
    subresource: info.subresource ?? '',
    scope: info.name !== undefined ? 'resource' : info.namespace !== undefined ? 'namespace' : 'cluster',
    component: 'apiserver',
  };
}

function verbOf(method: string, url: URL, info: RequestInfo & { isResource: true }, upgrade: boolean): string {
  if (upgrade) return 'CONNECT';
  const upper = method.toUpperCase();
  const watching = info.watchPrefix || ['true', '1'].includes(url.searchParams.get('watch') ?? '');
  switch (upper) {
    case 'GET':
    case 'HEAD':
      if (watching) return 'WATCH';
      return info.name === undefined ? 'LIST' : 'GET';
    case 'DELETE':
      return info.name === undefined ? 'DELETECOLLECTION' : 'DELETE';
    default:
      return upper;
  }
}
