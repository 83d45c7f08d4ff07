/**
 * PATCH bodies by content type: JSON patch, merge patch, strategic merge
 * patch (built-in kinds only, as in Kubernetes: custom resources answer 415)
 * and server-side apply.
 */
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { ApiError } from '../api/errors.js';
import { applyJsonPatch } from '../api/patch/json-patch.js';
import { applyMergePatch } from '../api/patch/merge-patch.js';
import { applyStrategicMergePatch } from '../api/patch/strategic-merge.js';
import { applyPatch } from '../api/patch/apply.js';

export type PatchType = 'json' | 'merge' | 'strategic' | 'apply';

const byMediaType: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/apply-patch+yaml': 'apply',
};

export function patchTypeOf(media: string, def: ResourceDef): PatchType {
  const type = byMediaType[media];
  if (type === undefined || (type === 'strategic' && !def.builtin)) {
    const accepted = Object.keys(byMediaType).filter((m) => def.builtin || m !== 'application/strategic-merge-patch+json');
    throw new ApiError('UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`);
  }
  return type;
}

/** Applies a decoded patch body to the current object (undefined only for an apply that creates). */
export function applyPatchBody(type: PatchType, current: KObject | undefined, body: unknown, def: ResourceDef, manager?: string): unknown {
  switch (type) {
    case 'json':
      return applyJsonPatch(current, body);
    case 'merge':
      return applyMergePatch(current, body);
    case 'strategic':
      return applyStrategicMergePatch(current, body, def.schema);
    case 'apply':
      return applyPatch(current, body, manager === undefined ? { schema: def.schema } : { schema: def.schema, manager });
  }
}
