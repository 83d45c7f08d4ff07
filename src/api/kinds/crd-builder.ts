/**
 * Builds `apiextensions.k8s.io/v1` CustomResourceDefinition objects the way
 * virt-operator and cdi-operator install them, from a compact description.
 * Schemas come from the OpenAPI models and are built on first read, once per
 * model, however many CRD objects are made.
 */
import type { KObject } from '../object.js';
import type { JSONSchemaProps, PrinterColumn, ScaleSubresource } from '../resource.js';
import { modelSchema } from '../models.js';
import { defineLazy } from './lazy.js';

/** One version of a CRD. */
export interface CrdVersionSpec {
  name: string;
  /** Marks the storage version; exactly one per CRD. */
  storage?: boolean;
  /** A deprecation warning marks the version deprecated and is sent to clients that use it. */
  deprecationWarning?: string;
  /** Model for this version when it differs from the CRD's. */
  model?: string;
}

/** A CRD as its operator defines it. */
export interface CrdSpec {
  group: string;
  kind: string;
  plural: string;
  singular: string;
  scope: 'Namespaced' | 'Cluster';
  shortNames?: string[];
  categories?: string[];
  /** Served versions, storage version first. */
  versions: CrdVersionSpec[];
  columns?: PrinterColumn[];
  status?: boolean;
  scale?: ScaleSubresource;
  /** Model name in `@kubevirt-ui-ext/kubevirt-api`; or `schema` for kinds the package lacks. */
  model?: string;
  schema?: () => JSONSchemaProps;
  labels?: Record<string, string>;
}

const schemaCache = new Map<string, JSONSchemaProps>();

/** A model's schema shaped for a CRD: CRDs may not constrain `metadata`, so it becomes a bare object. */
function crdSchemaOf(model: string): JSONSchemaProps {
  let schema = schemaCache.get(model);
  if (schema === undefined) {
    const full = modelSchema(model);
    schema = { ...full, type: 'object', properties: { ...full.properties, metadata: { type: 'object' } } };
    schemaCache.set(model, schema);
  }
  return schema;
}

/** The CRD object for `spec`, already carrying the defaults the API server would add. */
export function customResourceDefinition(spec: CrdSpec): KObject {
  const names: Record<string, unknown> = {
    plural: spec.plural,
    singular: spec.singular,
    kind: spec.kind,
    listKind: `${spec.kind}List`,
  };
  if (spec.shortNames !== undefined) names['shortNames'] = spec.shortNames;
  if (spec.categories !== undefined) names['categories'] = spec.categories;
  const metadata: KObject['metadata'] = { name: `${spec.plural}.${spec.group}` };
  if (spec.labels !== undefined) metadata.labels = spec.labels;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata,
    spec: {
      group: spec.group,
      names,
      scope: spec.scope,
      versions: spec.versions.map((v) => crdVersion(spec, v)),
      conversion: { strategy: 'None' },
    },
  };
}

function crdVersion(spec: CrdSpec, version: CrdVersionSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { name: version.name, served: true, storage: version.storage ?? false };
  if (version.deprecationWarning !== undefined) {
    out['deprecated'] = true;
    out['deprecationWarning'] = version.deprecationWarning;
  }
  if (spec.columns !== undefined && spec.columns.length > 0) out['additionalPrinterColumns'] = spec.columns;
  const subresources: Record<string, unknown> = {};
  if (spec.status === true) subresources['status'] = {};
  if (spec.scale !== undefined) subresources['scale'] = { ...spec.scale };
  if (Object.keys(subresources).length > 0) out['subresources'] = subresources;
  const model = version.model ?? spec.model;
  const compute = spec.schema;
  const holder: { openAPIV3Schema: JSONSchemaProps } = { openAPIV3Schema: { type: 'object' } };
  if (model !== undefined) defineLazy(holder, 'openAPIV3Schema', () => crdSchemaOf(model));
  else if (compute !== undefined) defineLazy(holder, 'openAPIV3Schema', compute);
  out['schema'] = holder;
  return out;
}

/** A printer column, as CRDs declare them. */
export function printerColumn(
  name: string,
  type: PrinterColumn['type'],
  jsonPath: string,
  options: { description?: string; priority?: number } = {},
): PrinterColumn {
  const col: PrinterColumn = { name, type, jsonPath };
  if (options.description !== undefined) col.description = options.description;
  if (options.priority !== undefined) col.priority = options.priority;
  return col;
}
