/**
 * Content negotiation for what kubectl and client-go ask for: plain JSON,
 * `meta.k8s.io` Tables (`kubectl get`), and the aggregated discovery document.
 */
import { ApiError } from '../api/errors.js';

export interface MediaRange {
  type: string;
  params: Map<string, string>;
}

export function parseAccept(accept: string | undefined): MediaRange[] {
  if (accept === undefined || accept.trim() === '') return [{ type: '*/*', params: new Map() }];
  return accept.split(',').map((part) => {
    const [type = '', ...rest] = part.split(';').map((s) => s.trim());
    const params = new Map<string, string>();
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) params.set(p.slice(0, eq).trim().toLowerCase(), p.slice(eq + 1).trim());
    }
    return { type: type.toLowerCase(), params };
  });
}

export type ResponseShape = { kind: 'json' } | { kind: 'table' } | { kind: 'partial-metadata' };

/** Decides how to render an object or list response, or refuses with 406. */
export function negotiateObject(accept: string | undefined): ResponseShape {
  const ranges = parseAccept(accept);
  for (const range of ranges) {
    const as = range.params.get('as');
    if (as === 'Table' && range.params.get('g') === 'meta.k8s.io' && isJson(range.type)) return { kind: 'table' };
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') {
      if (range.params.get('g') === 'meta.k8s.io' && isJson(range.type)) return { kind: 'partial-metadata' };
      continue;
    }
    if (as !== undefined) continue;
    if (isJson(range.type) || range.type === '*/*' || range.type === 'application/*') return { kind: 'json' };
  }
  throw new ApiError(
    'NotAcceptable',
    `only the following media types are accepted: application/json, application/yaml (as JSON), application/json;as=Table;v=v1;g=meta.k8s.io`,
  );
}

function isJson(type: string): boolean {
  return type === 'application/json' || type === 'application/yaml' || type === '*/*' || type === 'application/*';
}

/** Which aggregated-discovery version the client asked for, if any. */
export function negotiateDiscovery(accept: string | undefined): 'v2' | 'v2beta1' | 'legacy' {
  for (const range of parseAccept(accept)) {
    if (range.params.get('g') === 'apidiscovery.k8s.io' && range.params.get('as') === 'APIGroupDiscoveryList') {
      const v = range.params.get('v');
      if (v === 'v2' || v === 'v2beta1') return v;
    }
    if (range.params.get('as') === undefined && (isJson(range.type) || range.type === '*/*')) return 'legacy';
  }
  return 'legacy';
}
