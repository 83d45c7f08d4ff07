/**
 * The wire contract of a node agent's HTTPS endpoint (`vireo agent`), shared
 * by the agent (`endpoint.ts`) and the API server's remote handle
 * (`src/server/remote-agents.ts`). Paths follow virt-handler's console
 * server; every refusal is a Kubernetes `Status`:
 *
 *   PUT /v1/namespaces/NS/virtualmachineinstances/NAME/{pause,unpause,softreboot,reset,freeze,unfreeze}
 *       (freeze: `?unfreezeTimeoutSeconds=N`)
 *   GET /v1/namespaces/NS/virtualmachineinstances/NAME/consolelog  (text/plain)
 *   GET /v1/namespaces/NS/virtualmachineinstances/NAME/{console,vnc} (WebSocket, plain.kubevirt.io)
 *   GET /v1/namespaces/NS/virtualmachineinstances/NAME/portforward/PORT (WebSocket: a TCP connection to the guest)
 *   POST /v1/namespaces/NS/virtualmachineinstances/NAME/migration (JSON body: a step of a live migration, `src/agent/migration/protocol.ts`)
 *   POST /v1/namespaces/NS/persistentvolumeclaims/NAME/{upload,upload-async} (body: the image; CDI's upload server)
 *   GET|DELETE /v1/namespaces/NS/{persistentvolumeclaims,volumesnapshots}/NAME/export?target=UID (a copy to another node: the data
 *       as a qcow2 image, byte ranges with If-Range; DELETE releases it)
 *
 * How to reach the endpoint is published on the agent's Node, as a kubelet
 * does: `status.addresses`, `status.daemonEndpoints.kubeletEndpoint.Port`,
 * and the endpoint's self-signed certificate in an annotation, which the
 * server pins.
 */
import type { GuestAction } from './handle.js';

/** The Node annotation holding the PEM of the agent endpoint's certificate. */
export const agentCertificateAnnotation = 'vireo.io/agent-certificate';

/** The kubelet's port, the agent endpoint's default. */
export const defaultAgentPort = 10250;

/** What a request to the endpoint asks for. */
export type AgentOperation =
  | { kind: 'action'; action: GuestAction; unfreezeTimeoutSeconds?: number }
  | { kind: 'stream'; stream: 'console' | 'vnc' }
  | { kind: 'portforward'; port: number }
  | { kind: 'log' }
  | { kind: 'upload'; async: boolean }
  /** A step of a live migration (POST, JSON body and answer). */
  | { kind: 'migration' }
  /** The volume of a claim, or a VolumeSnapshot's data, as a qcow2 image for a copy to another node (GET; DELETE releases it). */
  | { kind: 'export'; of: ExportedResource }
  /** The node's Prometheus metrics, at `/metrics` (no namespace or name). */
  | { kind: 'metrics' };

/** The path of the agent's Prometheus metrics. */
export const agentMetricsPath = '/metrics';

/** What an export reads: a claim's volume, or a VolumeSnapshot's data. */
export type ExportedResource = 'persistentvolumeclaims' | 'volumesnapshots';

/** A parsed endpoint request: which VMI (or PVC, for an upload), and what of it. */
export interface AgentRequest {
  namespace: string;
  name: string;
  operation: AgentOperation;
}

/** How the agent endpoint is reached: published on the agent's Node. */
export interface AgentEndpointInfo {
  /** The port it listens on (`status.daemonEndpoints.kubeletEndpoint.Port`). */
  port: number;
  /** PEM of its self-signed certificate (the `vireo.io/agent-certificate` annotation). */
  certificate: string;
}

const actions: ReadonlySet<string> = new Set<GuestAction>(['pause', 'unpause', 'softreboot', 'reset', 'freeze', 'unfreeze']);

function isGuestAction(value: string): value is GuestAction {
  return actions.has(value);
}

