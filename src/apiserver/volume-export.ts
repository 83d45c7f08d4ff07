/**
 * Exports of the volumes of this server's own node, for copies to other
 * nodes. A `vireo agent` serves its volumes' exports on its own endpoint;
 * the agent inside `vireo server` has no endpoint, so the API server's
 * port serves its exports instead, for the same cluster token:
 *
 *   GET|DELETE /vireo/v1/nodes/NODE/namespaces/NS/{persistentvolumeclaims,volumesnapshots}/NAME/export?target=UID
 *
 * (byte ranges with If-Range; DELETE releases the export). Only a node
 * whose agent runs in this process is served: another node's agent is
 * asked at its own endpoint.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AgentDirectory, AgentHandle } from '../agent/handle.js';
import { sendExport } from '../agent/endpoint-export.js';
export { serverExportPath } from '../agent/endpoint-api.js';
import { ApiError, badRequest } from '../api/errors.js';
import type { ExportSource, VolumeExports } from '../storage/snapshots/export.js';

const routePattern = /^\/vireo\/v1\/nodes\/([a-z0-9][-a-z0-9.]*)\/namespaces\/([a-z0-9][-a-z0-9]*)\/(persistentvolumeclaims|volumesnapshots)\/([a-z0-9][-a-z0-9.]*)\/export$/;

/** The node and claim of an export path; undefined when `pathname` is not one. */
export function exportRouteOf(pathname: string): { node: string; source: ExportSource } | undefined {
  const match = routePattern.exec(pathname);
  if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined || match[4] === undefined) return undefined;
  return { node: match[1], source: { kind: match[3] === 'volumesnapshots' ? 'VolumeSnapshot' : 'PersistentVolumeClaim', namespace: match[2], name: match[4] } };
}

function exportsOf(handle: AgentHandle | undefined): VolumeExports | undefined {
  if (handle === undefined || !('prepareExport' in handle) || !('releaseExport' in handle)) return undefined;
  return handle as AgentHandle & VolumeExports;
}

/** Serves an export route (already authenticated with the cluster token). */
export async function serveVolumeExport(req: IncomingMessage, res: ServerResponse, agents: AgentDirectory | undefined): Promise<void> {
  const url = new URL(req.url ?? '/', 'https://vireo.invalid');
  const route = exportRouteOf(url.pathname);
  if (route === undefined) throw new ApiError('NotFound', `the server could not find the requested resource: ${url.pathname}`);
  if (req.method !== 'GET' && req.method !== 'DELETE') throw new ApiError('MethodNotAllowed', `${req.method ?? ''} is not allowed on ${url.pathname}: use GET to read the export, DELETE to release it`);
  const target = url.searchParams.get('target') ?? '';
  if (target === '') throw badRequest(`${url.pathname} needs ?target=UID: the uid of the claim the volume is copied into`);
  const exports = exportsOf(agents?.forNode(route.node));
  if (exports === undefined) throw badRequest(`the agent of node ${route.node} does not run in this server: ask it at the endpoint its Node publishes`);
  const claim = route.source;
  if (req.method === 'DELETE') {
    await exports.releaseExport(claim, target);
    const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 200 });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  await sendExport(req, res, await exports.prepareExport(claim, target), {});
}
