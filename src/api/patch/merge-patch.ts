/**
 * JSON Merge Patch (RFC 7386), the `application/merge-patch+json` PATCH
 * body and what kubectl sends for custom resources: objects merge key by
 * key, `null` deletes, everything else (lists included) replaces.
 */
import { badRequest } from '../errors.js';
import { isPlainObject } from '../object.js';
import { jsonClone, setField } from './json-value.js';

function merge(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return jsonClone(patch);
  const out: Record<string, unknown> = isPlainObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else setField(out, key, merge(Object.hasOwn(out, key) ? out[key] : undefined, value));
  }
  return out;
}

/**
 * Applies a merge patch to `doc` and returns the result; `doc` is not
 * modified (untouched subtrees are shared with it, so treat the result as
 * immutable or clone it). A patch that is not a JSON object is a 400: it
 * would replace the whole object.
 */
export function applyMergePatch(doc: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) {
    throw badRequest('invalid merge patch: the body must be a JSON object such as {"spec":{"runStrategy":"Always"}}');
  }
  return merge(doc, patch);
}