/** The operation a path's last segment names on `resource`, if it names one. */
function operationOf(resource: string, segment: string): AgentOperation | undefined {
  if (resource === 'persistentvolumeclaims') {
    if (segment === 'upload' || segment === 'upload-async') return { kind: 'upload', async: segment === 'upload-async' };
    if (segment === 'export') return { kind: 'export', of: 'persistentvolumeclaims' };
    return undefined;
  }
  if (resource === 'volumesnapshots') return segment === 'export' ? { kind: 'export', of: 'volumesnapshots' } : undefined;
  if (resource !== 'virtualmachineinstances') return undefined;
  if (isGuestAction(segment)) return { kind: 'action', action: segment };
  if (segment === 'console' || segment === 'vnc') return { kind: 'stream', stream: segment };
  if (segment === 'consolelog') return { kind: 'log' };
  if (segment === 'migration') return { kind: 'migration' };
  return undefined;
}

/** The segment that names an operation in a path. */
function segmentOf(operation: AgentOperation): string {
  switch (operation.kind) {
    case 'action':
      return operation.action;
    case 'stream':
      return operation.stream;
    case 'portforward':
      return `portforward/${operation.port}`;
    case 'log':
      return 'consolelog';
    case 'upload':
      return operation.async ? 'upload-async' : 'upload';
    case 'export':
      return 'export';
    case 'metrics':
      return 'metrics';
    case 'migration':
      return 'migration';
  }
}

/** The path of `operation` on VMI `namespace/name` (on PVC `namespace/name` for an upload). */
export function agentRequestPath(namespace: string, name: string, operation: AgentOperation): string {
  if (operation.kind === 'metrics') return agentMetricsPath;
  const resource = operation.kind === 'export' ? operation.of : operation.kind === 'upload' ? 'persistentvolumeclaims' : 'virtualmachineinstances';
  const query = operation.kind === 'action' && operation.unfreezeTimeoutSeconds !== undefined ? `?unfreezeTimeoutSeconds=${operation.unfreezeTimeoutSeconds}` : '';
  return `/v1/namespaces/${encodeURIComponent(namespace)}/${resource}/${encodeURIComponent(name)}/${segmentOf(operation)}${query}`;
}

/** The HTTP method of an operation: actions change the guest (PUT), uploads send a body (POST), the rest read (GET; an export is also released with DELETE). */
export function agentRequestMethod(operation: AgentOperation): 'PUT' | 'GET' | 'POST' {
  if (operation.kind === 'upload' || operation.kind === 'migration') return 'POST';
  return operation.kind === 'action' ? 'PUT' : 'GET';
}

/** Kubernetes object names: DNS labels or subdomains, nothing a path could smuggle. */
const namePattern = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** `freeze`'s `unfreezeTimeoutSeconds` query parameter: absent, or a whole number of seconds. */
export function parseUnfreezeTimeout(search: URLSearchParams): number | undefined {
  const value = search.get('unfreezeTimeoutSeconds');
  if (value === null) return undefined;
  if (!/^\d{1,9}$/.test(value)) throw new Error(`unfreezeTimeoutSeconds must be a whole number of seconds, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Parses a request path (without its query); undefined when it is not one the endpoint serves. */
export function parseAgentRequest(pathname: string): AgentRequest | undefined {
  if (pathname === agentMetricsPath) return { namespace: '', name: '', operation: { kind: 'metrics' } };
  const parts = pathname.split('/');
  const [empty, version, namespaces, namespace, resource, name, segment, ...rest] = parts;
  if (empty !== '' || version !== 'v1' || namespaces !== 'namespaces') return undefined;
  if (namespace === undefined || resource === undefined || name === undefined || segment === undefined) return undefined;
  if (!namePattern.test(namespace) || !namePattern.test(name)) return undefined;
  if (resource === 'virtualmachineinstances' && segment === 'portforward' && rest.length === 1) {
    const port = Number(rest[0]);
    return /^[0-9]{1,5}$/.test(rest[0] ?? '') && port >= 1 && port <= 65535 ? { namespace, name, operation: { kind: 'portforward', port } } : undefined;
  }
  if (rest.length > 0) return undefined;
  const operation = operationOf(resource, segment);
  return operation === undefined ? undefined : { namespace, name, operation };
}

/**
 * The path of the export of claim (or VolumeSnapshot) `namespace/name` of
 * node `node` on the API server's port, where the agent inside
 * `vireo server` (which has no endpoint of its own) serves its exports.
 */
export function serverExportPath(node: string, of: ExportedResource, namespace: string, name: string): string {
  return `/vireo/v1/nodes/${encodeURIComponent(node)}/namespaces/${encodeURIComponent(namespace)}/${of}/${encodeURIComponent(name)}/export`;
}
