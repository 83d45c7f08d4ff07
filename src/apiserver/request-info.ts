/**
 * Parses a request path into what it addresses, the way kube-apiserver's
 * RequestInfoFactory does: API group, version, namespace, resource, name and
 * subresource, or a non-resource path.
 */

export interface ResourceRequestInfo {
  isResource: true;
  /** '' for the core group (`/api/v1`). */
  group: string;
  version: string;
  namespace: string | undefined;
  resource: string;
  name: string | undefined;
  subresource: string | undefined;
  /** `/api/v1/watch/...` (deprecated form) was used. */
  watchPrefix: boolean;
}

export interface NonResourceRequestInfo {
  isResource: false;
  path: string;
  /** Path segments after the prefix, for discovery: `/apis/<g>/<v>` → ['apis', g, v]. */
  parts: string[];
}

export type RequestInfo = ResourceRequestInfo | NonResourceRequestInfo;

/** Subresources of a namespace that are not resources in their own right. */
const namespaceSubresources = new Set(['status', 'finalize']);

export function parseRequestPath(path: string): RequestInfo {
  const parts = path.split('/').filter((p) => p !== '').map(decodeSegment);
  const nonResource: NonResourceRequestInfo = { isResource: false, path, parts };
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === 'api') {
    if (parts.length < 3) return nonResource;
    group = '';
    version = parts[1] ?? '';
    rest = parts.slice(2);
  } else if (parts[0] === 'apis') {
    if (parts.length < 4) return nonResource;
    group = parts[1] ?? '';
    version = parts[2] ?? '';
    rest = parts.slice(3);
  } else {
    return nonResource;
  }
  let watchPrefix = false;
  if (rest[0] === 'watch') {
    watchPrefix = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length > 1) {
    namespace = rest[1];
    if (rest.length > 2 && !namespaceSubresources.has(rest[2] ?? '')) rest = rest.slice(2);
  }
  const resource = rest[0];
  if (resource === undefined) return nonResource;
  return {
    isResource: true,
    group,
    version,
    namespace: resource === 'namespaces' ? undefined : namespace,
    resource,
    name: rest[1],
    subresource: rest.length > 2 ? rest.slice(2).join('/') : undefined,
    watchPrefix,
  };
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    // A malformed escape is kept as is; the name check rejects it later with a clear message.
    return segment;
  }
}
