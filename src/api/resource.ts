/**
 * What the API server knows about one resource (one kind in one
 * group-version): names for discovery, scope, subresources, printer columns
 * and its OpenAPI v3 structural schema. Built-in kinds and CRDs both end up
 * as a `ResourceDef`; the server routes, validates, prints and documents
 * purely from it.
 */
import type { KObject } from './object.js';

/** OpenAPI v3 schema node as CRDs carry it (`JSONSchemaProps`). */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  title?: string;
  default?: unknown;
  enum?: unknown[];
  nullable?: boolean;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  required?: string[];
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  allOf?: JSONSchemaProps[];
  anyOf?: JSONSchemaProps[];
  oneOf?: JSONSchemaProps[];
  not?: JSONSchemaProps;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  /** Strategic-merge-patch hints for built-in kinds (as in Kubernetes' OpenAPI). */
  'x-kubernetes-patch-strategy'?: string;
  'x-kubernetes-patch-merge-key'?: string;
}

export interface PrinterColumn {
  name: string;
  type: 'integer' | 'number' | 'string' | 'boolean' | 'date';
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface ScaleSubresource {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface ResourceDef {
  /** '' for the core group. */
  group: string;
  version: string;
  kind: string;
  listKind: string;
  /** Plural resource name, e.g. `virtualmachines`. */
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** Subresources served besides the object itself. */
  subresources: { status: boolean; scale?: ScaleSubresource };
  /** Columns after `Name`; empty means the default `Age` column. */
  printerColumns: PrinterColumn[];
  /** Structural schema of the whole object; undefined accepts anything (as `x-kubernetes-preserve-unknown-fields`). */
  schema: JSONSchemaProps | undefined;
  /** True for kinds compiled into the server (strategic merge patch, core semantics); false for CRs. */
  builtin: boolean;
  /** Verbs for discovery; defaults to the full set when absent. */
  verbs?: string[];
  /**
   * Cells after `Name` for `kubectl get` tables of built-in kinds whose
   * columns are computed rather than JSONPaths (as Kubernetes' own printers
   * do); used instead of evaluating `printerColumns[].jsonPath` when present.
   */
  printRow?: (obj: KObject, now: Date) => unknown[];
  /**
   * True when `printerColumns` and `printRow` already hold the name (a
   * column with `format: 'name'`), for kinds whose tables don't start with
   * it (`kubectl get events` leads with LAST SEEN) or decorate it
   * (StorageClass' ` (default)`).
   */
  printsName?: boolean;
}

/** `group/version`, or just `version` for the core group. */
export function groupVersion(def: Pick<ResourceDef, 'group' | 'version'>): string {
  return def.group === '' ? def.version : `${def.group}/${def.version}`;
}
