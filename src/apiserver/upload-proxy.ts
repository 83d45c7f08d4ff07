/**
 * CDI's upload proxy (cdi-uploadproxy), on the API server's own port, so
 * there is no second service to expose (issue #18 of the inventory):
 *
 *   POST|PUT /v1beta1/upload              answers once the image is written and processed
 *   POST|PUT /v1beta1/upload-async        answers once every byte is received
 *   POST|PUT /v1beta1/upload-form[-async] the same, the image being the `file` field of a multipart form
 *   HEAD     /v1beta1/upload-async        200 for a valid token (how virtctl finds the async endpoint)
 *
 * (`/v1alpha1/…` too, as CDI keeps them.) The bearer is an upload token
 * (UploadTokenRequest), not the cluster's: it names the namespace and the
 * PVC. The proxy checks that the PVC is ready for an upload, finds the
 * node holding its volume, and streams the body to that node's agent.
 * Refusals are `Status` JSON with CDI's words; a client's mistake is never
 * a 5xx.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { AgentDirectory } from '../agent/handle.js';
import { ApiError } from '../api/errors.js';
import type { KObject } from '../api/object.js';
import { recordAt, stringAt } from '../api/kinds/read.js';
import type { ResourceDef } from '../api/resource.js';
import type { Logger } from '../log/logger.js';
import { cdiAnnotations, importPhases } from '../storage/import/index.js';
import { volumeNode } from '../storage/local/index.js';
import type { ObjectStore } from './object-store.js';
import type { ResourceRegistry } from './resources.js';
import { formBoundary, formField } from './upload-form.js';
import type { UploadTokens } from './upload-token.js';

/** What an upload path asks for. */
interface UploadRoute {
  async: boolean;
  form: boolean;
}

const routePattern = /^\/v1(?:alpha1|beta1)\/upload(-form)?(-async)?\/?$/;

/** The upload route of `pathname`, or undefined when it is not one. */
export function uploadRouteOf(pathname: string): UploadRoute | undefined {
  const match = routePattern.exec(pathname);
  return match === null ? undefined : { form: match[1] !== undefined, async: match[2] !== undefined };
}

/** What the proxy needs. */
export interface UploadProxyOptions {
  objects: ObjectStore;
  registry: ResourceRegistry;
  agents: AgentDirectory | undefined;
  tokens: UploadTokens;
  logger: Logger;
  /** How long a PVC that is not ready yet is waited for before a 503 (CDI waits 10 s). */
  readyWaitMs?: number;
}

/** Serves the upload routes; see the module comment. */
export class UploadProxy {
  constructor(private readonly options: UploadProxyOptions) {}

