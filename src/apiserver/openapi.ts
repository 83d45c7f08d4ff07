/**
 * `/openapi/v3`: an index of group-versions, then one document per
 * group-version, rebuilt only when the registry changes. The `hash` in each
 * URL changes with the document, so clients that cache by URL see updates.
 * `/openapi/v2` is an empty document: kubectl reads it only as protobuf,
 * and 1.28 fetches it eagerly for every validating command (apply, create
 * -f, edit, replace), failing on a 404. An empty protobuf message is a
 * valid `openapi_v2.Document` with no definitions, so kubectl finds no v2
 * schema and relies on v3 (field validation, explain) and its built-in types.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../api/errors.js';
import { openApiDocument } from '../api/schema/index.js';
import type { ResourceRegistry } from './resources.js';

interface CachedDoc {
  text: string;
  hash: string;
}

export class OpenApiService {
  private cachedGeneration = -1;
  private docs = new Map<string, CachedDoc>();

  constructor(private readonly registry: ResourceRegistry) {}

  /** `parts` are the path segments after `/openapi`. */
  serve(parts: string[], req: IncomingMessage, res: ServerResponse): void {
    if (parts[0] === 'v2' && parts.length === 1) { sendEmptyV2(req, res); return; }
    if (parts[0] !== 'v3') {
      throw new ApiError('NotFound', `the server could not find the requested resource: /openapi/${parts.join('/')} (this server serves OpenAPI v3 at /openapi/v3)`);
    }
    this.refresh();
    const path = parts.slice(1).join('/');
    if (path === '') {
      const paths: Record<string, { serverRelativeURL: string }> = {};
      for (const gv of [...this.docs.keys()].sort()) {
        paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${this.docs.get(gv)?.hash ?? ''}` };
      }
      send(res, JSON.stringify({ paths }), 'no-cache, private'); return;
    }
    const doc = this.docs.get(path);
    if (doc === undefined) throw new ApiError('NotFound', `the server could not find the requested resource: no OpenAPI document for ${path}`);
    send(res, doc.text, 'public, immutable');
  }

  private refresh(): void {
    if (this.cachedGeneration === this.registry.generation) return;
    const generation = this.registry.generation;
    const docs = new Map<string, CachedDoc>();
    for (const [group, versions] of this.registry.groups()) {
      for (const version of versions) {
        const key = group === '' ? `api/${version}` : `apis/${group}/${version}`;
        const text = JSON.stringify(openApiDocument(this.registry.inGroupVersion(group, version)));
        docs.set(key, { text, hash: createHash('sha512').update(text).digest('hex').toUpperCase() });
      }
    }
    this.docs = docs;
    this.cachedGeneration = generation;
  }
}

// kubectl asks for the `@v1.0` spelling; the reply uses `.v1.0`, as kube-openapi does, because Go's mime parser rejects `@`.
const v2ProtobufTypes = ['application/com.github.proto-openapi.spec.v2@v1.0+protobuf', 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf'];

function sendEmptyV2(req: IncomingMessage, res: ServerResponse): void {
  const accept = req.headers.accept ?? '';
  if (v2ProtobufTypes.some((t) => accept.includes(t))) {
    res.writeHead(200, { 'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf', 'Content-Length': 0, 'Cache-Control': 'no-cache, private' });
    res.end();
    return;
  }
  send(res, JSON.stringify({ swagger: '2.0', info: { title: 'Vireo', version: 'v2 (empty: see /openapi/v3)' }, paths: {}, definitions: {} }), 'no-cache, private');
}

function send(res: ServerResponse, text: string, cacheControl: string): void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': cacheControl });
  res.end(text);
}
