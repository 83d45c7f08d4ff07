/** `meta.k8s.io/v1` Table responses for `kubectl get`, from the resource's printer columns. */
import type { KObject } from '../api/object.js';
import type { ResourceDef } from '../api/resource.js';
import { buildTable } from '../api/table.js';
import type { IncludeObject } from '../api/table.js';

export interface RenderTableOptions {
  withHeader: boolean;
  includeObject: IncludeObject;
  resourceVersion: string;
  continueToken?: string;
}

export function renderTable(def: ResourceDef, objects: KObject[], options: RenderTableOptions): object {
  return buildTable(def, objects, {
    now: new Date(),
    includeObject: options.includeObject,
    noHeaders: !options.withHeader,
    listMeta: { resourceVersion: options.resourceVersion, ...(options.continueToken === undefined ? {} : { continue: options.continueToken }) },
  });
}