  /** True when the request is for the proxy (decided before any authentication: its bearer is an upload token). */
  serves(req: IncomingMessage): boolean {
    return uploadRouteOf(new URL(req.url ?? '/', 'https://vireo.invalid').pathname) !== undefined;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = uploadRouteOf(new URL(req.url ?? '/', 'https://vireo.invalid').pathname);
    if (route === undefined) throw new ApiError('NotFound', `the upload proxy could not find ${req.url ?? '/'}`);
    const method = req.method ?? '';
    if (method !== 'POST' && method !== 'PUT' && method !== 'HEAD') {
      throw new ApiError('MethodNotAllowed', `${method} is not allowed on ${req.url ?? ''}: upload with POST (or PUT)`);
    }
    const grant = this.options.tokens.verify(bearerOf(req));
    if (method === 'HEAD') {
      res.writeHead(200);
      res.end();
      return;
    }
    const { namespace, pvc: name } = grant;
    const pvc = await this.readyClaim(namespace, name);
    const node = await this.nodeOf(pvc);
    const agent = this.options.agents?.forNode(node);
    if (agent === undefined) throw new ApiError('ServiceUnavailable', `no agent of node ${node}, which holds the volume of PVC ${namespace}/${name}, is known to this server: start it and upload again`);
    const length = Number(req.headers['content-length']);
    const body: Readable = route.form ? formField(req, formBoundary(req.headers['content-type'])) : req;
    const bytes = !route.form && Number.isSafeInteger(length) && length >= 0 ? { bytes: length } : {};
    const log = this.options.logger.child({ namespace, name, kind: 'PersistentVolumeClaim' });
    log.info('upload received', { node, async: route.async, form: route.form, bytes: bytes.bytes });
    const result = await agent.upload(namespace, name, body, { async: route.async, ...bytes });
    log.info(route.async ? 'upload received in full; processing on the node' : 'upload processed', { bytes: result.bytes });
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 0 });
    res.end();
  }

  /** The PVC, once it is ready for an upload (as CDI's proxy, it waits a little for one about to be). */
  private async readyClaim(namespace: string, name: string): Promise<KObject> {
    const def = this.def('', 'v1', 'persistentvolumeclaims');
    const deadline = Date.now() + (this.options.readyWaitMs ?? 10_000);
    for (;;) {
      const pvc = await this.options.objects.tryGet(def, namespace, name);
      if (pvc === undefined) throw new ApiError('NotFound', `rejecting Upload Request for PVC ${name} that doesn't exist in namespace ${namespace}`);
      const annotations = pvc.metadata.annotations ?? {};
      if (annotations[cdiAnnotations.uploadTarget] === undefined) {
        throw new ApiError('BadRequest', `rejecting Upload Request for PVC ${name}: it is not an upload target (no ${cdiAnnotations.uploadTarget} annotation); upload into a DataVolume with spec.source.upload`);
      }
      if (annotations[cdiAnnotations.podPhase] === importPhases.succeeded) throw new ApiError('Conflict', `rejecting Upload Request for PVC ${name} that already finished uploading`);
      if (annotations[cdiAnnotations.podReady] === 'true' && stringAt(pvc, 'status', 'phase') === 'Bound') return pvc;
      if (Date.now() >= deadline) {
        throw new ApiError('ServiceUnavailable', `rejecting Upload Request for PVC ${name} that is not ready: wait until its DataVolume is UploadReady (its volume is bound on a node), then upload again`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  /** The node holding the PVC's volume. */
  private async nodeOf(pvc: KObject): Promise<string> {
    const pvName = stringAt(pvc, 'spec', 'volumeName') ?? '';
    const pv = pvName === '' ? undefined : await this.options.objects.tryGet(this.def('', 'v1', 'persistentvolumes'), undefined, pvName);
    const node = pv === undefined ? undefined : volumeNode(pv);
    if (node === undefined) {
      throw new ApiError('ServiceUnavailable', `rejecting Upload Request for PVC ${pvc.metadata.name ?? ''}: its volume ${pvName} is on no node this server knows (not a local volume): upload into a volume of a local StorageClass`);
    }
    return node;
  }

  private def(group: string, version: string, plural: string): ResourceDef {
    const def = this.options.registry.lookup(group, version, plural);
    if (def === undefined) throw new Error(`the ${plural} kind is missing from the registry`);
    return def;
  }
}

/** The upload token of `Authorization: Bearer …`; a 400 without one, as CDI's proxy answers. */
function bearerOf(req: IncomingMessage): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (match?.[1] === undefined) throw new ApiError('BadRequest', 'the upload proxy needs "Authorization: Bearer <upload token>": request a token with an UploadTokenRequest (vireo image-upload does it for you)');
  return match[1];
}

/**
 * Publishes the proxy's address as CDI does: `status.uploadProxyURL` of the
 * CDIConfig named `config` (its `spec.uploadProxyURLOverride` when set),
 * which virtctl and `vireo image-upload` read. Nothing happens when the
 * CDIConfig kind is not served.
 */
export async function publishUploadProxyUrl(objects: ObjectStore, registry: ResourceRegistry, url: string): Promise<void> {
  const def = registry.lookup('cdi.kubevirt.io', 'v1beta1', 'cdiconfigs');
  if (def === undefined) return;
  const current = await objects.tryGet(def, undefined, 'config');
  const wanted = stringAt(current, 'spec', 'uploadProxyURLOverride') ?? url;
  if (current === undefined) {
    const created = await objects.create(def, undefined, { apiVersion: 'cdi.kubevirt.io/v1beta1', kind: 'CDIConfig', metadata: { name: 'config' }, spec: {}, status: { uploadProxyURL: wanted } });
    if (stringAt(created.object, 'status', 'uploadProxyURL') === wanted) return;
    await objects.update(def, undefined, 'config', { ...created.object, status: { uploadProxyURL: wanted } }, def.subresources.status ? { subresource: 'status' } : {});
    return;
  }
  if (stringAt(current, 'status', 'uploadProxyURL') === wanted) return;
  const status = { ...(recordAt(current, 'status') ?? {}), uploadProxyURL: wanted };
  await objects.update(def, undefined, 'config', { ...current, status }, def.subresources.status ? { subresource: 'status' } : {});
}
