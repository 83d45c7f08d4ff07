/**
 * List continue tokens: opaque to clients, they pin the revision of the
 * first page (so every page comes from one snapshot) and the next key.
 * A token older than the compacted history is refused with 410 by the list.
 */
import { isPlainObject } from '../api/object.js';
import { badRequest } from '../api/errors.js';

/** How long a continue token stays valid is bounded by compaction, as in Kubernetes. */
export interface ContinueToken {
  rv: number;
  start: string;
}

export function encodeContinue(token: ContinueToken, prefix: string): string {
  return Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: token.rv, start: token.start.slice(prefix.length) })).toString('base64url');
}

export function parseContinue(raw: string, prefix: string): ContinueToken {
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as unknown;
    if (isPlainObject(parsed) && typeof parsed.rv === 'number' && typeof parsed.start === 'string' && parsed.rv > 0) {
      return { rv: parsed.rv, start: prefix + parsed.start };
    }
  } catch {
    // fall through to the error below
  }
  throw badRequest('the continue token is not valid: pass the exact `metadata.continue` value of the previous page');
}
